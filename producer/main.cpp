// warren-producer: the HTTP API of API.md and the outbox relay. Configuration comes from the
// environment (see --help); everything else is in producer_app.cpp.
#include <iostream>

#include "producer/producer_app.h"
#include "shared/logging.h"

int main(int argc, char** argv) {
  auto loaded = warren::load_config_or_exit(warren::Component::kProducer, argc, argv);
  if (loaded.help_requested) {
    std::cout << warren::config_help(warren::Component::kProducer, "warren-producer");
    return 0;
  }
  if (!loaded.positional.empty()) {
    std::cerr << "warren-producer: unexpected argument '" << loaded.positional.front()
              << "' (see --help)\n";
    return 2;
  }
  warren::log::init(loaded.config, "producer");
  try {
    return warren::run_producer(loaded.config);
  } catch (const warren::ConfigError& error) {
    std::cerr << "warren-producer: configuration error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    warren::log::critical("producer failed", {{"error", error.what()}});
    return 1;
  }
}

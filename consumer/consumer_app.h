// warren-consumer as a library call, so a team can build its own consumer binary with its own
// job types in a few lines (see the README, "Write your own job type"):
//
//   int main(int argc, char** argv) {
//     auto loaded = warren::load_config_or_exit(warren::Component::kConsumer, argc, argv);
//     warren::log::init(loaded.config, "consumer");
//     warren::consumer::HandlerRegistry handlers;
//     warren::consumer::add_builtin_handlers(handlers);
//     handlers.add("email.send", send_email);
//     return warren::consumer::run_consumer(loaded.config, handlers);
//   }
#pragma once

#include "consumer/handler_registry.h"
#include "shared/config.h"

namespace warren::consumer {

// Runs until SIGTERM / SIGINT and a graceful shutdown (MESSAGING.md "Consumers"); returns the
// process exit code: 0 after a clean shutdown, 1 when it could not start (database or schema
// not there within WARREN_STARTUP_WAIT_MS, health port taken).
int run_consumer(const Config& config, const HandlerRegistry& handlers);

}  // namespace warren::consumer

// warren-consumer: runs jobs from the work queues with the built-in handlers (noop, sleep,
// fail). Teams with their own job types build a binary like this one with their handlers
// added (consumer_app.h shows how).
#include "consumer/consumer_app.h"
#include "consumer/handler_registry.h"
#include "shared/config.h"
#include "shared/logging.h"

int main(int argc, char** argv) {
  auto loaded = warren::load_config_or_exit(warren::Component::kConsumer, argc, argv);
  warren::log::init(loaded.config, "consumer");
  warren::consumer::HandlerRegistry handlers;
  warren::consumer::add_builtin_handlers(handlers);
  return warren::consumer::run_consumer(loaded.config, handlers);
}

// warren-consumer-test: the consumer the integration tests run. It is warren-consumer plus job
// types that only a test should have, which is also how a team builds its own consumer
// (consumer/consumer_app.h):
//   crash       {}            aborts the process mid-attempt (delivery limit, lost attempts)
//   stubborn    {"ms": N}     sleeps N ms ignoring its stop token (stuck-handler accounting)
//   echo        {...}         succeeds with its payload as the result
//   downstream  {"status": N} a call to a service that answered N: an error of type http_N
//                             when N >= 400, else success (dead-letter groups, edit and requeue)
#include <chrono>
#include <cstdlib>
#include <thread>

#include "consumer/consumer_app.h"
#include "consumer/handler_registry.h"
#include "shared/config.h"
#include "shared/logging.h"

namespace {

using warren::consumer::HandlerResult;
using warren::consumer::JobContext;

HandlerResult crash(JobContext& job) {
  job.log.warn("crash handler: aborting the process on purpose");
  std::abort();
}

HandlerResult stubborn(JobContext& job) {
  std::this_thread::sleep_for(std::chrono::milliseconds(job.payload.value("ms", 1000)));
  return HandlerResult::success();
}

HandlerResult echo(JobContext& job) {
  return HandlerResult::success(job.payload);
}

HandlerResult downstream(JobContext& job) {
  const int status = job.payload.value("status", 200);
  if (status < 400) return HandlerResult::success({{"status", status}});
  return HandlerResult::retry("http_" + std::to_string(status),
                              "the service answered " + std::to_string(status));
}

}  // namespace

int main(int argc, char** argv) {
  auto loaded = warren::load_config_or_exit(warren::Component::kConsumer, argc, argv);
  warren::log::init(loaded.config, "consumer");
  warren::consumer::HandlerRegistry handlers;
  warren::consumer::add_builtin_handlers(handlers);
  handlers.add("crash", crash);
  handlers.add("stubborn", stubborn);
  handlers.add("echo", echo);
  handlers.add("downstream", downstream);
  return warren::consumer::run_consumer(loaded.config, handlers);
}

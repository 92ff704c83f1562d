// A consumer with a job type of its own: the README's "Write your own job type" example,
// compiled with the project so it cannot rot. Build: cmake --build build --target
// email-consumer; run it like warren-consumer (same WARREN_* settings).
#include "consumer/consumer_app.h"
#include "shared/logging.h"

using namespace warren::consumer;

// "email.send" {"to": "...", "subject": "..."}: a permanent failure for a bad address (no
// retry can fix it), a retry in 30 s when the mail server is busy, success otherwise.
HandlerResult send_email(JobContext& job) {
  const auto to = job.payload.value("to", std::string());
  if (to.find('@') == std::string::npos) {
    return HandlerResult::permanent("invalid_address", "no @ in \"" + to + "\"");
  }
  const bool server_busy = job.payload.value("simulate_busy", false);  // stands in for SMTP
  if (server_busy) return HandlerResult::retry("smtp_421", "server busy", std::chrono::seconds(30));
  job.log.info("sent", {{"to", to}});
  return HandlerResult::success({{"to", to}});
}

int main(int argc, char** argv) {
  auto loaded = warren::load_config_or_exit(warren::Component::kConsumer, argc, argv);
  warren::log::init(loaded.config, "consumer");
  HandlerRegistry handlers;
  add_builtin_handlers(handlers);
  handlers.add("email.send", send_email);
  return run_consumer(loaded.config, handlers);
}

// warren-consumer-test: the consumer the integration tests run. It is warren-consumer plus job
// types that only a test should have, which is also how a team builds its own consumer
// (consumer/consumer_app.h):
//   crash       {}            aborts the process mid-attempt (delivery limit, lost attempts)
//   stubborn    {"ms": N}     sleeps N ms ignoring its stop token (stuck-handler accounting)
//   echo        {...}         succeeds with its payload as the result
//   downstream  {"status": N} a call to a service that answered N: an error of type http_N
//                             when N >= 400, else success (dead-letter groups, edit and requeue)
//   ledger      {"sleep_ms": N, "fail_times": K, "permanent": false}
//                             the chaos soak's job (tests/chaos/): sleeps N ms cooperatively,
//                             fails attempts 1..K (permanently if asked), else succeeds, and
//                             appends one line per run to a side-effect ledger, a file in
//                             $WARREN_TEST_LEDGER_DIR. The ledger is what proves, from outside
//                             Warren's own bookkeeping, which attempts really ran.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
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

// The ledger file of this process, appended to by every worker thread. One write(2) per line
// on an O_APPEND descriptor: lines never interleave, and a line written survives a SIGKILL a
// moment later (it is in the kernel's page cache; the soak never crashes the machine).
class SideEffectLedger {
 public:
  explicit SideEffectLedger(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw std::runtime_error("cannot open the ledger " + path);
  }
  ~SideEffectLedger() { ::close(fd_); }
  SideEffectLedger(const SideEffectLedger&) = delete;
  SideEffectLedger& operator=(const SideEffectLedger&) = delete;

  // "<job id> <attempt> <result>\n"; result is ok, fail, permanent or stopped.
  void append(const JobContext& job, const char* result) const {
    const auto line = job.id + " " + std::to_string(job.attempt) + " " + result + "\n";
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw std::runtime_error("ledger write failed");  // the attempt fails; the soak sees it
    }
  }

 private:
  int fd_;
};

HandlerResult ledger(const SideEffectLedger& side_effects, JobContext& job) {
  const auto sleep_ms = job.payload.value("sleep_ms", int64_t{0});
  if (sleep_ms > 0 && !job.sleep_for(std::chrono::milliseconds(sleep_ms))) {
    side_effects.append(job, "stopped");
    return HandlerResult::retry("interrupted", "stopped while sleeping");
  }
  if (job.attempt <= job.payload.value("fail_times", 0)) {
    if (job.payload.value("permanent", false)) {
      side_effects.append(job, "permanent");
      return HandlerResult::permanent("chaos_permanent", "fails permanently on purpose");
    }
    side_effects.append(job, "fail");
    return HandlerResult::retry("chaos_fail", "fails on purpose");
  }
  side_effects.append(job, "ok");
  return HandlerResult::success();
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
  if (const char* dir = std::getenv("WARREN_TEST_LEDGER_DIR")) {
    auto side_effects = std::make_shared<SideEffectLedger>(std::string(dir) + "/ledger-" +
                                                           std::to_string(::getpid()) + ".txt");
    handlers.add("ledger", [side_effects](JobContext& job) { return ledger(*side_effects, job); });
  }
  return warren::consumer::run_consumer(loaded.config, handlers);
}

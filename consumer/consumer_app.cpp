// See consumer_app.h. Wires the parts together and owns the shutdown sequence:
//
//   SIGTERM ─► stop consuming, requeue deliveries not started, readiness 503
//           ─► running handlers have WARREN_SHUTDOWN_GRACE_MS to finish (recorded normally)
//           ─► then their stop tokens fire; what has not finished within a second more is
//              recorded `lost` and requeued
//           ─► outcomes flushed, acks sent, worker row marked stopped, connections closed, exit 0
#include "consumer/consumer_app.h"

#include <unistd.h>

#include <csignal>
#include <thread>

#include "consumer/attempt_recorder.h"
#include "consumer/broker_session.h"
#include "consumer/cancel_listener.h"
#include "consumer/consumer_metrics.h"
#include "consumer/dead_letter_recorder.h"
#include "consumer/event_loop.h"
#include "consumer/health_server.h"
#include "consumer/processor.h"
#include "consumer/worker_pool.h"
#include "shared/db/connection_pool.h"
#include "shared/db/migrator.h"
#include "shared/logging.h"
#include "shared/metrics/metrics_registry.h"
#include "shared/version.h"

namespace warren::consumer {
namespace {

constexpr auto kTickInterval = std::chrono::milliseconds(1000);
constexpr auto kShutdownCheckInterval = std::chrono::milliseconds(50);
// After the grace period: the stop grace of handlers (1 s) plus writing and acking what they
// return. Past this the process exits anyway; the broker requeues whatever is unacked.
constexpr auto kAfterGraceLimit = std::chrono::milliseconds(4000);
constexpr auto kStuckThreadWait = std::chrono::milliseconds(500);

db::WorkerInfo worker_info(const Config& config) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  db::WorkerInfo info;
  info.id = config.worker_id;
  info.host = host;
  info.version = kVersion;
  info.queues = config.queues;
  info.concurrency = config.concurrency;
  info.heartbeat_interval = config.heartbeat;
  return info;
}

// Everything that lives on the loop, in construction order (destroyed in reverse).
class ConsumerApp {
 public:
  ConsumerApp(const Config& config, const HandlerRegistry& handlers,
              metrics::MetricsRegistry& registry, HealthState& health)
      : config_(config),
        health_(health),
        metrics_(registry),
        mailbox_(loop_),
        pool_(config.concurrency),
        recorder_(
            config, worker_info(config), [this] { return counters(); }, mailbox_, metrics_,
            {[this](BatchResult result) { processor_->on_written(std::move(result)); },
             [this](bool available, const std::string&) {
               health_.database_available = available;
               update_consuming();
             },
             [this](const std::vector<std::uint64_t>& keys) { processor_->on_refused(keys); }}),
        broker_(loop_, config, metrics_,
                {[this](amqp::Delivery delivery, DeliveryRef ref) {
                   processor_->on_delivery(std::move(delivery), ref);
                 },
                 [this] { update_consuming(); },
                 [this](std::uint64_t generation, const std::string&) {
                   processor_->on_broker_lost(generation);
                   update_consuming();
                 }}),
        cancels_(config.database_url, mailbox_,
                 [this](const std::string& job_id) { processor_->on_cancel_requested(job_id); }),
        tick_(loop_, [this] { tick(); }),
        shutdown_check_(loop_, [this] { check_shutdown(); }),
        grace_over_(loop_, [this] { on_grace_over(); }),
        sigterm_(loop_, SIGTERM, [this] { begin_shutdown("SIGTERM"); }),
        sigint_(loop_, SIGINT, [this] { begin_shutdown("SIGINT"); }) {
    processor_ = std::make_unique<Processor>(Processor::Parts{
        loop_, mailbox_, config, handlers, pool_, broker_, recorder_, metrics_, stats_});
    if (config.dead_letter_recorder) {
      dead_letters_ = std::make_unique<DeadLetterRecorder>(config, metrics_);
    }
  }

  // Returns true when every worker thread finished (none stuck).
  bool run() {
    recorder_.start();
    if (dead_letters_) dead_letters_->start();
    cancels_.start();
    broker_.start();
    tick();
    tick_.start(kTickInterval, kTickInterval);
    loop_.run();
    return pool_.join_for(kStuckThreadWait);
  }

 private:
  db::WorkerCounters counters() const {
    return {stats_.in_flight.load(), stats_.processed.load(), stats_.failed.load()};
  }

  void tick() {
    health_.loop_tick_ms = steady_now_ms();
    health_.stuck_handlers = static_cast<int>(processor_->stuck_handlers());
    health_.broker_connected = broker_.connected();
    health_.consuming = broker_.consuming();
  }

  // Consume only while both dependencies are there: without the database no claim can commit,
  // so deliveries would only pile up unacked.
  void update_consuming() {
    health_.broker_connected = broker_.connected();
    if (!shutting_down_ && broker_.connected() && health_.database_available) {
      broker_.start_consuming();
    } else if (broker_.consuming()) {
      log::warn("stopped consuming until the database is back");
      broker_.stop_consuming();
    }
    health_.consuming = broker_.consuming();
  }

  void begin_shutdown(const char* signal_name) {
    if (shutting_down_) {
      log::warn("second signal: shutting down without waiting for handlers",
                {{"signal", signal_name}});
      on_grace_over();
      return;
    }
    shutting_down_ = true;
    health_.shutting_down = true;
    log::info("shutting down: no new deliveries, waiting for running handlers",
              {{"signal", signal_name},
               {"in_flight", processor_->in_flight()},
               {"grace_ms", config_.shutdown_grace.count()}});
    broker_.stop_consuming();
    health_.consuming = false;
    processor_->begin_shutdown();
    grace_over_.start(config_.shutdown_grace);
    shutdown_check_.start(kShutdownCheckInterval, kShutdownCheckInterval);
    hard_deadline_ = std::chrono::steady_clock::now() + config_.shutdown_grace + kAfterGraceLimit;
  }

  void on_grace_over() {
    if (grace_ended_) return;
    grace_ended_ = true;
    grace_over_.stop();
    hard_deadline_ = std::min(hard_deadline_, std::chrono::steady_clock::now() + kAfterGraceLimit);
    if (!processor_->idle()) {
      log::warn("grace period over: stopping the handlers still running",
                {{"in_flight", processor_->in_flight()}});
    }
    processor_->interrupt_all();
  }

  void check_shutdown() {
    const bool done = processor_->idle() && recorder_.pending() == 0;
    if (!done && std::chrono::steady_clock::now() < hard_deadline_) return;
    if (!done) {
      log::error("shutdown deadline reached with work unfinished; the broker requeues it",
                 {{"in_flight", processor_->in_flight()}, {"unwritten", recorder_.pending()}});
    }
    finish();
  }

  void finish() {
    shutdown_check_.stop();
    grace_over_.stop();
    tick_.stop();
    broker_.shutdown();  // sends the last acks, then closes
    if (dead_letters_) dead_letters_->stop();
    cancels_.stop();
    recorder_.stop(std::chrono::steady_clock::now() + std::chrono::seconds(3));
    log::info("consumer stopped", {{"processed", stats_.processed.load()},
                                   {"stuck_handlers", processor_->stuck_handlers()}});
    loop_.stop();
  }

  const Config& config_;
  HealthState& health_;
  EventLoop loop_;
  ConsumerMetrics metrics_;
  WorkerStats stats_;
  Mailbox mailbox_;
  WorkerPool pool_;
  AttemptRecorder recorder_;
  BrokerSession broker_;
  CancelListener cancels_;
  std::unique_ptr<Processor> processor_;
  std::unique_ptr<DeadLetterRecorder> dead_letters_;  // null: WARREN_DEAD_LETTER_RECORDER=0
  Timer tick_;
  Timer shutdown_check_;
  Timer grace_over_;
  SignalWatcher sigterm_;
  SignalWatcher sigint_;
  bool shutting_down_ = false;
  bool grace_ended_ = false;
  std::chrono::steady_clock::time_point hard_deadline_ =
      std::chrono::steady_clock::time_point::max();
};

}  // namespace

int run_consumer(const Config& config, const HandlerRegistry& handlers) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    // Consumers never migrate (a migration Job or the producer does).
    db::wait_for_schema(config.database_url, config.startup_wait, false, "this consumer",
                        "run `warrenctl migrate`, or start a producer with WARREN_AUTO_MIGRATE=1");
  } catch (const std::exception& error) {
    log::critical("cannot start", {{"error", error.what()}});
    return 1;
  }
  metrics::MetricsRegistry registry;
  metrics::add_process_metrics(registry);
  HealthState health;
  health.loop_tick_ms = steady_now_ms();
  HealthServer health_server(config.health_addr, health, config.max_stuck_handlers, registry);
  try {
    health_server.start();
  } catch (const std::exception& error) {
    log::critical("cannot start", {{"error", error.what()}});
    return 1;
  }
  log::info("consumer starting",
            {{"worker_id", config.worker_id},
             {"queues", config.queues},
             {"concurrency", config.concurrency},
             {"prefetch", config.prefetch > 0 ? config.prefetch : 2 * config.concurrency},
             {"handlers", handlers.types()},
             {"health_addr", config.health_addr},
             {"version", kVersion}});

  auto app = std::make_unique<ConsumerApp>(config, handlers, registry, health);
  if (!app->run()) {
    // A handler ignored its stop token and still holds a thread: the pool cannot be destroyed
    // (that would wait forever) and a thread cannot be killed, so leave without destructors.
    // Everything that matters (outcomes, acks, the worker row) was written before this point.
    log::warn("exiting with stuck handlers still running", {});
    health_server.stop();
    std::fflush(nullptr);
    std::_Exit(0);
  }
  app.reset();
  health_server.stop();
  return 0;
}

}  // namespace warren::consumer

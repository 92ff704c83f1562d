// The processor takes each delivery through its life, on the event loop thread:
//
//   delivery ─► decode ─(poison)─► reject, no requeue (the broker dead-letters it)
//      │
//      ▼ wait for a free worker slot (prefetched deliveries wait here, unclaimed)
//   claim (attempt_recorder, group commit) ─(duplicate / gave up / cancelled)─► ack
//      │ start attempt n
//      ▼
//   run the handler on the worker pool ── timeout / cancel / shutdown: stop token, 1 s grace
//      │ result
//      ▼
//   record the outcome (group commit)
//      │ retry: publish the delayed retry      dead letter: publish to the dead exchange
//      ▼ (both wait for the broker's confirm)
//   ack (batched by the broker session)        interrupted: nack, requeue
//
// Invariants: a delivery is acked only after the commit that covers it and the confirm of its
// follow-up (MESSAGING.md "Ack last"); a handler runs only after its claim committed; at most
// WARREN_CONCURRENCY handlers run, stuck ones (still running after their attempt was closed)
// included, so a stuck handler really does cost a slot.
//
// THREADING: every method runs on the loop thread. Worker threads only run handlers and post
// the result back through the mailbox.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <unordered_map>

#include "consumer/attempt_store.h"
#include "consumer/broker_session.h"
#include "consumer/event_loop.h"
#include "consumer/handler_registry.h"
#include "consumer/job_handler.h"
#include "shared/amqp/message.h"
#include "shared/job_message.h"

namespace warren {
struct Config;
}

namespace warren::consumer {

class AttemptRecorder;
class WorkerPool;
struct ConsumerMetrics;

// Counters the heartbeat row publishes (read by the database thread, hence atomics).
struct WorkerStats {
  std::atomic<int> in_flight{0};
  std::atomic<std::int64_t> processed{0};  // attempts finished, whatever their outcome
  std::atomic<std::int64_t> failed{0};     // attempts that did not succeed
};

class Processor {
 public:
  struct Parts {
    EventLoop& loop;
    Mailbox& mailbox;
    const Config& config;
    const HandlerRegistry& handlers;
    WorkerPool& pool;
    BrokerSession& broker;
    AttemptRecorder& recorder;
    ConsumerMetrics& metrics;
    WorkerStats& stats;
  };
  explicit Processor(Parts parts);
  ~Processor();
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  void on_delivery(amqp::Delivery delivery, DeliveryRef ref);
  void on_broker_lost(std::uint64_t generation);
  void on_written(BatchResult result);
  void on_refused(const std::vector<std::uint64_t>& keys);
  void on_cancel_requested(const std::string& job_id);

  // SIGTERM: take nothing new, give deliveries that have not started back to the broker.
  void begin_shutdown();
  // Grace period over: stop every handler; their attempts end as interrupted (requeued).
  void interrupt_all();
  // Nothing left in flight (stuck handlers aside: they are beyond waiting for).
  bool idle() const { return in_flight_.empty(); }
  std::size_t in_flight() const { return in_flight_.size(); }
  std::size_t stuck_handlers() const { return abandoned_.size(); }

 private:
  enum class Stage { kWaitingForSlot, kClaiming, kRunning, kRecording, kFollowUp };
  struct InFlight;

  void dispatch_waiting();
  void on_claimed(const ClaimResult& result);
  void start_handler(InFlight& job);
  void on_handler_done(std::uint64_t key, HandlerResult result);
  void end_early(InFlight& job, AttemptEnd end, std::string error_type, std::string message);
  void on_job_timer(std::uint64_t key);
  void on_stop_grace_over(std::uint64_t key);
  void record(InFlight& job, AttemptEnd end, const HandlerResult& result);
  void on_recorded(const OutcomeResult& result);
  void publish_dead_letter(InFlight& job, const DeadLetterRecord& record);
  void publish_retry(InFlight& job, const OutcomeResult& result);
  void finish(std::uint64_t key, bool ack);
  void release_slot();
  std::string type_label(const std::string& type) const;
  bool cancel_seen(const std::string& job_id);

  Parts parts_;
  std::map<std::uint64_t, std::unique_ptr<InFlight>> in_flight_;
  std::deque<std::uint64_t> waiting_for_slot_;
  std::unordered_map<std::string, std::uint64_t> running_by_job_;
  // Handlers still running after their attempt was closed without them, by key.
  std::map<std::uint64_t, std::chrono::steady_clock::time_point> abandoned_;
  // Cancels heard recently, for a cancel that overtakes the claim committing the job's start.
  std::map<std::string, std::chrono::steady_clock::time_point> recent_cancels_;
  int busy_slots_ = 0;  // claims in progress + handlers on the pool (stuck ones included)
  std::uint64_t next_key_ = 1;
  bool shutting_down_ = false;
  bool interrupting_ = false;
};

}  // namespace warren::consumer

// See processor.h.
#include "consumer/processor.h"

#include "consumer/attempt_recorder.h"
#include "consumer/consumer_metrics.h"
#include "consumer/worker_pool.h"
#include "shared/config.h"
#include "shared/logging.h"
#include "shared/time_format.h"
#include "shared/topology.h"

namespace warren::consumer {
namespace {

using Clock = std::chrono::steady_clock;

// After its stop token fires (timeout, cancel, shutdown) a handler has this long to return
// before its attempt is closed without it and its slot counted as stuck.
constexpr auto kStopGrace = std::chrono::milliseconds(1000);
// How long a cancel is remembered for a job this consumer does not (yet) run.
constexpr auto kRememberCancel = std::chrono::seconds(60);

const char* to_outcome_label(AttemptEnd end) {
  switch (end) {
    case AttemptEnd::kSucceeded:
      return "succeeded";
    case AttemptEnd::kFailed:
      return "failed";
    case AttemptEnd::kPermanentFailure:
      return "permanent_failure";
    case AttemptEnd::kTimedOut:
      return "timed_out";
    case AttemptEnd::kCancelled:
      return "cancelled";
    case AttemptEnd::kInterrupted:
      return "lost";
  }
  return "unknown";
}

log::Fields job_fields(const JobMessage& job, int attempt) {
  log::Fields fields = {{"job_id", job.id}, {"job_type", job.type}, {"attempt", attempt}};
  // traceparent = version-traceid-spanid-flags: the trace id is what log search joins on.
  if (job.traceparent.size() >= 35) fields["trace_id"] = job.traceparent.substr(3, 32);
  return fields;
}

}  // namespace

struct Processor::InFlight {
  std::uint64_t key = 0;
  DeliveryRef ref;
  bool redelivered = false;
  amqp::FieldTable headers;
  std::string body;
  JobMessage job;
  Stage stage = Stage::kWaitingForSlot;
  int attempt = 0;
  std::stop_source stop;
  Clock::time_point started;
  bool handler_running = false;
  bool connection_lost = false;  // the delivery's connection is gone: start nothing
  // Set when the loop ends the attempt before the handler does (timeout, cancel, interrupt).
  std::optional<AttemptEnd> forced_end;
  std::string forced_error_type;
  std::string forced_error_message;
  std::unique_ptr<Timer> timer;  // the attempt's timeout, then its stop grace
};

Processor::Processor(Parts parts) : parts_(parts) {}

Processor::~Processor() = default;

void Processor::on_delivery(amqp::Delivery delivery, DeliveryRef ref) {
  DecodedJob decoded = decode_job_message(delivery, parts_.config.default_backoff);
  if (!decoded.job) {
    log::warn("poison message rejected; the broker dead-letters it",
              {{"reason", decoded.poison_reason},
               {"message_id", delivery.message_id},
               {"routing_key", delivery.routing_key}});
    parts_.metrics.poison_messages.with().inc();
    parts_.broker.reject_no_requeue(ref);
    return;
  }
  if (shutting_down_) {
    parts_.broker.nack_requeue(ref);
    return;
  }
  auto job = std::make_unique<InFlight>();
  job->key = next_key_++;
  job->ref = ref;
  job->redelivered = delivery.redelivered;
  job->headers = std::move(delivery.headers);
  job->body = std::move(delivery.body);
  job->job = std::move(*decoded.job);
  waiting_for_slot_.push_back(job->key);
  in_flight_.emplace(job->key, std::move(job));
  dispatch_waiting();
}

// Claims only as many deliveries as there are free slots: a claimed job is `running` in the
// database, so claiming more than can run would show jobs running that wait in memory (and
// would turn a shutdown into lost attempts instead of a plain requeue).
void Processor::dispatch_waiting() {
  while (!waiting_for_slot_.empty() && busy_slots_ < parts_.config.concurrency) {
    const auto key = waiting_for_slot_.front();
    waiting_for_slot_.pop_front();
    auto& job = *in_flight_.at(key);
    job.stage = Stage::kClaiming;
    ++busy_slots_;
    parts_.recorder.claim(ClaimRequest{key, job.job, job.redelivered, job.headers});
  }
}

void Processor::release_slot() {
  --busy_slots_;
  dispatch_waiting();
}

void Processor::on_written(BatchResult result) {
  for (const auto& outcome : result.outcomes) on_recorded(outcome);
  for (const auto& claim : result.claims) on_claimed(claim);
}

// The database refused to record these (an SQL error even alone: a bug, or a message whose
// data Postgres cannot store). A refused claim never started: its message is rejected so the
// broker dead-letters it, visible to operators, rather than looping. A refused outcome is
// requeued: the redelivery closes the attempt as lost, and a message that keeps failing reaches
// the delivery limit and is dead-lettered.
void Processor::on_refused(const std::vector<std::uint64_t>& keys) {
  for (auto key : keys) {
    auto found = in_flight_.find(key);
    if (found == in_flight_.end()) continue;
    InFlight& job = *found->second;
    log::error("the database refused this job's bookkeeping",
               log::Fields(job_fields(job.job, job.attempt)));
    if (job.stage == Stage::kClaiming) {
      release_slot();
      parts_.broker.reject_no_requeue(job.ref);
      in_flight_.erase(found);
    } else {
      finish(key, false);
    }
  }
}

void Processor::on_claimed(const ClaimResult& result) {
  auto found = in_flight_.find(result.key);
  if (found == in_flight_.end()) return;
  InFlight& job = *found->second;
  if (result.closed_lost_attempt) {
    log::warn("previous attempt lost",
              log::Fields(job_fields(job.job, *result.closed_lost_attempt)));
  }
  switch (result.verdict) {
    case ClaimVerdict::kDuplicate:
      parts_.metrics.duplicate_deliveries.with({result.duplicate_reason}).inc();
      log::debug("duplicate delivery dropped",
                 {{"job_id", job.job.id}, {"reason", result.duplicate_reason}});
      release_slot();
      finish(result.key, true);
      return;
    case ClaimVerdict::kCancelled:
      release_slot();
      finish(result.key, true);
      return;
    case ClaimVerdict::kGaveUp:
      release_slot();
      job.attempt = result.dead_letter ? result.dead_letter->attempts : 0;
      parts_.metrics.dead_letters.with({"max_attempts"}).inc();
      publish_dead_letter(job, *result.dead_letter);
      return;
    case ClaimVerdict::kStart:
      break;
  }
  job.attempt = result.attempt;
  job.stage = Stage::kRunning;
  job.started = Clock::now();
  parts_.metrics.queue_wait.with({job.job.queue})
      .observe(std::chrono::duration<double>(result.queue_wait).count());
  if (job.connection_lost || interrupting_) {
    release_slot();
    job.stage = Stage::kRecording;
    HandlerResult none;
    job.forced_end = AttemptEnd::kInterrupted;
    job.forced_error_type = job.connection_lost ? "connection_lost" : "worker_shutdown";
    job.forced_error_message = "the consumer could not start the attempt it claimed";
    record(job, AttemptEnd::kInterrupted, none);
    return;
  }
  if (cancel_seen(job.job.id)) {
    release_slot();
    job.forced_error_type = "cancelled";
    job.forced_error_message = "cancelled before the attempt started";
    record(job, AttemptEnd::kCancelled, HandlerResult{});
    return;
  }
  if (parts_.handlers.find(job.job.type) == nullptr) {
    release_slot();
    record(job, AttemptEnd::kPermanentFailure,
           HandlerResult::permanent("unknown_type", "no handler for job type \"" + job.job.type +
                                                        "\" in this consumer"));
    return;
  }
  start_handler(job);
}

void Processor::start_handler(InFlight& job) {
  job.handler_running = true;
  running_by_job_[job.job.id] = job.key;
  parts_.metrics.in_flight.with().inc();
  parts_.stats.in_flight.fetch_add(1);

  // One timer per attempt: first its timeout (if it has one), then the grace after a stop.
  job.timer = std::make_unique<Timer>(parts_.loop, [this, key = job.key] { on_job_timer(key); });
  auto deadline = Clock::time_point::max();
  if (job.job.timeout_ms) {
    const auto timeout = std::chrono::milliseconds(*job.job.timeout_ms);
    deadline = job.started + timeout;
    job.timer->start(timeout);
  }

  const JobHandler* handler = parts_.handlers.find(job.job.type);
  parts_.pool.submit([this, handler, key = job.key, message = job.job, attempt = job.attempt,
                      deadline, stop = job.stop.get_token()] {
    HandlerResult result;
    try {
      const nlohmann::json payload = nlohmann::json::parse(message.payload_json);
      JobContext context{.id = message.id,
                         .type = message.type,
                         .queue = message.queue,
                         .attempt = attempt,
                         .max_attempts = message.max_attempts,
                         .payload = payload,
                         .deadline = deadline,
                         .stop = stop,
                         .log = JobLogger(job_fields(message, attempt))};
      result = run_handler(*handler, context);
    } catch (const std::exception& error) {
      // Only the payload parse can throw here (run_handler catches the handler's exceptions);
      // the decoder already checked the payload is an object, so this is unreachable in practice.
      result = HandlerResult::permanent("invalid_payload", error.what());
    }
    parts_.mailbox.post([this, key, result = std::move(result)]() mutable {
      on_handler_done(key, std::move(result));
    });
  });
}

void Processor::on_handler_done(std::uint64_t key, HandlerResult result) {
  --busy_slots_;
  if (abandoned_.erase(key) != 0) {
    // Its attempt was closed without it; the slot is free again.
    parts_.metrics.stuck_handlers.with().set(static_cast<double>(abandoned_.size()));
    dispatch_waiting();
    return;
  }
  auto found = in_flight_.find(key);
  if (found == in_flight_.end()) {
    dispatch_waiting();
    return;
  }
  InFlight& job = *found->second;
  job.handler_running = false;
  job.timer.reset();

  AttemptEnd end = AttemptEnd::kSucceeded;
  if (job.forced_end && *job.forced_end == AttemptEnd::kTimedOut) {
    end = AttemptEnd::kTimedOut;  // a result after the deadline came too late
  } else if (job.forced_end && result.kind == HandlerResult::Kind::kSuccess) {
    end = AttemptEnd::kSucceeded;  // it finished first: the work is done, keep it
  } else if (job.forced_end) {
    end = *job.forced_end;
  } else if (result.kind == HandlerResult::Kind::kRetry) {
    end = AttemptEnd::kFailed;
  } else if (result.kind == HandlerResult::Kind::kPermanent) {
    end = AttemptEnd::kPermanentFailure;
  }
  record(job, end, result);
  dispatch_waiting();
}

// Timeout, cancellation or interruption of a running handler: ask it to stop and give it a
// moment to return, so a cooperative handler's slot is freed and its attempt closed cleanly.
void Processor::end_early(InFlight& job, AttemptEnd end, std::string error_type,
                          std::string message) {
  if (job.stage != Stage::kRunning || job.forced_end) return;
  job.forced_end = end;
  job.forced_error_type = std::move(error_type);
  job.forced_error_message = std::move(message);
  job.stop.request_stop();
  if (job.timer) job.timer->start(kStopGrace);  // may run inside the timer's own callback
}

void Processor::on_job_timer(std::uint64_t key) {
  auto found = in_flight_.find(key);
  if (found == in_flight_.end()) return;
  InFlight& job = *found->second;
  if (!job.forced_end) {
    end_early(job, AttemptEnd::kTimedOut, "timeout",
              "attempt exceeded " + std::to_string(*job.job.timeout_ms) + " ms");
  } else {
    on_stop_grace_over(key);
  }
}

void Processor::on_stop_grace_over(std::uint64_t key) {
  auto found = in_flight_.find(key);
  if (found == in_flight_.end()) return;
  InFlight& job = *found->second;
  if (!job.handler_running || !job.forced_end) return;
  log::warn(
      "handler ignored its stop request; its attempt is closed and its slot is stuck "
      "until it returns",
      log::Fields(job_fields(job.job, job.attempt)));
  job.handler_running = false;
  abandoned_.emplace(key, Clock::now());
  parts_.metrics.stuck_handlers.with().set(static_cast<double>(abandoned_.size()));
  record(job, *job.forced_end, HandlerResult{});
}

void Processor::record(InFlight& job, AttemptEnd end, const HandlerResult& result) {
  if (job.stage == Stage::kRunning && running_by_job_.erase(job.job.id) != 0) {
    parts_.metrics.in_flight.with().dec();
    parts_.stats.in_flight.fetch_sub(1);
  }
  job.stage = Stage::kRecording;

  OutcomeRequest request;
  request.key = job.key;
  request.job = job.job;
  request.attempt = job.attempt;
  request.end = end;
  request.headers = job.headers;
  if (end == AttemptEnd::kSucceeded) {
    request.result = result.result;
  } else if (job.forced_end && end == *job.forced_end) {
    request.error_type = job.forced_error_type;
    request.error_message = job.forced_error_message;
  } else {
    request.error_type = result.error.type;
    request.error_message = result.error.message;
    request.requested_retry_delay = result.retry_in;
  }
  parts_.recorder.record(std::move(request));

  const double seconds = std::chrono::duration<double>(Clock::now() - job.started).count();
  parts_.metrics.attempt_duration.with({job.job.queue}).observe(seconds);
  parts_.metrics.attempts.with({job.job.queue, type_label(job.job.type), to_outcome_label(end)})
      .inc();
  parts_.stats.processed.fetch_add(1);
  if (end != AttemptEnd::kSucceeded) parts_.stats.failed.fetch_add(1);
  log::Fields fields = job_fields(job.job, job.attempt);
  fields["outcome"] = to_outcome_label(end);
  fields["duration_ms"] = static_cast<std::int64_t>(seconds * 1000);
  if (!request.error_type.empty()) fields["error_type"] = request.error_type;
  log::info("attempt finished", fields);
}

void Processor::on_recorded(const OutcomeResult& result) {
  auto found = in_flight_.find(result.key);
  if (found == in_flight_.end()) return;
  InFlight& job = *found->second;
  switch (result.verdict) {
    case OutcomeVerdict::kSucceeded:
    case OutcomeVerdict::kCancelled:
      finish(result.key, true);
      return;
    case OutcomeVerdict::kStale:
      // Someone declared this attempt lost and took the job over: our copy is not needed.
      parts_.metrics.duplicate_deliveries.with({"stale_attempt"}).inc();
      finish(result.key, true);
      return;
    case OutcomeVerdict::kRequeued:
      finish(result.key, false);
      return;
    case OutcomeVerdict::kRetryScheduled:
      parts_.metrics.retries_scheduled.with({job.job.queue}).inc();
      publish_retry(job, result);
      return;
    case OutcomeVerdict::kDeadLettered:
      parts_.metrics.dead_letters.with({result.dead_letter->reason}).inc();
      publish_dead_letter(job, *result.dead_letter);
      return;
  }
}

// The retry is already safe in the outbox (committed with the failed attempt); publishing it
// here is the fast path, and the original delivery is acked only once the broker confirmed it.
void Processor::publish_retry(InFlight& job, const OutcomeResult& result) {
  job.stage = Stage::kFollowUp;
  JobMessage next = job.job;
  next.attempt = job.attempt + 1;
  const auto now = std::chrono::system_clock::now();
  const auto wait =
      std::max(std::chrono::milliseconds(0),
               std::chrono::ceil<std::chrono::milliseconds>(result.next_attempt_at - now));
  const auto message = make_job_message(next, parts_.config.amqp_prefix, wait, now);
  parts_.broker.publish(message, [this, key = job.key, outbox_id = result.outbox_id](
                                     bool ok, const std::string& why) {
    if (ok) {
      parts_.recorder.forget_outbox_row(outbox_id);
    } else {
      // Requeued, the delivery comes back and is dropped as stale; the outbox row is
      // published by a producer's relay once its lease runs out.
      parts_.metrics.follow_up_publish_failures.with({"retry"}).inc();
      log::warn("retry publish not confirmed; the outbox will publish it", {{"error", why}});
    }
    finish(key, ok);
  });
}

void Processor::publish_dead_letter(InFlight& job, const DeadLetterRecord& record) {
  job.stage = Stage::kFollowUp;
  TopologyNames names{parts_.config.amqp_prefix};
  amqp::OutgoingMessage message;
  message.exchange = names.dead_exchange();
  message.routing_key = job.job.queue;
  message.body = job.body;
  message.content_type = "application/json";
  message.message_id = job.job.id;
  message.type = job.job.type;
  message.app_id = "warren";
  message.timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  message.headers = dead_letter_headers(job.headers, record);
  message.mandatory = true;
  log::warn("job dead-lettered",
            {{"job_id", job.job.id}, {"reason", record.reason}, {"error_type", record.error_type}});
  parts_.broker.publish(message, [this, key = job.key](bool ok, const std::string& why) {
    if (!ok) {
      // The dead_letters row is committed; only the broker's copy is missing. Requeued, the
      // delivery comes back, finds the job failed and is dropped.
      parts_.metrics.follow_up_publish_failures.with({"dead_letter"}).inc();
      log::warn("dead-letter publish not confirmed", {{"error", why}});
    }
    finish(key, ok);
  });
}

void Processor::finish(std::uint64_t key, bool ack) {
  auto found = in_flight_.find(key);
  if (found == in_flight_.end()) return;
  if (ack) {
    parts_.broker.ack(found->second->ref);
  } else {
    parts_.broker.nack_requeue(found->second->ref);
  }
  in_flight_.erase(found);
}

void Processor::on_broker_lost(std::uint64_t generation) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    InFlight& job = *it->second;
    if (job.ref.generation != generation) {
      ++it;
      continue;
    }
    job.connection_lost = true;
    if (job.stage == Stage::kWaitingForSlot) {
      // Never claimed: the broker has it back, nothing was written.
      std::erase(waiting_for_slot_, job.key);
      it = in_flight_.erase(it);
      continue;
    }
    if (job.stage == Stage::kRunning) {
      end_early(job, AttemptEnd::kInterrupted, "connection_lost",
                "the consumer lost its broker connection during the attempt");
    }
    ++it;
  }
}

void Processor::on_cancel_requested(const std::string& job_id) {
  const auto now = Clock::now();
  std::erase_if(recent_cancels_,
                [&](const auto& entry) { return now - entry.second > kRememberCancel; });
  recent_cancels_[job_id] = now;
  auto running = running_by_job_.find(job_id);
  if (running == running_by_job_.end()) return;
  auto found = in_flight_.find(running->second);
  if (found == in_flight_.end()) return;
  log::info("cancelling running job", {{"job_id", job_id}});
  end_early(*found->second, AttemptEnd::kCancelled, "cancelled", "cancelled by request");
}

bool Processor::cancel_seen(const std::string& job_id) {
  return recent_cancels_.count(job_id) != 0;
}

void Processor::begin_shutdown() {
  shutting_down_ = true;
  // A failing nack loses the connection, and on_broker_lost() then erases waiting deliveries
  // from both containers: iterate a copy of the list, and erase each entry before its nack.
  std::deque<std::uint64_t> waiting;
  waiting.swap(waiting_for_slot_);
  for (auto key : waiting) {
    auto found = in_flight_.find(key);
    if (found == in_flight_.end()) continue;  // erased by on_broker_lost()
    const DeliveryRef ref = found->second->ref;
    in_flight_.erase(found);
    parts_.broker.nack_requeue(ref);
  }
}

void Processor::interrupt_all() {
  interrupting_ = true;
  for (auto& [key, job] : in_flight_) {
    if (job->stage == Stage::kRunning) {
      end_early(*job, AttemptEnd::kInterrupted, "worker_shutdown",
                "the consumer shut down before the attempt finished; the job was requeued");
    }
  }
}

std::string Processor::type_label(const std::string& type) const {
  return parts_.handlers.find(type) != nullptr ? type : "_unknown";
}

}  // namespace warren::consumer

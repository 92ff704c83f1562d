// See attempt_recorder.h.
#include "consumer/attempt_recorder.h"

#include <algorithm>

#include "consumer/consumer_metrics.h"
#include "consumer/event_loop.h"
#include "shared/config.h"
#include "shared/db/connection_pool.h"
#include "shared/logging.h"
#include "shared/topology.h"

namespace warren::consumer {
namespace {

using Clock = std::chrono::steady_clock;

// How long the thread waits for more requests when it has only a few: a claim or an outcome
// waits at most this long for company, and 500 jobs/s already share commits.
constexpr auto kLinger = std::chrono::milliseconds(2);
constexpr std::size_t kMaxBatch = 500;
constexpr auto kMinRetryDelay = std::chrono::milliseconds(100);
constexpr auto kMaxRetryDelay = std::chrono::milliseconds(5000);

std::size_t size_of(const std::vector<OutcomeRequest>& o, const std::vector<ClaimRequest>& c) {
  return o.size() + c.size();
}

}  // namespace

AttemptRecorder::AttemptRecorder(const Config& config, db::WorkerInfo worker,
                                 std::function<db::WorkerCounters()> counters, Mailbox& mailbox,
                                 ConsumerMetrics& metrics, Callbacks callbacks)
    : config_(config),
      worker_(std::move(worker)),
      counters_(std::move(counters)),
      mailbox_(mailbox),
      metrics_(metrics),
      callbacks_(std::move(callbacks)),
      retry_delay_(kMinRetryDelay) {}

AttemptRecorder::~AttemptRecorder() {
  if (thread_.joinable()) stop(Clock::now());
}

void AttemptRecorder::start() {
  next_heartbeat_ = Clock::now();
  thread_ = std::thread([this] { run(); });
}

void AttemptRecorder::claim(ClaimRequest request) {
  {
    std::lock_guard lock(mutex_);
    queued_.claims.push_back(std::move(request));
  }
  wake_.notify_one();
}

void AttemptRecorder::record(OutcomeRequest request) {
  {
    std::lock_guard lock(mutex_);
    queued_.outcomes.push_back(std::move(request));
  }
  wake_.notify_one();
}

void AttemptRecorder::forget_outbox_row(std::int64_t id) {
  {
    std::lock_guard lock(mutex_);
    queued_.outbox_rows.push_back(id);
  }
  wake_.notify_one();
}

void AttemptRecorder::stop(Clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    stop_deadline_ = deadline;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::size_t AttemptRecorder::pending() const {
  std::lock_guard lock(mutex_);
  return size_of(queued_.outcomes, queued_.claims) + in_write_;
}

void AttemptRecorder::run() {
  for (;;) {
    std::unique_lock lock(mutex_);
    wake_.wait_until(lock, next_heartbeat_, [&] { return stopping_ || !queued_.empty(); });
    if (!stopping_ && !queued_.empty() && size_of(queued_.outcomes, queued_.claims) < kMaxBatch) {
      wake_.wait_for(lock, kLinger, [&] {
        return stopping_ || size_of(queued_.outcomes, queued_.claims) >= kMaxBatch;
      });
    }
    Batch batch = take_batch(lock);
    const bool stopping = stopping_;
    const auto deadline = stop_deadline_;
    lock.unlock();

    if (!batch.empty() && !write(batch)) {
      put_back(std::move(batch));
      if (stopping && Clock::now() >= deadline) {
        log::error(
            "database unavailable at shutdown; unwritten attempts will be recovered "
            "from the broker's redeliveries",
            {{"pending", pending()}});
        return;
      }
      std::unique_lock wait_lock(mutex_);
      wake_.wait_for(wait_lock, retry_delay_, [&] { return stopping_ && !stopping; });
      retry_delay_ = std::min(retry_delay_ * 2, kMaxRetryDelay);
      continue;
    }
    if (stopping && batch.empty()) {
      if (ensure_connected()) {
        try {
          pqxx::work tx(*connection_);
          db::mark_worker_stopped(tx, worker_.id, counters_());
          tx.commit();
        } catch (const std::exception& error) {
          log::warn("could not mark the worker stopped", {{"error", error.what()}});
        }
      }
      return;
    }
    heartbeat_if_due();
  }
}

AttemptRecorder::Batch AttemptRecorder::take_batch(std::unique_lock<std::mutex>&) {
  Batch batch;
  auto take = [](auto& from, auto& to, std::size_t limit) {
    const std::size_t n = std::min(limit, from.size());
    to.assign(std::make_move_iterator(from.begin()), std::make_move_iterator(from.begin() + n));
    from.erase(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
  };
  // Outcomes first: they free worker slots and end attempts that are already running.
  take(queued_.outcomes, batch.outcomes, kMaxBatch);
  take(queued_.claims, batch.claims, kMaxBatch - batch.outcomes.size());
  batch.outbox_rows = std::move(queued_.outbox_rows);
  queued_.outbox_rows.clear();
  in_write_ = size_of(batch.outcomes, batch.claims);
  return batch;
}

void AttemptRecorder::put_back(Batch batch) {
  std::lock_guard lock(mutex_);
  auto prepend = [](auto& into, auto& items) {
    into.insert(into.begin(), std::make_move_iterator(items.begin()),
                std::make_move_iterator(items.end()));
  };
  prepend(queued_.outcomes, batch.outcomes);
  prepend(queued_.claims, batch.claims);
  prepend(queued_.outbox_rows, batch.outbox_rows);
  in_write_ = 0;
}

bool AttemptRecorder::ensure_connected() {
  if (connection_ && connection_->is_open()) return true;
  try {
    connection_ = db::connect(config_.database_url);
    if (!registered_) {
      // Once per process: started_at and the counters describe this process's life.
      pqxx::work tx(*connection_);
      db::register_worker(tx, worker_);
      tx.commit();
      registered_ = true;
      next_heartbeat_ = Clock::now() + config_.heartbeat;
    }
    if (ever_connected_) metrics_.reconnects.with({"database"}).inc();
    ever_connected_ = true;
    return true;
  } catch (const std::exception& error) {
    connection_.reset();
    set_database_state(false, error.what());
    return false;
  }
}

bool AttemptRecorder::write(Batch& batch) {
  const WriteStatus status = write_once(batch);
  if (status != WriteStatus::kRefused) return status == WriteStatus::kWritten;
  if (size_of(batch.outcomes, batch.claims) <= 1) {
    reject(batch);
    return true;
  }
  // An SQL error is not an outage: some request cannot be written (a bug, or data Postgres
  // refuses, such as \u0000 in a payload published by something other than Warren). Writing
  // the requests one by one lets the others through instead of wedging every batch behind it.
  Batch retry_later;
  auto one_by_one = [&](Batch single) {
    switch (write_once(single)) {
      case WriteStatus::kWritten:
        return;
      case WriteStatus::kRefused:
        reject(single);
        return;
      case WriteStatus::kFailed:
        for (auto& o : single.outcomes) retry_later.outcomes.push_back(std::move(o));
        for (auto& c : single.claims) retry_later.claims.push_back(std::move(c));
        return;
    }
  };
  for (auto& outcome : batch.outcomes) one_by_one(Batch{{std::move(outcome)}, {}, {}});
  for (auto& claim : batch.claims) one_by_one(Batch{{}, {std::move(claim)}, {}});
  retry_later.outbox_rows = std::move(batch.outbox_rows);
  if (!retry_later.empty()) put_back(std::move(retry_later));
  return true;
}

void AttemptRecorder::reject(const Batch& batch) {
  std::vector<std::uint64_t> keys;
  for (const auto& o : batch.outcomes) keys.push_back(o.key);
  for (const auto& c : batch.claims) keys.push_back(c.key);
  {
    std::lock_guard lock(mutex_);
    in_write_ = 0;
  }
  mailbox_.post([on_refused = callbacks_.on_refused, keys] { on_refused(keys); });
}

AttemptRecorder::WriteStatus AttemptRecorder::write_once(Batch& batch) {
  if (!ensure_connected()) return WriteStatus::kFailed;
  const auto started = Clock::now();
  try {
    pqxx::work tx(*connection_);
    AttemptStoreSettings settings;
    settings.worker_id = worker_.id;
    settings.dead_exchange = TopologyNames{config_.amqp_prefix}.dead_exchange();
    settings.now = std::chrono::system_clock::now();
    BatchResult result = write_attempt_batch(tx, settings, batch.outcomes, batch.claims);
    if (!batch.outbox_rows.empty()) delete_outbox_rows(tx, batch.outbox_rows);
    tx.commit();
    metrics_.db_commit_seconds.with().observe(
        std::chrono::duration<double>(Clock::now() - started).count());
    if (!batch.claims.empty()) {
      metrics_.db_batch_size.with({"claims"}).observe(static_cast<double>(batch.claims.size()));
    }
    if (!batch.outcomes.empty()) {
      metrics_.db_batch_size.with({"outcomes"}).observe(static_cast<double>(batch.outcomes.size()));
    }
    {
      std::lock_guard lock(mutex_);
      in_write_ = 0;
    }
    retry_delay_ = kMinRetryDelay;
    set_database_state(true, "");
    mailbox_.post([on_written = callbacks_.on_written, result = std::move(result)]() mutable {
      on_written(std::move(result));
    });
    return WriteStatus::kWritten;
  } catch (const pqxx::transaction_rollback& error) {
    // Deadlock or serialization failure against another transaction: nothing was written,
    // the same batch is simply tried again.
    log::warn("attempt batch rolled back, retrying", {{"error", error.what()}});
    return WriteStatus::kFailed;
  } catch (const pqxx::broken_connection& error) {
    connection_.reset();
    set_database_state(false, error.what());
    return WriteStatus::kFailed;
  } catch (const pqxx::sql_error& error) {
    log::error("attempt batch refused by the database", {{"error", error.what()},
                                                         {"claims", batch.claims.size()},
                                                         {"outcomes", batch.outcomes.size()}});
    if (connection_ && !connection_->is_open()) connection_.reset();
    return WriteStatus::kRefused;
  } catch (const std::exception& error) {
    log::error("attempt batch failed", {{"error", error.what()}});
    connection_.reset();
    return WriteStatus::kFailed;
  }
}

void AttemptRecorder::heartbeat_if_due() {
  if (Clock::now() < next_heartbeat_) return;
  next_heartbeat_ = Clock::now() + config_.heartbeat;
  if (!ensure_connected()) return;
  try {
    pqxx::work tx(*connection_);
    if (!db::record_heartbeat(tx, worker_.id, counters_())) db::register_worker(tx, worker_);
    tx.commit();
    set_database_state(true, "");
  } catch (const pqxx::broken_connection& error) {
    connection_.reset();
    set_database_state(false, error.what());
  } catch (const std::exception& error) {
    log::warn("worker heartbeat failed", {{"error", error.what()}});
  }
}

// Reported to the loop on changes only, so a long outage is one message, not one per retry.
void AttemptRecorder::set_database_state(bool available, const std::string& why) {
  if (available ? available_reported_ : unavailable_reported_) return;
  available_reported_ = available;
  unavailable_reported_ = !available;
  if (available) {
    log::info("database available", {});
  } else {
    log::warn("database unavailable", {{"error", why}});
  }
  mailbox_.post(
      [on_state = callbacks_.on_database_state, available, why] { on_state(available, why); });
}

}  // namespace warren::consumer

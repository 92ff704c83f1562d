// See bulk_operation_runner.h.
#include "producer/bulk_operation_runner.h"

#include <algorithm>

#include "producer/producer_metrics.h"
#include "shared/config.h"
#include "shared/db/bulk_operation_store.h"
#include "shared/db/connection_pool.h"
#include "shared/logging.h"

namespace warren {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kPollInterval{500};  // how soon an operation created elsewhere starts
constexpr milliseconds kRetryDelay{1000};
// Items per transaction: about five chunks a second at the configured rate, so progress moves
// smoothly and one transaction stays short.
constexpr int kMaxChunk = 200;
constexpr int kDiscardChunk = 500;
// An operation whose chunks the database keeps refusing (not an outage) is marked failed
// after this many attempts in a row, rather than retried forever.
constexpr int kMaxChunkFailures = 5;

}  // namespace

BulkOperationRunner::BulkOperationRunner(const Config& config, ProducerMetrics& metrics,
                                         std::function<void()> on_requeued)
    : config_(config), metrics_(metrics), on_requeued_(std::move(on_requeued)) {}

BulkOperationRunner::~BulkOperationRunner() {
  stop();
}

void BulkOperationRunner::start() {
  thread_ = std::thread([this] { run(); });
}

void BulkOperationRunner::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BulkOperationRunner::notify() {
  {
    std::lock_guard lock(mutex_);
    notified_ = true;
  }
  wake_.notify_one();
}

bool BulkOperationRunner::stopping() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

bool BulkOperationRunner::wait(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, timeout, [&] { return notified_ || stopping_; });
  notified_ = false;
  return !stopping_;
}

void BulkOperationRunner::run() {
  while (!stopping()) {
    try {
      if (!hold_lock() || !run_next_operation()) {
        if (!wait(kPollInterval)) return;
      }
    } catch (const std::exception& error) {
      // Database loss (or a bug): the lock went with the connection; the operation's state is
      // all in Postgres, so whichever runner locks next resumes it.
      log::warn("bulk operation runner: database error, retrying", {{"error", error.what()}});
      connection_.reset();
      locked_ = false;
      if (!wait(kRetryDelay)) return;
    }
  }
}

bool BulkOperationRunner::hold_lock() {
  if (connection_ && !connection_->is_open()) {
    connection_.reset();
    locked_ = false;
  }
  if (locked_) return true;
  if (!connection_) connection_ = db::connect(config_.database_url);
  locked_ = db::try_take_runner_lock(*connection_);
  if (locked_) log::info("bulk operation runner: this producer runs bulk operations", {});
  return locked_;
}

bool BulkOperationRunner::run_next_operation() {
  std::optional<db::RunnableOperation> operation;
  {
    pqxx::read_transaction tx(*connection_);
    operation = db::next_running_operation(tx);
  }
  if (!operation) return false;
  const bool requeue = operation->kind == "requeue";
  const int chunk_size =
      requeue ? std::clamp(config_.replay_rate / 5, 1, kMaxChunk) : kDiscardChunk;
  log::info("bulk operation running", {{"operation_id", operation->id},
                                       {"kind", operation->kind},
                                       {"rate_per_second", requeue ? config_.replay_rate : 0}});

  const auto started = Clock::now();
  std::int64_t processed = 0;
  int failures_in_a_row = 0;
  while (!stopping()) {
    db::ChunkResult chunk;
    try {
      pqxx::work tx(*connection_);
      chunk = db::run_operation_chunk(tx, config_, operation->id, chunk_size);
      tx.commit();
      failures_in_a_row = 0;
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::transaction_rollback& error) {
      log::warn("bulk operation chunk rolled back, retrying", {{"error", error.what()}});
      continue;
    } catch (const pqxx::sql_error& error) {
      if (!connection_->is_open()) throw;
      log::error("bulk operation chunk refused",
                 {{"operation_id", operation->id}, {"error", error.what()}});
      if (++failures_in_a_row >= kMaxChunkFailures) {
        pqxx::work tx(*connection_);
        db::fail_operation(tx, operation->id, error.what());
        tx.commit();
        return true;
      }
      if (!wait(kRetryDelay)) return true;
      continue;
    }
    const char* action = requeue ? "requeued" : "discarded";
    metrics_.dead_letter_actions.with({action, "bulk"}).inc(chunk.done);
    metrics_.bulk_item_failures.with({operation->kind}).inc(chunk.failed);
    if (requeue && chunk.done > 0 && on_requeued_) on_requeued_();
    if (chunk.finished) {
      log::info("bulk operation finished", {{"operation_id", operation->id}});
      return true;
    }
    processed += chunk.done + chunk.failed;
    if (chunk.done + chunk.failed == 0) {
      // Its remaining items are locked by another runner (a takeover in progress): look again.
      if (!wait(kRetryDelay)) return true;
      continue;
    }
    if (requeue) {
      // Stay on the line processed / rate since the start.
      const auto due = started + milliseconds(processed * 1000 / config_.replay_rate);
      std::unique_lock lock(mutex_);
      if (wake_.wait_until(lock, due, [&] { return stopping_; })) return true;
    }
  }
  return true;
}

}  // namespace warren

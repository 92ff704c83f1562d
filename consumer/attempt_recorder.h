// The consumer's database thread: group commit of claims and outcomes (attempt_store.h), the
// worker heartbeat row, and the retry outbox rows to forget once their publish was confirmed.
//
// Why a thread of its own: libpqxx calls block, and the event loop must keep turning (AMQP
// heartbeats, acks, the health port). The loop hands requests over with claim() / record();
// the thread takes everything queued (waiting a moment for more when there is little, so one
// transaction serves many jobs), commits it, and posts the results back through the loop's
// Mailbox. While a commit runs, the next batch accumulates: under load batches grow by
// themselves, with no tuning.
//
// Database loss: the batch stays queued and is retried after a capped backoff until it commits;
// the loop is told (on_database_state) so it stops consuming and reports not ready. Nothing is
// dropped and nothing is acked meanwhile, since acks wait for these results.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "consumer/attempt_store.h"
#include "shared/db/worker_registry.h"

namespace warren {
struct Config;
}

namespace warren::consumer {

class Mailbox;
struct ConsumerMetrics;

class AttemptRecorder {
 public:
  struct Callbacks {
    // Both run on the loop thread (posted through the mailbox).
    std::function<void(BatchResult)> on_written;
    std::function<void(bool available, const std::string& why)> on_database_state;
    // Requests the database refused with an SQL error even when written alone (by key).
    std::function<void(const std::vector<std::uint64_t>& keys)> on_refused;
  };

  AttemptRecorder(const Config& config, db::WorkerInfo worker,
                  std::function<db::WorkerCounters()> counters, Mailbox& mailbox,
                  ConsumerMetrics& metrics, Callbacks callbacks);
  ~AttemptRecorder();
  AttemptRecorder(const AttemptRecorder&) = delete;
  AttemptRecorder& operator=(const AttemptRecorder&) = delete;

  void start();
  // Any thread.
  void claim(ClaimRequest request);
  void record(OutcomeRequest request);
  void forget_outbox_row(std::int64_t id);

  // Writes what is still queued, marks the worker stopped and ends the thread; gives up on the
  // database after `deadline` (what was not written is then recovered by the claim rules: the
  // broker redelivers, the attempt is found lost).
  void stop(std::chrono::steady_clock::time_point deadline);

  // Requests queued or being written: shutdown waits for zero.
  std::size_t pending() const;

 private:
  struct Batch {
    std::vector<OutcomeRequest> outcomes;
    std::vector<ClaimRequest> claims;
    std::vector<std::int64_t> outbox_rows;
    bool empty() const { return outcomes.empty() && claims.empty() && outbox_rows.empty(); }
  };

  void run();
  bool ensure_connected();
  Batch take_batch(std::unique_lock<std::mutex>& lock);
  void put_back(Batch batch);
  enum class WriteStatus { kWritten, kFailed, kRefused };
  bool write(Batch& batch);
  WriteStatus write_once(Batch& batch);
  void reject(const Batch& batch);
  void heartbeat_if_due();
  void set_database_state(bool available, const std::string& why);

  const Config& config_;
  const db::WorkerInfo worker_;
  std::function<db::WorkerCounters()> counters_;
  Mailbox& mailbox_;
  ConsumerMetrics& metrics_;
  Callbacks callbacks_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  Batch queued_;              // guarded by mutex_
  std::size_t in_write_ = 0;  // guarded by mutex_: requests taken by a write in progress
  bool stopping_ = false;     // guarded by mutex_
  std::chrono::steady_clock::time_point stop_deadline_;  // guarded by mutex_

  // Owned by the recorder thread.
  std::unique_ptr<pqxx::connection> connection_;
  bool registered_ = false;
  bool available_reported_ = false;
  bool unavailable_reported_ = false;
  bool ever_connected_ = false;
  std::chrono::steady_clock::time_point next_heartbeat_;
  std::chrono::milliseconds retry_delay_;

  std::thread thread_;
};

}  // namespace warren::consumer

// Runs bulk dead-letter operations (db/bulk_operation_store.h) to completion, one at a time
// across the whole deployment, at a bounded pace.
//
// Every producer replica has a runner; the one holding a Postgres advisory lock (a session lock
// on the runner's own connection) is the one that works. If that producer dies, Postgres drops
// its connection and the lock with it, and another replica's runner (or the same producer after
// a restart) takes over within a poll interval, resuming the operation from its pending items.
// Correctness does not depend on the lock (items are claimed with row locks and done at most
// once); the lock is what makes the pace a deployment-wide one.
//
// Pace: requeues are limited to WARREN_REPLAY_RATE dead letters per second (default 500), so a
// replay of 100,000 jobs reaches the broker and the consumers as a steady stream rather than a
// flood, and leaves room for new work. Discards touch only Postgres and run unpaced.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>

namespace warren {

struct Config;
struct ProducerMetrics;

class BulkOperationRunner {
 public:
  // `on_requeued` runs after each committed chunk that requeued jobs (wakes the outbox relay).
  BulkOperationRunner(const Config& config, ProducerMetrics& metrics,
                      std::function<void()> on_requeued);
  ~BulkOperationRunner();
  BulkOperationRunner(const BulkOperationRunner&) = delete;
  BulkOperationRunner& operator=(const BulkOperationRunner&) = delete;

  void start();
  void stop();
  // An operation was created: look now rather than at the next poll.
  void notify();

 private:
  void run();
  // True while this runner holds the deployment-wide lock (taking it if free).
  bool hold_lock();
  // Runs the oldest running operation to its end (or until stop); false when there was none.
  bool run_next_operation();
  // Sleeps until notified, stopped or `timeout`; returns false when stopping.
  bool wait(std::chrono::milliseconds timeout);
  bool stopping();

  const Config& config_;
  ProducerMetrics& metrics_;
  std::function<void()> on_requeued_;
  std::unique_ptr<pqxx::connection> connection_;  // holds the advisory lock while open
  bool locked_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool notified_ = false;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace warren

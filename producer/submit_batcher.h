// Group commit for job submissions. Every HTTP thread that accepts jobs hands them here and
// waits; a small number of writer threads each take everything queued at that moment and write
// it in one transaction (jobs + outbox rows in one statement), then wake the waiters. Under
// load, requests that arrive while a commit is in flight share the next one, so throughput is
// not bounded by one fsync per job; at low load a request waits for nothing but its own commit.
//
// The 202 of API.md is sent only after submit() returns, i.e. after the commit: accepted means
// durable. After each commit the outbox relay is woken to publish at once.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shared/db/connection_pool.h"
#include "shared/db/job_store.h"

namespace warren {

class SubmitBatcher {
 public:
  struct Options {
    std::string database_url;
    int writers = 2;  // connections committing in parallel
    int max_jobs_per_commit = 1000;
  };

  // `on_committed` runs on a writer thread after each successful commit (wakes the relay).
  SubmitBatcher(Options options, std::function<void()> on_committed);
  ~SubmitBatcher();
  SubmitBatcher(const SubmitBatcher&) = delete;
  SubmitBatcher& operator=(const SubmitBatcher&) = delete;

  // Blocks until the jobs are committed (or refused by their idempotency key). Throws
  // db::DatabaseUnavailable when the database cannot be reached: nothing was accepted.
  std::vector<db::InsertOutcome> submit(std::vector<db::NewJob> jobs);

  // Called after each commit with the number of jobs it wrote (for the batch-size metric).
  void set_batch_observer(std::function<void(std::size_t)> observer) {
    batch_observer_ = std::move(observer);
  }

 private:
  // What a writer hands back to a waiting request. Failures travel as values, not exception
  // objects: the waiter throws its own, so no exception is shared between threads.
  struct Result {
    enum class Error { kNone, kUnavailable, kInternal };
    std::vector<db::InsertOutcome> outcomes;
    Error error = Error::kNone;
    std::string message;
  };

  struct Pending {
    std::vector<db::NewJob> jobs;
    std::promise<Result> done;
  };

  void run_writer();
  std::vector<Pending> take_batch(std::unique_lock<std::mutex>& lock);
  void commit(std::unique_ptr<pqxx::connection>& connection, std::vector<Pending>& batch);
  static std::vector<std::vector<db::InsertOutcome>> write(pqxx::work& tx,
                                                           std::vector<Pending>& batch);
  static bool needs_own_savepoint(const std::vector<db::NewJob>& jobs);
  static void fail_all(std::vector<Pending>& batch, bool unavailable, const std::string& message);

  const Options options_;
  const std::function<void()> on_committed_;
  std::function<void(std::size_t)> batch_observer_;  // set before the first submit
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<Pending> queue_;  // guarded by mutex_
  bool stopping_ = false;      // guarded by mutex_
  std::vector<std::thread> writers_;
};

}  // namespace warren

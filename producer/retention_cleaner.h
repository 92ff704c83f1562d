// Retention: deletes finished jobs (and, by cascade, their attempts) and the dead letters an
// operator resolved (requeued or discarded, with their audit rows) older than WARREN_RETENTION_*,
// in batches of WARREN_RETENTION_BATCH rows per transaction so it never holds long locks or builds
// huge WAL bursts. Runs in every producer replica; SKIP LOCKED makes concurrent cleaners split the
// work instead of waiting on each other.
//
// Failed jobs are kept while a dead letter of theirs is still `dead` (an operator may replay it).
// Rows of consumers that stopped or are gone leave the workers table a day after their last
// heartbeat (RetentionSettings::departed_workers).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "producer/producer_metrics.h"
#include "shared/config.h"

namespace warren {

struct RetentionReport {
  int64_t succeeded = 0, failed = 0, cancelled = 0, dead_letters = 0, workers = 0;
};

// One full pass: loops batch by batch until nothing is left to delete.
RetentionReport run_retention(pqxx::connection& connection, const RetentionSettings& settings);

class RetentionCleaner {
 public:
  RetentionCleaner(const Config& config, ProducerMetrics& metrics);
  ~RetentionCleaner();
  RetentionCleaner(const RetentionCleaner&) = delete;
  RetentionCleaner& operator=(const RetentionCleaner&) = delete;

 private:
  void run();

  const Config& config_;
  ProducerMetrics& metrics_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace warren

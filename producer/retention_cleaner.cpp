// See retention_cleaner.h.
#include "producer/retention_cleaner.h"

#include "shared/db/connection_pool.h"
#include "shared/db/worker_registry.h"
#include "shared/logging.h"

namespace warren {
namespace {

// Deletes one batch of jobs in `status` finished before the retention period; returns the count.
int64_t delete_job_batch(pqxx::connection& connection, const std::string& status,
                         std::chrono::seconds keep, int batch) {
  pqxx::work tx(connection);
  auto result = tx.exec_params(R"(
    DELETE FROM jobs WHERE id IN (
      SELECT j.id FROM jobs j
      WHERE j.status = $1 AND j.finished_at < now() - $2 * interval '1 second'
        AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.job_id = j.id AND d.state = 'dead')
      ORDER BY j.finished_at
      LIMIT $3
      FOR UPDATE SKIP LOCKED))",
                               status, static_cast<int64_t>(keep.count()), batch);
  tx.commit();
  return static_cast<int64_t>(result.affected_rows());
}

int64_t delete_dead_letter_batch(pqxx::connection& connection, std::chrono::seconds keep,
                                 int batch) {
  pqxx::work tx(connection);
  auto result = tx.exec_params(R"(
    DELETE FROM dead_letters WHERE id IN (
      SELECT id FROM dead_letters
      WHERE state IN ('requeued', 'discarded')
        AND coalesce(discarded_at, requeued_at) < now() - $1 * interval '1 second'
      ORDER BY coalesce(discarded_at, requeued_at)
      LIMIT $2
      FOR UPDATE SKIP LOCKED))",
                               static_cast<int64_t>(keep.count()), batch);
  tx.commit();
  return static_cast<int64_t>(result.affected_rows());
}

template <typename DeleteBatch>
int64_t delete_all(DeleteBatch&& delete_batch, int batch) {
  int64_t total = 0;
  while (true) {
    const int64_t deleted = delete_batch();
    total += deleted;
    if (deleted < batch) return total;
  }
}

}  // namespace

RetentionReport run_retention(pqxx::connection& c, const RetentionSettings& s) {
  RetentionReport report;
  const int batch = s.batch_size;
  auto jobs = [&](const char* status, std::chrono::seconds keep) -> int64_t {
    if (keep.count() == 0) return 0;  // 0 keeps forever
    return delete_all([&] { return delete_job_batch(c, status, keep, batch); }, batch);
  };
  report.succeeded = jobs("succeeded", s.succeeded);
  report.failed = jobs("failed", s.failed);
  report.cancelled = jobs("cancelled", s.cancelled);
  if (s.discarded_dead_letters.count() > 0) {
    report.dead_letters = delete_all(
        [&] { return delete_dead_letter_batch(c, s.discarded_dead_letters, batch); }, batch);
  }
  if (s.departed_workers.count() > 0) {
    // One statement: a deployment has tens of workers, not millions of rows.
    pqxx::work tx(c);
    report.workers = db::delete_old_workers(tx, s.departed_workers);
    tx.commit();
  }
  return report;
}

RetentionCleaner::RetentionCleaner(const Config& config, ProducerMetrics& metrics)
    : config_(config), metrics_(metrics), thread_([this] { run(); }) {}

RetentionCleaner::~RetentionCleaner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RetentionCleaner::run() {
  std::unique_ptr<pqxx::connection> connection;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, config_.retention.interval, [&] { return stopping_; })) return;
    }
    try {
      if (!connection || !connection->is_open()) connection = db::connect(config_.database_url);
      const auto report = run_retention(*connection, config_.retention);
      metrics_.retention_deleted.with({"succeeded_jobs"}).inc(report.succeeded);
      metrics_.retention_deleted.with({"failed_jobs"}).inc(report.failed);
      metrics_.retention_deleted.with({"cancelled_jobs"}).inc(report.cancelled);
      metrics_.retention_deleted.with({"resolved_dead_letters"}).inc(report.dead_letters);
      metrics_.retention_deleted.with({"departed_workers"}).inc(report.workers);
      if (report.succeeded + report.failed + report.cancelled + report.dead_letters +
              report.workers >
          0) {
        log::info("retention removed expired rows", {{"succeeded_jobs", report.succeeded},
                                                     {"failed_jobs", report.failed},
                                                     {"cancelled_jobs", report.cancelled},
                                                     {"dead_letters", report.dead_letters},
                                                     {"departed_workers", report.workers}});
      }
    } catch (const std::exception& error) {
      connection.reset();
      log::warn("retention pass failed; next pass at the next interval", {{"error", error.what()}});
    }
  }
}

}  // namespace warren

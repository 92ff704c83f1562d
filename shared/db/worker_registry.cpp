// See worker_registry.h. Queues travel as one JSON parameter (libpqxx 6.4 has no array
// parameters), and the list is built by Postgres itself, as job_store.cpp does.
#include "shared/db/worker_registry.h"

namespace warren::db {
namespace {

using nlohmann::json;

// "gone" is decided here, in one place, so the list and retention agree on it.
constexpr const char* kGone =
    "(w.stopped_at IS NULL AND "
    "w.last_heartbeat_at < now() - w.heartbeat_ms * interval '3 milliseconds')";

}  // namespace

void register_worker(pqxx::work& tx, const WorkerInfo& worker) {
  tx.exec_params(R"(
    INSERT INTO workers (id, host, queues, concurrency, in_flight, processed, failed,
                         heartbeat_ms, version, started_at, last_heartbeat_at, stopped_at)
    VALUES ($1, $2, ARRAY(SELECT json_array_elements_text($3::json)), $4, 0, 0, 0, $5, $6,
            now(), now(), NULL)
    ON CONFLICT (id) DO UPDATE SET
      host = EXCLUDED.host, queues = EXCLUDED.queues, concurrency = EXCLUDED.concurrency,
      in_flight = 0, processed = 0, failed = 0, heartbeat_ms = EXCLUDED.heartbeat_ms,
      version = EXCLUDED.version, started_at = now(), last_heartbeat_at = now(),
      stopped_at = NULL)",
                 worker.id, worker.host, json(worker.queues).dump(), worker.concurrency,
                 static_cast<std::int64_t>(worker.heartbeat_interval.count()), worker.version);
}

bool record_heartbeat(pqxx::work& tx, const std::string& worker_id,
                      const WorkerCounters& counters) {
  auto result = tx.exec_params(R"(
    UPDATE workers SET last_heartbeat_at = now(), in_flight = $2, processed = $3, failed = $4
    WHERE id = $1)",
                               worker_id, counters.in_flight, counters.processed, counters.failed);
  return result.affected_rows() == 1;
}

void mark_worker_stopped(pqxx::work& tx, const std::string& worker_id,
                         const WorkerCounters& counters) {
  tx.exec_params(R"(
    UPDATE workers SET stopped_at = now(), last_heartbeat_at = now(),
                       in_flight = $2, processed = $3, failed = $4
    WHERE id = $1)",
                 worker_id, counters.in_flight, counters.processed, counters.failed);
}

json list_workers(pqxx::transaction_base& tx) {
  auto row = tx.exec1(std::string(R"(
    SELECT coalesce(json_agg(json_build_object(
             'id', w.id, 'host', w.host, 'queues', to_json(w.queues),
             'concurrency', w.concurrency, 'in_flight', w.in_flight,
             'processed', w.processed, 'failed', w.failed,
             'started_at', warren_ts(w.started_at),
             'last_heartbeat_at', warren_ts(w.last_heartbeat_at),
             'version', w.version,
             'state', CASE WHEN w.stopped_at IS NOT NULL THEN 'stopped'
                           WHEN )") +
                      kGone + R"( THEN 'gone'
                           ELSE 'running' END)
             ORDER BY w.started_at DESC, w.id), '[]'::json)
    FROM workers w)");
  return json{{"workers", json::parse(row[0].c_str())}};
}

int delete_old_workers(pqxx::work& tx, std::chrono::seconds older_than) {
  auto result = tx.exec_params(std::string(R"(
    DELETE FROM workers w
    WHERE w.last_heartbeat_at < now() - $1 * interval '1 second'
      AND (w.stopped_at IS NOT NULL OR )") +
                                   kGone + ")",
                               static_cast<std::int64_t>(older_than.count()));
  return static_cast<int>(result.affected_rows());
}

}  // namespace warren::db

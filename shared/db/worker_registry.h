// The `workers` table's one home: every statement that writes or reads it. A consumer process
// registers itself at start, refreshes its row every WARREN_HEARTBEAT_MS (MESSAGING.md
// "Heartbeat"), and marks it stopped on a clean shutdown; GET /v1/workers lists the rows, and
// the producer's retention cleaner removes rows of workers that left long ago.
//
// Times are Postgres' now(), never a process clock: "no heartbeat for 3 intervals" compares
// times from one clock, so clock skew between pods cannot make a live worker look gone.
//
// Functions take the caller's transaction, like job_store.h: the caller decides what commits
// together and retries on its own terms when the database is away.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "shared/version.h"

namespace warren::db {

// What a consumer says about itself when it (re)starts.
struct WorkerInfo {
  std::string id;  // WARREN_WORKER_ID: the pod name, or host name + pid
  std::string host;
  std::string version = kVersion;
  std::vector<std::string> queues;
  int concurrency;
  std::chrono::milliseconds heartbeat_interval;  // decides when the worker is shown "gone"
};

// The counters a heartbeat carries, totals since the process started.
struct WorkerCounters {
  int in_flight;
  std::int64_t processed;
  std::int64_t failed;
};

// Upsert: a worker id seen before (a restarted pod keeps its name) starts afresh: started_at
// and last_heartbeat_at now, stopped_at cleared, counters 0.
void register_worker(pqxx::work& tx, const WorkerInfo& worker);

// Sets last_heartbeat_at to now and stores the counters. Returns false when the row is not there
// (retention deleted it while the worker was cut off from the database for a day): the caller
// then registers again with register_worker and heartbeats on. Does not touch stopped_at.
bool record_heartbeat(pqxx::work& tx, const std::string& worker_id, const WorkerCounters& counters);

// A clean shutdown: the row stays (shown "stopped", with its final counters) until retention.
void mark_worker_stopped(pqxx::work& tx, const std::string& worker_id,
                         const WorkerCounters& counters);

// GET /v1/workers: {"workers": [...]} with the fields of API.md plus "state": "running",
// "stopped" (marked stopped), or "gone" (not stopped, no heartbeat for 3 of its own intervals).
// Newest start first; every row is shown (retention keeps the table short).
nlohmann::json list_workers(pqxx::transaction_base& tx);

// Deletes rows of workers that are stopped or gone and whose last heartbeat is older than
// `older_than`; returns how many. A live worker is never deleted, however old its start.
int delete_old_workers(pqxx::work& tx, std::chrono::seconds older_than);

}  // namespace warren::db

// Every SQL statement about jobs: the batched insert behind POST /v1/jobs (and warrenctl
// submit), reads for GET /v1/jobs..., and cancel. The JSON shapes of API.md are built by
// Postgres itself (json_build_object), so a read is one round trip and no row mapping code.
//
// Functions take the caller's transaction: the caller decides what commits together (the
// submit batcher commits many requests' jobs at once).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "shared/job_request.h"

namespace warren::db {

struct NewJob {
  std::string id;  // UUID v7
  JobRequest request;
  std::chrono::system_clock::time_point created_at;
  std::optional<std::chrono::system_clock::time_point> scheduled_for;
  std::string traceparent;
  std::string fingerprint;  // request.fingerprint()
};

// A job for which the application has a valid request: build id, times, trace context.
NewJob make_new_job(JobRequest request, std::string traceparent,
                    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

enum class InsertKind {
  kCreated,     // new row (and outbox entry) written
  kReplayed,    // same idempotency key, same request: the existing job is the answer
  kConflict,    // same idempotency key, different request: 409
  kNotWritten,  // part of a batch request that was rolled back because another job conflicted
};

struct InsertOutcome {
  InsertKind kind;
  std::string id;
  std::string status;
};

// Inserts jobs with their outbox rows in one statement; outcomes in input order. A duplicate
// idempotency key is resolved by the unique constraint (ON CONFLICT), never read-then-write, so
// concurrent duplicates cannot both create a job.
std::vector<InsertOutcome> insert_jobs(pqxx::transaction_base& tx, const std::vector<NewJob>& jobs);

// GET /v1/jobs/{id}; nullopt when there is no such job.
std::optional<nlohmann::json> find_job(pqxx::transaction_base& tx, const std::string& id);

// GET /v1/jobs/{id}/attempts body; nullopt when there is no such job.
std::optional<nlohmann::json> find_attempts(pqxx::transaction_base& tx, const std::string& id);

struct JobFilter {
  std::optional<std::string> status, type, queue;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::optional<std::chrono::system_clock::time_point> created_after, created_before;
  int limit = 50;
  std::optional<std::string> cursor;  // opaque, from a previous page
};

// Parses query parameters of GET /v1/jobs; throws ProblemError (400) on anything invalid.
JobFilter parse_job_filter(const std::vector<std::pair<std::string, std::string>>& params);

// {"jobs": [...], "next_cursor": ...}, newest first, keyset-paginated on (created_at, id).
nlohmann::json list_jobs(pqxx::transaction_base& tx, const JobFilter& filter);

enum class CancelKind { kNotFound, kCancelled, kCancelRequested, kAlreadyFinished };
struct CancelOutcome {
  CancelKind kind;
  std::optional<nlohmann::json> job;  // the job after the change (or as it is, when finished)
};

// The Postgres channel on which a cancel request for a running job is announced; the payload is
// the job id (canonical UUID text). Every consumer LISTENs on it and fires the stop token of the
// handler running that job, if it runs it (MESSAGING.md "Cancellation": within a second).
//
// MESSAGING.md allows a fanout exchange or "an equivalent of equal speed"; NOTIFY is that
// equivalent, and better here: it is transactional (delivered only if the cancel commits, and
// only after it, so a consumer that re-reads the job sees cancel_requested), it works from
// every writer of the row (the producer's HTTP threads and `warrenctl jobs cancel`, which has
// no broker connection) without any of them publishing to the broker, and it needs no
// extra topology. NOTIFY is not durable: a consumer whose listening connection dropped must,
// after it LISTENs again, re-read cancel_requested of the jobs it is running.
inline constexpr char kCancelChannel[] = "warren_cancel";

// POST /v1/jobs/{id}/cancel: waiting jobs are cancelled at once (the relay never publishes
// them); a running job gets cancel_requested and a NOTIFY on kCancelChannel (sent when `tx`
// commits); a finished one is left alone.
CancelOutcome cancel_job(pqxx::work& tx, const std::string& id);

}  // namespace warren::db

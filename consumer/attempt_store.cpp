// See attempt_store.h for the rules; attempt_rules.h decides them, this file reads and writes.
//
// One batch is a handful of statements whatever its size:
//   1. lock every job of the batch, in id order (SELECT ... ORDER BY id FOR UPDATE);
//   2. only when a claimed job has no row: create it from the message, then lock it;
//   3. read the locked jobs with their current attempt and its worker (a new statement, so in
//      READ COMMITTED it sees everything committed by whoever held the locks before us);
//   4. decide every outcome, then every claim, in memory (attempt_rules.h);
//   5. write: one UPDATE jobs, one INSERT and one UPDATE job_attempts, one INSERT outbox, one
//      INSERT dead_letters, each a multi-row statement over a JSON parameter (libpqxx 6.4 has no
//      dynamic parameter lists), skipped when empty. JSON columns leave the recordset as text
//      and are cast after: json_to_recordset's own jsonb conversion is about twice as slow.
// The lock is taken in a statement of its own because a locking SELECT that also joins other
// tables re-checks only the locked row after waiting: the joined attempt row would be the
// one from before the wait, and the job could silently drop out of the result.
#include "consumer/attempt_store.h"

#include <map>
#include <set>
#include <stdexcept>

#include "consumer/attempt_rules.h"
#include "shared/db/sql_array.h"
#include "shared/time_format.h"
#include "shared/uuid.h"

namespace warren::consumer {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// What the batch knows about one locked job, and what it will write back.
struct JobState {
  JobSnapshot snapshot;
  std::string attempt_worker;  // worker of attempt `attempts`, "" when there is none
  std::int64_t due_ms = 0;     // when it became due: next_attempt_at, scheduled_for, created_at
  json last_error;             // null or {"type", "message"}
  // Set once the batch changes the job; the columns below are then written as they are.
  bool changed = false;
  json result;  // written only when the job ends succeeded
  std::optional<std::string> started_at, finished_at, next_attempt_at;
};

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json text_or_null(const std::string& text) {
  return text.empty() ? json() : json(text);
}

json error_json(const std::string& type, const std::string& message) {
  if (type.empty() && message.empty()) return json();
  return json{{"type", clean_text(type)}, {"message", clean_text(message)}};
}

std::string error_field(const json& error, const char* field) {
  if (!error.is_object()) return "";
  auto it = error.find(field);
  return it != error.end() && it->is_string() ? it->get<std::string>() : "";
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

json backoff_json(const Backoff& backoff) {
  return json{
      {"initial_ms", backoff.initial_ms}, {"factor", backoff.factor}, {"max_ms", backoff.max_ms}};
}

class Batch {
 public:
  Batch(pqxx::work& tx, const AttemptStoreSettings& settings)
      : tx_(tx),
        settings_(settings),
        now_(format_rfc3339_ms(settings.now)),
        now_ms_(epoch_ms(settings.now)) {}

  BatchResult run(const std::vector<OutcomeRequest>& outcomes,
                  const std::vector<ClaimRequest>& claims);

 private:
  std::set<std::string> lock(const std::set<std::string>& ids);
  void create_missing(const std::vector<ClaimRequest>& claims, const std::set<std::string>& have);
  void read(const std::set<std::string>& ids);

  OutcomeResult end_attempt(const OutcomeRequest& request);
  ClaimResult claim(const ClaimRequest& request);
  void close_lost(JobState& job, const std::string& id, LostCause cause);
  void finish(JobState& job, JobStatus status);
  DeadLetterRecord dead_letter(const JobMessage& message, const std::string& reason,
                               const json& error, int attempts, const amqp::FieldTable& headers);
  void close_attempt(const std::string& id, int attempt, const std::string& outcome,
                     const json& error, std::optional<milliseconds> retry_delay);

  void write(BatchResult& result);
  void write_jobs();
  // A multi-row statement over `rows` ($1) and `params` ($2...), skipped when there are none.
  template <class... Params>
  void exec_rows(const char* sql, const json& rows, const Params&... params) {
    if (!rows.empty()) tx_.exec_params(sql, dump(rows), params...);
  }

  pqxx::work& tx_;
  const AttemptStoreSettings& settings_;
  const std::string now_;
  const std::int64_t now_ms_;
  std::map<std::string, JobState> jobs_;
  json started_ = json::array(), closed_ = json::array(), outbox_ = json::array(),
       dead_letters_ = json::array();
  std::map<std::string, std::size_t> retry_of_job_;  // job id -> index of its OutcomeResult
};

BatchResult Batch::run(const std::vector<OutcomeRequest>& outcomes,
                       const std::vector<ClaimRequest>& claims) {
  std::set<std::string> ids;
  for (const auto& request : outcomes) ids.insert(request.job.id);
  for (const auto& request : claims) ids.insert(request.job.id);
  for (const auto& id : ids) {
    // Decoded messages have canonical ids; anything else is the caller's bug, named here rather
    // than as a failed uuid cast in SQL.
    if (!is_canonical_uuid(id)) throw std::invalid_argument("attempt batch: bad job id " + id);
  }
  BatchResult result;
  if (ids.empty()) return result;

  auto locked = lock(ids);
  if (locked.size() < ids.size()) create_missing(claims, locked);
  read(ids);

  for (const auto& request : outcomes) {
    result.outcomes.push_back(end_attempt(request));
    if (result.outcomes.back().verdict == OutcomeVerdict::kRetryScheduled) {
      retry_of_job_[request.job.id] = result.outcomes.size() - 1;
    }
  }
  for (const auto& request : claims) result.claims.push_back(claim(request));
  write(result);
  return result;
}

std::set<std::string> Batch::lock(const std::set<std::string>& ids) {
  // Every consumer locks in id order: two batches sharing jobs wait for each other instead of
  // deadlocking.
  auto rows = tx_.exec_params(R"(
    SELECT id::text FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE)",
                              db::sql_array(ids));
  std::set<std::string> locked;
  for (const auto& row : rows) locked.insert(row[0].as<std::string>());
  return locked;
}

// A message whose job has no row (never written by a producer of this deployment, or removed
// by retention): the row is made from the message, which carries everything a job needs.
void Batch::create_missing(const std::vector<ClaimRequest>& claims,
                           const std::set<std::string>& have) {
  json rows = json::array();
  std::set<std::string> missing;
  for (const auto& request : claims) {
    const JobMessage& m = request.job;
    if (have.count(m.id) > 0 || !missing.insert(m.id).second) continue;
    const auto created = parse_rfc3339(m.created_at);
    json row = json::object();
    row["id"] = m.id;
    row["type"] = m.type;
    row["queue"] = m.queue;
    row["payload"] = m.payload_json;
    row["max_attempts"] = m.max_attempts;
    row["timeout_ms"] = m.timeout_ms ? json(*m.timeout_ms) : json();
    row["backoff"] = backoff_json(m.backoff);
    row["traceparent"] = text_or_null(m.traceparent);
    row["created_at"] = created ? format_rfc3339_ms(*created) : now_;
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return;  // only outcomes lack rows: those are stale
  // In id order, so that two consumers creating the same jobs wait for each other in order.
  tx_.exec_params(R"(
    INSERT INTO jobs (id, type, queue, status, payload, max_attempts, timeout_ms, backoff,
                      traceparent, created_at, updated_at)
    SELECT x.id, x.type, x.queue, 'queued', x.payload::jsonb, x.max_attempts,
           least(x.timeout_ms, 2147483647)::int, x.backoff, x.traceparent, x.created_at,
           $2::timestamptz
    FROM json_to_recordset($1::json) AS x(id uuid, type text, queue text, payload text,
         max_attempts int, timeout_ms bigint, backoff jsonb, traceparent text,
         created_at timestamptz)
    ORDER BY x.id
    ON CONFLICT (id) DO NOTHING)",
                  dump(rows), now_);
  lock(missing);
}

void Batch::read(const std::set<std::string>& ids) {
  auto rows = tx_.exec_params(R"(
    SELECT j.id::text, j.status, j.attempts, j.max_attempts, j.cancel_requested,
           (extract(epoch FROM coalesce(j.next_attempt_at, j.scheduled_for, j.created_at))
              * 1000)::bigint,
           j.last_error::text,
           a.job_id IS NOT NULL AND a.outcome IS NULL,
           coalesce(a.worker, ''),
           coalesce(w.stopped_at IS NULL AND w.last_heartbeat_at >
                    $2::timestamptz - w.heartbeat_ms * interval '3 milliseconds', false),
           coalesce((SELECT max(p.attempt) FROM job_attempts p
                     WHERE p.job_id = j.id AND p.outcome <> 'lost'), 0)
    FROM jobs j
    LEFT JOIN job_attempts a ON a.job_id = j.id AND a.attempt = j.attempts
    LEFT JOIN workers w ON w.id = a.worker
    WHERE j.id = ANY($1::uuid[]))",
                              db::sql_array(ids), now_);
  for (const auto& row : rows) {
    JobState job;
    const auto status = parse_job_status(row[1].as<std::string>());
    if (!status) throw std::runtime_error("job has unknown status " + row[1].as<std::string>());
    job.snapshot.status = *status;
    job.snapshot.attempts = row[2].as<int>();
    job.snapshot.max_attempts = row[3].as<int>();
    job.snapshot.cancel_requested = row[4].as<bool>();
    job.due_ms = row[5].as<std::int64_t>();
    if (!row[6].is_null()) job.last_error = json::parse(row[6].c_str());
    job.snapshot.attempt_open = row[7].as<bool>();
    job.attempt_worker = row[8].as<std::string>();
    job.snapshot.worker_alive = row[9].as<bool>();
    job.snapshot.last_settled_attempt = row[10].as<int>();
    jobs_.emplace(row[0].as<std::string>(), std::move(job));
  }
}

OutcomeResult Batch::end_attempt(const OutcomeRequest& request) {
  OutcomeResult result;
  result.key = request.key;
  auto it = jobs_.find(request.job.id);
  if (it == jobs_.end()) return result;  // no such job: nothing to end
  JobState& job = it->second;
  const auto decision = decide_outcome(job.snapshot, request.attempt, request.end);
  result.verdict = decision.verdict;
  if (decision.verdict == OutcomeVerdict::kStale) return result;
  result.attempt_outcome = decision.attempt_outcome;

  const json error = request.end == AttemptEnd::kSucceeded
                         ? json()
                         : error_json(request.error_type, request.error_message);
  std::optional<milliseconds> delay;
  if (decision.verdict == OutcomeVerdict::kRetryScheduled) {
    delay = retry_delay(request.job.backoff, request.attempt, request.requested_retry_delay);
    result.retry_delay = *delay;
    result.next_attempt_at = settings_.now + *delay;
  }
  close_attempt(request.job.id, request.attempt, decision.attempt_outcome, error, delay);
  if (!error.is_null()) job.last_error = error;
  apply_outcome(job.snapshot, decision);
  finish(job, decision.job_status);

  switch (decision.verdict) {
    case OutcomeVerdict::kSucceeded:
      job.result = request.result;
      scrub_text(job.result);
      break;
    case OutcomeVerdict::kRetryScheduled: {
      const auto due = settings_.now + *delay;
      job.next_attempt_at = format_rfc3339_ms(due);
      job.due_ms = epoch_ms(due);
      json row = json::object();
      row["job_id"] = request.job.id;
      row["deliver_at"] = *job.next_attempt_at;
      outbox_.push_back(std::move(row));
      break;
    }
    case OutcomeVerdict::kDeadLettered:
      result.dead_letter = dead_letter(request.job, decision.dead_letter_reason, error,
                                       request.attempt, request.headers);
      break;
    case OutcomeVerdict::kRequeued:
      // Due again now: its redelivery's queue wait counts from here.
      job.next_attempt_at = now_;
      job.due_ms = now_ms_;
      break;
    case OutcomeVerdict::kCancelled:
    case OutcomeVerdict::kStale:
      break;
  }
  return result;
}

ClaimResult Batch::claim(const ClaimRequest& request) {
  ClaimResult result;
  result.key = request.key;
  auto it = jobs_.find(request.job.id);
  if (it == jobs_.end()) {
    // Created and then deleted again before we could lock it: nothing left to run.
    result.duplicate_reason = "missing";
    return result;
  }
  JobState& job = it->second;
  const auto decision = decide_claim(job.snapshot, request.job.attempt, request.redelivered);
  result.verdict = decision.verdict;
  if (decision.verdict == ClaimVerdict::kDuplicate) {
    result.duplicate_reason = decision.duplicate_reason;
    return result;
  }
  // A job whose attempt was lost is due the moment it is found lost.
  const std::int64_t due_ms = decision.close_lost ? now_ms_ : job.due_ms;
  if (decision.close_lost) {
    result.closed_lost_attempt = job.snapshot.attempts;
    close_lost(job, request.job.id, decision.lost_cause);
  }
  apply_claim(job.snapshot, decision);

  switch (decision.verdict) {
    case ClaimVerdict::kStart: {
      result.attempt = job.snapshot.attempts;
      result.queue_wait = milliseconds(std::max<std::int64_t>(0, now_ms_ - due_ms));
      json row = json::object();
      row["job_id"] = request.job.id;
      row["attempt"] = result.attempt;
      started_.push_back(std::move(row));
      job.attempt_worker = settings_.worker_id;
      finish(job, JobStatus::kRunning);
      job.started_at = now_;
      break;
    }
    case ClaimVerdict::kGaveUp:
      finish(job, JobStatus::kFailed);
      result.dead_letter = dead_letter(request.job, "max_attempts", job.last_error,
                                       job.snapshot.attempts, request.headers);
      break;
    case ClaimVerdict::kCancelled:
      finish(job, JobStatus::kCancelled);
      break;
    case ClaimVerdict::kDuplicate:
      break;
  }
  return result;
}

void Batch::close_lost(JobState& job, const std::string& id, LostCause cause) {
  const int attempt = job.snapshot.attempts;
  const std::string where = "attempt " + std::to_string(attempt) + " on worker " +
                            (job.attempt_worker.empty() ? "(unknown)" : job.attempt_worker);
  const std::string message =
      cause == LostCause::kRedelivered
          ? "the message was redelivered while " + where + " was running: its consumer lost it"
          : where + " was running when the worker stopped or stopped heartbeating";
  const json error = error_json("worker_lost", message);
  close_attempt(id, attempt, "lost", error, std::nullopt);
  job.last_error = error;
  job.changed = true;
}

// The job's time columns for the status it ends the batch in (next_attempt_at of a retry and a
// requeue is set by the caller afterwards).
void Batch::finish(JobState& job, JobStatus status) {
  job.changed = true;
  const bool terminal = status == JobStatus::kSucceeded || status == JobStatus::kFailed ||
                        status == JobStatus::kCancelled;
  job.finished_at = terminal ? std::optional<std::string>(now_) : std::nullopt;
  job.next_attempt_at = std::nullopt;
}

DeadLetterRecord Batch::dead_letter(const JobMessage& message, const std::string& reason,
                                    const json& error, int attempts,
                                    const amqp::FieldTable& headers) {
  DeadLetterRecord record;
  record.id = new_uuid_v7();
  record.reason = reason;
  record.error_type = clean_text(error_field(error, "type"));
  record.error_message = clean_text(error_field(error, "message"));
  record.attempts = attempts;
  record.failed_at = now_;

  json stored_headers = dead_letter_headers(headers, record);
  scrub_text(stored_headers);
  json row = json::object();
  row["id"] = record.id;
  row["message_key"] = message.id + "/" + std::to_string(attempts);
  row["job_id"] = message.id;
  row["type"] = message.type;
  row["queue"] = message.queue;
  row["reason"] = reason;
  row["error_type"] = text_or_null(record.error_type);
  row["error_message"] = text_or_null(record.error_message);
  row["attempts"] = attempts;
  row["payload"] = message.payload_json;
  row["headers"] = std::move(stored_headers);
  row["exchange"] = text_or_null(settings_.dead_exchange);
  row["routing_key"] = message.queue;
  dead_letters_.push_back(std::move(row));
  return record;
}

void Batch::close_attempt(const std::string& id, int attempt, const std::string& outcome,
                          const json& error, std::optional<milliseconds> retry_delay) {
  json row = json::object();
  row["job_id"] = id;
  row["attempt"] = attempt;
  row["outcome"] = outcome;
  row["error"] = error;
  row["retry_delay_ms"] = retry_delay ? json(retry_delay->count()) : json();
  closed_.push_back(std::move(row));
}

void Batch::write(BatchResult& result) {
  write_jobs();
  // The UPDATE statements join a JSON recordset the planner sizes at 100 rows; the ids again as
  // an array parameter make it probe the primary key instead of scanning the table
  // (sql_array.h).
  std::set<std::string> closed_jobs;
  for (const auto& row : closed_) closed_jobs.insert(row["job_id"].get<std::string>());
  // Attempts started by this batch first: a later claim of the batch may close one as lost.
  exec_rows(R"(
    INSERT INTO job_attempts (job_id, attempt, started_at, worker)
    SELECT x.job_id, x.attempt, $2::timestamptz, $3
    FROM json_to_recordset($1::json) AS x(job_id uuid, attempt int)
    ORDER BY x.job_id, x.attempt)",
            started_, now_, settings_.worker_id);
  exec_rows(R"(
    UPDATE job_attempts a
    SET outcome = x.outcome, error = x.error::jsonb, finished_at = $2::timestamptz,
        retry_delay_ms = x.retry_delay_ms
    FROM json_to_recordset($1::json) AS x(job_id uuid, attempt int, outcome text, error text,
                                          retry_delay_ms int)
    WHERE a.job_id = x.job_id AND a.attempt = x.attempt AND a.outcome IS NULL
      AND a.job_id = ANY($3::uuid[]))",
            closed_, now_, db::sql_array(closed_jobs));
  exec_rows(R"(
    INSERT INTO dead_letters (id, message_key, job_id, type, queue, reason, error_type,
                              error_message, attempts, dead_lettered_at, recorded_at, payload,
                              headers, exchange, routing_key)
    SELECT x.id, x.message_key, x.job_id, x.type, x.queue, x.reason, x.error_type,
           x.error_message, x.attempts, $2::timestamptz, $2::timestamptz, x.payload::jsonb,
           x.headers, x.exchange, x.routing_key
    FROM json_to_recordset($1::json) AS x(id uuid, message_key text, job_id uuid, type text,
         queue text, reason text, error_type text, error_message text, attempts int,
         payload text, headers jsonb, exchange text, routing_key text)
    -- (job, attempt) fails a job once; a conflict could only be a bug, and must not wedge the
    -- consumer's batches.
    ON CONFLICT (message_key) DO NOTHING)",
            dead_letters_, now_);
  if (outbox_.empty()) return;
  // Lease: the consumer publishes the retry itself and deletes the row after the confirm; a
  // producer's relay takes over only if the row is still here when the lease ends.
  auto rows =
      tx_.exec_params(R"(
    INSERT INTO outbox (job_id, available_at, deliver_at, kind, created_at)
    SELECT x.job_id, $2::timestamptz, x.deliver_at, 'retry', $3::timestamptz
    FROM json_to_recordset($1::json) AS x(job_id uuid, deliver_at timestamptz)
    RETURNING id, job_id::text)",
                      dump(outbox_), format_rfc3339_ms(settings_.now + kRetryOutboxLease), now_);
  // One retry at most per job and batch: only the outcome of the running attempt is not stale.
  for (const auto& row : rows) {
    result.outcomes.at(retry_of_job_.at(row[1].as<std::string>())).outbox_id =
        row[0].as<std::int64_t>();
  }
}

void Batch::write_jobs() {
  json rows = json::array();
  std::vector<std::string> ids;
  for (auto& [id, job] : jobs_) {
    if (!job.changed) continue;
    ids.push_back(id);
    json row = json::object();
    row["id"] = id;
    row["status"] = to_string(job.snapshot.status);
    row["attempts"] = job.snapshot.attempts;
    row["result"] = job.result;
    row["last_error"] = job.last_error;
    row["started_at"] = job.started_at ? json(*job.started_at) : json();
    row["finished_at"] = job.finished_at ? json(*job.finished_at) : json();
    row["next_attempt_at"] = job.next_attempt_at ? json(*job.next_attempt_at) : json();
    rows.push_back(std::move(row));
  }
  exec_rows(R"(
    UPDATE jobs j
    SET status = x.status, attempts = x.attempts,
        result = CASE WHEN x.status = 'succeeded' THEN x.result::jsonb ELSE j.result END,
        last_error = x.last_error::jsonb, started_at = coalesce(x.started_at, j.started_at),
        finished_at = x.finished_at, next_attempt_at = x.next_attempt_at,
        updated_at = $2::timestamptz
    FROM json_to_recordset($1::json) AS x(id uuid, status text, attempts int, result text,
         last_error text, started_at timestamptz, finished_at timestamptz,
         next_attempt_at timestamptz)
    WHERE j.id = x.id AND j.id = ANY($3::uuid[]))",
            rows, now_, db::sql_array(ids));
}

}  // namespace

const char* to_string(ClaimVerdict verdict) {
  switch (verdict) {
    case ClaimVerdict::kStart:
      return "start";
    case ClaimVerdict::kDuplicate:
      return "duplicate";
    case ClaimVerdict::kGaveUp:
      return "gave_up";
    case ClaimVerdict::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

const char* to_string(OutcomeVerdict verdict) {
  switch (verdict) {
    case OutcomeVerdict::kSucceeded:
      return "succeeded";
    case OutcomeVerdict::kRetryScheduled:
      return "retry_scheduled";
    case OutcomeVerdict::kDeadLettered:
      return "dead_lettered";
    case OutcomeVerdict::kCancelled:
      return "cancelled";
    case OutcomeVerdict::kRequeued:
      return "requeued";
    case OutcomeVerdict::kStale:
      return "stale";
  }
  return "unknown";
}

BatchResult write_attempt_batch(pqxx::work& tx, const AttemptStoreSettings& settings,
                                const std::vector<OutcomeRequest>& outcomes,
                                const std::vector<ClaimRequest>& claims) {
  return Batch(tx, settings).run(outcomes, claims);
}

void delete_outbox_rows(pqxx::work& tx, const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return;
  tx.exec_params("DELETE FROM outbox WHERE id = ANY($1::bigint[])", db::sql_array(ids));
}

amqp::FieldTable dead_letter_headers(const amqp::FieldTable& delivery_headers,
                                     const DeadLetterRecord& record) {
  amqp::FieldTable headers = delivery_headers;
  headers.set("x-warren-reason", record.reason);
  headers.set("x-warren-error-type", clean_text(record.error_type));
  headers.set("x-warren-error-message", clean_text(record.error_message));
  headers.set("x-warren-failed-at", record.failed_at);
  headers.set("x-warren-attempt", static_cast<std::int64_t>(record.attempts));
  headers.set(kDeadLetterIdHeader, record.id);
  return headers;
}

}  // namespace warren::consumer

// See dead_letter_store.h.
#include "consumer/dead_letter_store.h"

#include <set>

#include "consumer/attempt_rules.h"
#include "shared/db/sql_array.h"
#include "shared/encoding.h"

namespace warren::consumer {
namespace {

using nlohmann::json;

json text_or_null(const std::string& text) {
  return text.empty() ? json() : json(text);
}

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json row_json(const DeadLetterRow& row) {
  return {{"id", row.id},
          {"message_key", row.message_key},
          {"job_id", text_or_null(row.job_id)},
          {"type", text_or_null(row.type)},
          {"queue", text_or_null(row.queue)},
          {"reason", row.reason},
          {"error_type", text_or_null(row.error_type)},
          {"error_message", text_or_null(row.error_message)},
          {"attempts", row.attempts ? json(*row.attempts) : json()},
          {"dead_lettered_at", row.dead_lettered_at},
          {"payload", row.payload_json ? json(*row.payload_json) : json()},
          {"raw_body", row.raw_body ? json(base64_encode(*row.raw_body)) : json()},
          {"headers", row.headers},
          {"exchange", text_or_null(row.exchange)},
          {"routing_key", text_or_null(row.routing_key)}};
}

// Gives first deliveries whose content key is taken (in the table or earlier in this batch)
// a key of their own; see distinct_message_key().
void separate_identical_messages(pqxx::work& tx, std::vector<DeadLetterRow>& rows) {
  std::vector<std::string> keys;
  for (const auto& row : rows) {
    if (!row.written_by_consumer) keys.push_back(row.message_key);
  }
  if (keys.empty()) return;
  std::set<std::string> taken;
  for (const auto& found :
       tx.exec_params("SELECT message_key FROM dead_letters WHERE message_key = ANY($1::text[])",
                      db::sql_array(keys))) {
    taken.insert(found[0].as<std::string>());
  }
  for (auto& row : rows) {
    if (row.written_by_consumer) continue;
    if (!row.redelivered && taken.count(row.message_key) > 0) {
      row.message_key = distinct_message_key(row);
    }
    taken.insert(row.message_key);
  }
}

// Only for rows this batch inserted: a redelivery of a dead letter recorded earlier must not fail
// the job again (an operator may have requeued it in between).
int fail_abandoned_jobs(pqxx::work& tx, const std::vector<DeadLetterRow>& rows,
                        const std::vector<bool>& recorded, const std::string& now) {
  json failing = json::array();
  std::set<std::string> failing_ids;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (!recorded[i] || !row.fails_job || row.job_id.empty()) continue;
    failing_ids.insert(row.job_id);
    failing.push_back({{"job_id", row.job_id},
                       {"error", {{"type", row.error_type}, {"message", row.error_message}}}});
  }
  if (failing.empty()) return 0;
  const std::string rows_json = dump(failing);
  tx.exec_params(R"(
    SELECT id FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE)",
                 db::sql_array(failing_ids));
  // Only a job still waiting for or running this message: a job that moved on (retrying under a
  // newer message, finished) was not abandoned; this message was a stale copy.
  auto failed = tx.exec_params(R"(
    UPDATE jobs j SET status = 'failed', finished_at = $2::timestamptz, updated_at = $2::timestamptz,
                      next_attempt_at = NULL, last_error = x.error
    FROM json_to_recordset($1::json) AS x(job_id uuid, error jsonb)
    WHERE j.id = x.job_id AND j.id = ANY($3::uuid[]) AND j.status IN ('queued', 'running')
    RETURNING j.id::text)",
                               rows_json, now, db::sql_array(failing_ids));
  if (failed.empty()) return 0;
  std::vector<std::string> failed_ids;
  for (const auto& row : failed) failed_ids.push_back(row[0].as<std::string>());
  // The attempt the last delivery started never ended: its consumer died or lost the message.
  tx.exec_params(R"(
    UPDATE job_attempts
    SET outcome = 'lost', finished_at = $2::timestamptz,
        error = jsonb_build_object('type', 'worker_lost', 'message',
          'the attempt never finished; the broker dead-lettered its message')
    WHERE job_id = ANY($1::uuid[]) AND outcome IS NULL)",
                 db::sql_array(failed_ids), now);
  return static_cast<int>(failed.size());
}

}  // namespace

DeadLetterWrite write_dead_letters(pqxx::work& tx, std::vector<DeadLetterRow>& rows,
                                   const std::string& now) {
  DeadLetterWrite result;
  if (rows.empty()) return result;
  separate_identical_messages(tx, rows);

  json all = json::array();
  for (const auto& row : rows) all.push_back(row_json(row));
  // attempts: a broker dead letter does not know how many attempts the job made; its job does.
  auto inserted = tx.exec_params(R"(
    INSERT INTO dead_letters (id, message_key, job_id, type, queue, reason, error_type,
                              error_message, attempts, dead_lettered_at, recorded_at, payload,
                              raw_body, headers, exchange, routing_key)
    SELECT x.id, x.message_key, x.job_id, x.type, x.queue, x.reason, x.error_type,
           x.error_message, coalesce(x.attempts, j.attempts), x.dead_lettered_at,
           $2::timestamptz, x.payload::jsonb, decode(x.raw_body, 'base64'), x.headers,
           x.exchange, x.routing_key
    FROM json_to_recordset($1::json) AS x(id uuid, message_key text, job_id uuid, type text,
         queue text, reason text, error_type text, error_message text, attempts int,
         dead_lettered_at timestamptz, payload text, raw_body text, headers jsonb,
         exchange text, routing_key text)
    LEFT JOIN jobs j ON j.id = x.job_id
    ON CONFLICT DO NOTHING
    RETURNING id::text)",
                                 dump(all), now);
  std::set<std::string> new_ids;
  for (const auto& row : inserted) new_ids.insert(row[0].as<std::string>());
  for (const auto& row : rows) result.recorded.push_back(new_ids.count(row.id) > 0);
  result.jobs_failed = fail_abandoned_jobs(tx, rows, result.recorded, now);
  return result;
}

DeadLetterRow minimal_dead_letter(const DeadLetterRow& row, const std::string& body,
                                  const std::string& refusal) {
  DeadLetterRow minimal = row;
  minimal.payload_json.reset();
  minimal.raw_body = body;
  minimal.headers = json::object();
  minimal.error_message = "recorded without headers or payload: the database refused them (" +
                          clean_text(refusal, 200) + ")";
  return minimal;
}

}  // namespace warren::consumer

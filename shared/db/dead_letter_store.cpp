// See dead_letter_store.h.
#include "shared/db/dead_letter_store.h"

#include <regex>
#include <set>

#include "shared/amqp/message.h"
#include "shared/config.h"
#include "shared/db/job_store.h"
#include "shared/db/keyset_page.h"
#include "shared/encoding.h"
#include "shared/job_message.h"
#include "shared/job_request.h"
#include "shared/problem.h"
#include "shared/strict_json.h"
#include "shared/time_format.h"
#include "shared/uuid.h"

namespace warren::db {
namespace {

using nlohmann::json;

// API.md's dead letter, built by Postgres. raw_body is shown only when there is no payload:
// the exact bytes of a message that was not a (storable) job.
constexpr const char* kDeadLetterJson = R"(json_build_object(
    'id', d.id, 'job_id', d.job_id, 'type', d.type, 'queue', d.queue, 'reason', d.reason,
    'error', CASE WHEN d.error_type IS NULL AND d.error_message IS NULL THEN NULL
                  ELSE json_build_object('type', d.error_type, 'message', d.error_message) END,
    'attempts', d.attempts, 'dead_lettered_at', warren_ts(d.dead_lettered_at),
    'state', d.state, 'payload', d.payload,
    'raw_body', CASE WHEN d.payload IS NULL
                     THEN translate(encode(d.raw_body, 'base64'), E'\n', '') END,
    'headers', d.headers, 'exchange', d.exchange, 'routing_key', d.routing_key,
    'recorded_at', warren_ts(d.recorded_at),
    'requeued_at', warren_ts(d.requeued_at), 'requeued_by', d.requeued_by,
    'requeued_job_id', d.requeued_job_id,
    'discarded_at', warren_ts(d.discarded_at), 'discarded_by', d.discarded_by))";

const std::set<std::string> kReasons{"max_attempts", "permanent_failure", "delivery_limit",
                                     "poison", "expired"};
const std::set<std::string> kStates{"dead", "requeued", "discarded", "all"};

// Each present filter adds one condition; every value travels in the one JSON parameter $1.
std::string where_clause(const DeadLetterFilter& filter, json& args) {
  std::string where = "$1::jsonb IS NOT NULL";
  auto equals = [&](const char* column, const std::optional<std::string>& value) {
    if (!value) return;
    args[column] = *value;
    where += std::string(" AND d.") + column + " = ($1::jsonb->>'" + column + "')";
  };
  equals("type", filter.type);
  equals("queue", filter.queue);
  equals("reason", filter.reason);
  equals("error_type", filter.error_type);
  if (filter.state != "all") equals("state", filter.state);
  if (filter.q) {
    args["q"] = *filter.q;
    where += " AND strpos(lower(d.error_message), lower($1::jsonb->>'q')) > 0";
  }
  if (filter.since) {
    args["since"] = format_rfc3339_ms(*filter.since);
    where += " AND d.dead_lettered_at >= ($1::jsonb->>'since')::timestamptz";
  }
  if (filter.until) {
    args["until"] = format_rfc3339_ms(*filter.until);
    where += " AND d.dead_lettered_at < ($1::jsonb->>'until')::timestamptz";
  }
  return where;
}

// The dead letter's new state (`action`: requeued or discarded, the state and the audit word
// alike) with who and when, and its audit row, in one statement.
void record_action(pqxx::transaction_base& tx, const std::string& id, const std::string& action,
                   const DeadLetterAction& who, const std::optional<std::string>& requeued_job_id,
                   const json& details) {
  tx.exec_params(R"(
    WITH letter AS (
      UPDATE dead_letters SET
        state = $2,
        requeued_at = CASE WHEN $2 = 'requeued' THEN now() END,
        requeued_by = CASE WHEN $2 = 'requeued' THEN $3 END,
        requeued_job_id = $4::uuid,
        discarded_at = CASE WHEN $2 = 'discarded' THEN now() END,
        discarded_by = CASE WHEN $2 = 'discarded' THEN $3 END
      WHERE id = $1
      RETURNING id)
    INSERT INTO dead_letter_audit (dead_letter_id, action, actor, reason, operation_id, details)
    SELECT id, $2, $3, nullif($5, ''), $6, $7::jsonb FROM letter)",
                 id, action, who.actor, requeued_job_id, who.reason, who.operation_id,
                 details.dump());
}

ActionOutcome conflict(std::string detail) {
  return {ActionResult::kConflict, std::move(detail), "", 0};
}

struct Requeued {
  std::string job_id;
  int first_attempt = 0;
  int budget = 0;
  bool new_job = false;
};

// `previous_budget`: what the last requeue gave the job (null when it never was requeued).
Requeued requeue_failed_job(pqxx::transaction_base& tx, const std::string& job_id, int attempts,
                            int max_attempts, const pqxx::field& previous_budget,
                            const RequeueOptions& options) {
  const int budget = options.max_attempts.value_or(
      previous_budget.is_null() ? max_attempts : previous_budget.as<int>());
  // The attempt numbering continues, so "a fresh budget" is a higher ceiling:
  // attempts so far + budget. The outbox row makes the relay publish it.
  tx.exec_params(
      R"(
    WITH job AS (
      UPDATE jobs SET status = 'queued', max_attempts = attempts + $2,
                      payload = coalesce($3::jsonb, payload), result = NULL, finished_at = NULL,
                      next_attempt_at = NULL, cancel_requested = false, updated_at = now()
      WHERE id = $1
      RETURNING id)
    INSERT INTO outbox (job_id, available_at, kind) SELECT id, now(), 'job' FROM job)",
      job_id, budget,
      options.payload ? std::optional<std::string>(options.payload->dump()) : std::nullopt);
  return {job_id, attempts + 1, budget, false};
}

// A dead letter without a job (poison): its body becomes a new job if it is a valid job
// message, judged by the same validator as POST /v1/jobs. nullopt + why when it is not.
std::optional<Requeued> requeue_as_new_job(pqxx::transaction_base& tx, const Config& config,
                                           const std::string& body, const RequeueOptions& options,
                                           std::string& why) {
  amqp::Delivery delivery;
  delivery.body = body;
  const auto decoded = decode_job_message(delivery, config.default_backoff);
  if (!decoded.job) {
    why = "the message is not a job (" + decoded.poison_reason + "); discard it instead";
    return std::nullopt;
  }
  const json message = json::parse(body);
  json request = {{"type", decoded.job->type},
                  {"queue", decoded.job->queue},
                  {"payload", options.payload.value_or(message["payload"])},
                  {"max_attempts", options.max_attempts.value_or(decoded.job->max_attempts)}};
  if (decoded.job->timeout_ms) request["timeout_ms"] = *decoded.job->timeout_ms;
  if (message.contains("backoff") && message["backoff"].is_object()) {
    request["backoff"] = message["backoff"];
  }
  auto validation = validate_job_request(request, config);
  if (!validation.job) {
    const auto& errors =
        validation.bad_request.empty() ? validation.unprocessable : validation.bad_request;
    why = "the message does not make a valid job: " +
          (errors.empty() ? std::string("invalid") : errors[0].field + " " + errors[0].message);
    return std::nullopt;
  }
  const auto budget = validation.job->max_attempts;
  auto job = make_new_job(std::move(*validation.job), decoded.job->traceparent);
  const auto outcome = insert_jobs(tx, {job}).at(0);
  return Requeued{outcome.id, 1, budget, true};
}

}  // namespace

json DeadLetterFilter::to_json() const {
  json out = json::object();
  if (type) out["type"] = *type;
  if (queue) out["queue"] = *queue;
  if (reason) out["reason"] = *reason;
  if (error_type) out["error_type"] = *error_type;
  if (q) out["q"] = *q;
  if (since) out["since"] = format_rfc3339_ms(*since);
  if (until) out["until"] = format_rfc3339_ms(*until);
  out["state"] = state;
  return out;
}

DeadLetterFilter parse_dead_letter_filter(
    const std::vector<std::pair<std::string, std::string>>& params, int max_limit) {
  static const std::regex type_pattern("^[a-z0-9][a-z0-9._-]{0,63}$");
  static const std::regex queue_pattern("^[a-z0-9][a-z0-9_-]{0,63}$");
  DeadLetterFilter filter;
  std::vector<FieldError> errors;
  auto parse_time = [&](const std::string& name, const std::string& value) {
    auto t = parse_rfc3339(value);
    if (!t) errors.push_back({name, "must be an RFC 3339 time"});
    return t;
  };
  for (const auto& [name, value] : params) {
    if (name == "type") {
      if (!std::regex_match(value, type_pattern)) errors.push_back({name, "is not a job type"});
      filter.type = value;
    } else if (name == "queue") {
      if (!std::regex_match(value, queue_pattern)) errors.push_back({name, "is not a queue name"});
      filter.queue = value;
    } else if (name == "reason") {
      if (kReasons.count(value) == 0) {
        errors.push_back({name,
                          "must be one of max_attempts, permanent_failure, "
                          "delivery_limit, poison, expired"});
      }
      filter.reason = value;
    } else if (name == "error_type") {
      if (!is_clean_text(value) || value.empty() || value.size() > 255) {
        errors.push_back({name, "must be 1 to 255 bytes of text"});
      }
      filter.error_type = value;
    } else if (name == "q") {
      if (!is_clean_text(value) || value.empty() || value.size() > 1024) {
        errors.push_back({name, "must be 1 to 1024 bytes of text"});
      }
      filter.q = value;
    } else if (name == "since") {
      filter.since = parse_time(name, value);
    } else if (name == "until") {
      filter.until = parse_time(name, value);
    } else if (name == "state") {
      if (kStates.count(value) == 0) {
        errors.push_back({name, "must be one of dead, requeued, discarded, all"});
      }
      filter.state = value;
    } else if (name == "limit") {
      filter.limit = parse_page_limit(value, max_limit, errors);
    } else if (name == "cursor") {
      filter.cursor = value;
    } else {
      errors.push_back({is_clean_text(name) ? name : "query", "is not a known filter"});
    }
  }
  reject_invalid_query(std::move(errors));
  return filter;
}

json list_dead_letters(pqxx::transaction_base& tx, const DeadLetterFilter& filter) {
  json args = json::object();
  std::string where = where_clause(filter, args);
  if (filter.cursor) {
    add_cursor_condition(*filter.cursor, "d.dead_lettered_at", "d.id", where, args);
  }
  const std::string sql = std::string("SELECT ") + kDeadLetterJson +
                          cursor_columns("d.dead_lettered_at", "d.id") +
                          " FROM dead_letters d WHERE " + where +
                          page_order("d.dead_lettered_at", "d.id", filter.limit);
  return page_from(tx.exec_params(sql, args.dump()), filter.limit, "dead_letters");
}

json summarize_dead_letters(pqxx::transaction_base& tx) {
  auto rows = tx.exec(R"(
    SELECT coalesce(json_agg(g ORDER BY g.count DESC, g.last_at DESC), '[]'::json)
    FROM (
      SELECT type, queue, reason, error_type, count(*) AS count,
             warren_ts(min(dead_lettered_at)) AS first_at,
             warren_ts(max(dead_lettered_at)) AS last_at,
             (array_agg(error_message ORDER BY dead_lettered_at DESC))[1] AS sample_message
      FROM dead_letters WHERE state = 'dead'
      GROUP BY type, queue, reason, error_type) g)");
  return json{{"groups", json::parse(rows[0][0].c_str())}};
}

std::optional<json> find_dead_letter(pqxx::transaction_base& tx, const std::string& id) {
  if (!is_canonical_uuid(id)) return std::nullopt;
  auto rows = tx.exec_params(std::string("SELECT ") + kDeadLetterJson + R"(,
      (SELECT coalesce(json_agg(json_build_object(
                'action', a.action, 'actor', a.actor, 'reason', a.reason,
                'operation_id', a.operation_id, 'details', a.details, 'at', warren_ts(a.at))
              ORDER BY a.id), '[]'::json)
       FROM dead_letter_audit a WHERE a.dead_letter_id = d.id)
    FROM dead_letters d WHERE d.id = $1)",
                             id);
  if (rows.empty()) return std::nullopt;
  json letter = json::parse(rows[0][0].c_str());
  letter["audit"] = json::parse(rows[0][1].c_str());
  if (letter["job_id"].is_string()) {
    auto attempts = find_attempts(tx, letter["job_id"].get<std::string>());
    letter["attempts_log"] = attempts ? (*attempts)["attempts"] : json::array();
  }
  return letter;
}

std::string matching_dead_letters_sql(const DeadLetterFilter& filter, json& args) {
  return "SELECT d.id FROM dead_letters d WHERE " + where_clause(filter, args) +
         " ORDER BY d.dead_lettered_at, d.id LIMIT " + std::to_string(filter.limit);
}

ActionOutcome requeue_dead_letter(pqxx::transaction_base& tx, const Config& config,
                                  const std::string& id, const DeadLetterAction& action,
                                  const RequeueOptions& options) {
  if (!is_canonical_uuid(id)) return {ActionResult::kNotFound, "", "", 0};
  // One round trip: the dead letter locked, then its job (every writer of both locks them in
  // this order), and the budget the job's last requeue gave it.
  auto rows = tx.exec_params(R"(
    WITH letter AS (SELECT id, state, job_id, raw_body FROM dead_letters WHERE id = $1 FOR UPDATE),
         job AS (SELECT id, status, attempts, max_attempts FROM jobs
                 WHERE id = (SELECT job_id FROM letter) FOR UPDATE)
    SELECT l.state, l.job_id::text, l.raw_body IS NOT NULL, l.raw_body,
           j.status, j.attempts, j.max_attempts,
           (SELECT (a.details->>'budget')::int
            FROM dead_letter_audit a JOIN dead_letters d ON d.id = a.dead_letter_id
            WHERE d.job_id = l.job_id AND a.action = 'requeued' AND a.details ? 'budget'
            ORDER BY a.id DESC LIMIT 1)
    FROM letter l LEFT JOIN job j ON true)",
                             id);
  if (rows.empty()) return {ActionResult::kNotFound, "", "", 0};
  const auto& letter = rows[0];
  const std::string state = letter[0].as<std::string>();
  if (state != "dead") return conflict("the dead letter is already " + state);

  std::optional<Requeued> requeued;
  if (!letter[4].is_null()) {
    const std::string job_id = letter[1].as<std::string>();
    const std::string status = letter[4].as<std::string>();
    if (status != "failed") {
      return conflict("its job " + job_id + " is " + status + ": only a failed job is requeued");
    }
    requeued = requeue_failed_job(tx, job_id, letter[5].as<int>(), letter[6].as<int>(), letter[7],
                                  options);
  } else if (letter[2].as<bool>()) {
    const pqxx::binarystring body(letter[3]);
    std::string why;
    requeued = requeue_as_new_job(tx, config, body.str(), options, why);
    if (!requeued) return conflict(why);
  } else {
    return conflict("the dead letter has neither a job nor a message body to requeue");
  }

  record_action(tx, id, "requeued", action, requeued->job_id,
                {{"job_id", requeued->job_id},
                 {"new_job", requeued->new_job},
                 {"first_attempt", requeued->first_attempt},
                 {"last_attempt", requeued->first_attempt + requeued->budget - 1},
                 {"budget", requeued->budget},
                 {"payload_edited", options.payload.has_value()}});
  return {ActionResult::kDone, "", requeued->job_id, requeued->first_attempt};
}

ActionOutcome discard_dead_letter(pqxx::transaction_base& tx, const std::string& id,
                                  const DeadLetterAction& action) {
  if (!is_canonical_uuid(id)) return {ActionResult::kNotFound, "", "", 0};
  auto rows = tx.exec_params("SELECT state FROM dead_letters WHERE id = $1 FOR UPDATE", id);
  if (rows.empty()) return {ActionResult::kNotFound, "", "", 0};
  const std::string state = rows[0][0].as<std::string>();
  if (state != "dead") return conflict("the dead letter is already " + state);
  record_action(tx, id, "discarded", action, std::nullopt, json::object());
  return {ActionResult::kDone, "", "", 0};
}

}  // namespace warren::db

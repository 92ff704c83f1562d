// See bulk_operation_store.h.
#include "shared/db/bulk_operation_store.h"

#include <algorithm>
#include <set>

#include "shared/db/sql_array.h"
#include "shared/problem.h"

#include "shared/uuid.h"

namespace warren::db {
namespace {

using nlohmann::json;

constexpr int kFailuresShown = 20;
constexpr char kRunnerLockKey[] = "hashtext('warren.bulk_operations')";

constexpr const char* kOperationJson = R"(json_build_object(
    'id', o.id, 'kind', o.kind, 'state', o.state,
    'matched', o.matched, 'done', o.done, 'failed', o.failed,
    'started_at', warren_ts(o.started_at), 'finished_at', warren_ts(o.finished_at),
    'updated_at', warren_ts(o.updated_at), 'requested_by', o.requested_by, 'reason', o.reason,
    'filter', o.filter - 'ids',
    'ids_given', CASE WHEN o.filter ? 'ids' THEN jsonb_array_length(o.filter->'ids') END,
    'params', o.params, 'last_error', o.last_error))";

std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct ItemResult {
  std::string id;
  std::string error;  // "" = done
};

ItemResult apply_to_item(pqxx::work& tx, const Config& config, const std::string& kind,
                         const std::string& id, const DeadLetterAction& action,
                         const RequeueOptions& options) {
  // A savepoint per item: an item the database refuses (say, a poison body whose payload
  // Postgres cannot store) fails alone instead of rolling back its whole chunk.
  pqxx::subtransaction item(tx, "bulk_item");
  try {
    const auto outcome = kind == "requeue" ? requeue_dead_letter(item, config, id, action, options)
                                           : discard_dead_letter(item, id, action);
    item.commit();
    switch (outcome.result) {
      case ActionResult::kDone:
        return {id, ""};
      case ActionResult::kNotFound:
        return {id, "the dead letter no longer exists"};
      case ActionResult::kConflict:
        return {id, outcome.detail};
    }
  } catch (const pqxx::sql_error& error) {
    return {id, std::string("the database refused it: ") + error.what()};
  }
  return {id, "unknown outcome"};
}

}  // namespace

DeadLetterFilter parse_bulk_filter(std::vector<std::pair<std::string, std::string>> params,
                                   const std::string& kind) {
  if (params.empty()) {
    throw ProblemError(validation_problem(
        "give dead letter ids or at least one filter (type, queue, reason, error_type, q, since, "
        "until, state)",
        {{"filter", "is empty"}}));
  }
  const bool has_limit = std::any_of(params.begin(), params.end(),
                                     [](const auto& param) { return param.first == "limit"; });
  if (!has_limit) params.emplace_back("limit", std::to_string(kMaxBulkItems));
  auto filter = parse_dead_letter_filter(params, kMaxBulkItems);
  if (filter.state != "dead") {
    const std::string message =
        "must be dead: only dead letters in state dead can be " + kind + "d";
    throw ProblemError(validation_problem("state " + message, {{"state", message}}));
  }
  return filter;
}

CreatedOperation create_bulk_operation(pqxx::work& tx, const BulkRequest& request) {
  CreatedOperation created;
  created.id = new_uuid_v7();
  const json filter = request.filter ? request.filter->to_json() : json{{"ids", request.ids}};
  json params = json::object();
  if (request.max_attempts) params["max_attempts"] = *request.max_attempts;
  tx.exec_params(R"(
    INSERT INTO bulk_operations (id, kind, state, filter, params, reason, matched, requested_by,
                                 started_at, updated_at)
    VALUES ($1, $2, 'running', $3::jsonb, $4::jsonb, nullif($5, ''), 0, $6, now(), now()))",
                 created.id, request.kind, dump(filter), dump(params), request.reason,
                 request.actor);

  if (request.filter) {
    json args = json::object();
    const std::string matching = matching_dead_letters_sql(*request.filter, args);
    auto rows = tx.exec_params(
        "INSERT INTO bulk_operation_items (operation_id, dead_letter_id) "
        "SELECT $2::uuid, m.id FROM (" +
            matching + ") m",
        args.dump(), created.id);
    created.matched = static_cast<int>(rows.affected_rows());
  } else {
    auto rows = tx.exec_params(R"(
      INSERT INTO bulk_operation_items (operation_id, dead_letter_id)
      SELECT $1::uuid, d.id FROM dead_letters d
      WHERE d.id = ANY($2::uuid[]) AND d.state = 'dead'
      RETURNING dead_letter_id::text)",
                               created.id, sql_array(request.ids));
    std::set<std::string> matched;
    for (const auto& row : rows) matched.insert(row[0].as<std::string>());
    for (const auto& id : request.ids) {
      if (matched.count(id) == 0) created.not_matched.push_back(id);
    }
    created.matched = static_cast<int>(matched.size());
  }
  tx.exec_params(R"(
    UPDATE bulk_operations
    SET matched = $2,
        state = CASE WHEN $2 = 0 THEN 'done' ELSE 'running' END,
        finished_at = CASE WHEN $2 = 0 THEN now() END
    WHERE id = $1)",
                 created.id, created.matched);
  return created;
}

std::optional<json> find_operation(pqxx::transaction_base& tx, const std::string& id) {
  if (!is_canonical_uuid(id)) return std::nullopt;
  auto rows = tx.exec_params(std::string("SELECT ") + kOperationJson + R"(,
      (SELECT coalesce(json_agg(json_build_object('dead_letter_id', i.dead_letter_id,
                                                  'error', i.error)), '[]'::json)
       FROM (SELECT dead_letter_id, error FROM bulk_operation_items
             WHERE operation_id = o.id AND state = 'failed'
             ORDER BY dead_letter_id LIMIT $2) i)
    FROM bulk_operations o WHERE o.id = $1)",
                             id, kFailuresShown);
  if (rows.empty()) return std::nullopt;
  json operation = json::parse(rows[0][0].c_str());
  operation["failures"] = json::parse(rows[0][1].c_str());
  return operation;
}

json list_operations(pqxx::transaction_base& tx, int limit) {
  auto rows = tx.exec_params(std::string("SELECT coalesce(json_agg(x.op ORDER BY x.started_at "
                                         "DESC, x.id DESC), '[]'::json) FROM (SELECT ") +
                                 kOperationJson +
                                 " AS op, o.started_at, o.id FROM bulk_operations o "
                                 "ORDER BY o.started_at DESC, o.id DESC LIMIT $1) x",
                             limit);
  return json{{"operations", json::parse(rows[0][0].c_str())}};
}

std::optional<RunnableOperation> next_running_operation(pqxx::transaction_base& tx) {
  auto rows = tx.exec(
      "SELECT id::text, kind FROM bulk_operations WHERE state = 'running' "
      "ORDER BY started_at, id LIMIT 1");
  if (rows.empty()) return std::nullopt;
  return RunnableOperation{rows[0][0].as<std::string>(), rows[0][1].as<std::string>()};
}

ChunkResult run_operation_chunk(pqxx::work& tx, const Config& config,
                                const std::string& operation_id, int max_items) {
  ChunkResult chunk;
  // The operation row is locked first: its counters are updated by one chunk at a time.
  auto operation = tx.exec_params(
      "SELECT kind, requested_by, coalesce(reason, ''), params::text FROM bulk_operations "
      "WHERE id = $1 AND state = 'running' FOR UPDATE",
      operation_id);
  if (operation.empty()) {
    chunk.finished = true;
    return chunk;
  }
  const std::string kind = operation[0][0].as<std::string>();
  const DeadLetterAction action{operation[0][1].as<std::string>(),
                                operation[0][2].as<std::string>(), operation_id};
  RequeueOptions options;
  const json params = json::parse(operation[0][3].as<std::string>());
  if (params.contains("max_attempts")) options.max_attempts = params["max_attempts"].get<int>();

  auto items = tx.exec_params(R"(
    SELECT dead_letter_id::text FROM bulk_operation_items
    WHERE operation_id = $1 AND state = 'pending'
    ORDER BY dead_letter_id LIMIT $2
    FOR UPDATE SKIP LOCKED)",
                              operation_id, max_items);
  json marks = json::array();
  for (const auto& row : items) {
    const auto result = apply_to_item(tx, config, kind, row[0].as<std::string>(), action, options);
    if (result.error.empty()) {
      ++chunk.done;
    } else {
      ++chunk.failed;
    }
    marks.push_back({{"id", result.id},
                     {"state", result.error.empty() ? "done" : "failed"},
                     {"error", result.error.empty() ? json() : json(result.error)}});
  }
  if (!marks.empty()) {
    tx.exec_params(R"(
      UPDATE bulk_operation_items i SET state = x.state, error = x.error
      FROM json_to_recordset($2::json) AS x(id uuid, state text, error text)
      WHERE i.operation_id = $1 AND i.dead_letter_id = x.id)",
                   operation_id, dump(marks));
  }
  chunk.finished = tx.exec_params(
                         "SELECT NOT EXISTS (SELECT 1 FROM bulk_operation_items "
                         "WHERE operation_id = $1 AND state = 'pending')",
                         operation_id)[0][0]
                       .as<bool>();
  tx.exec_params(R"(
    UPDATE bulk_operations
    SET done = done + $2, failed = failed + $3, updated_at = now(),
        state = CASE WHEN $4 THEN 'done' ELSE state END,
        finished_at = CASE WHEN $4 THEN now() END
    WHERE id = $1)",
                 operation_id, chunk.done, chunk.failed, chunk.finished);
  return chunk;
}

bool try_take_runner_lock(pqxx::connection& connection) {
  pqxx::nontransaction tx(connection);
  return tx.exec(std::string("SELECT pg_try_advisory_lock(") + kRunnerLockKey + ")")[0][0]
      .as<bool>();
}

bool runner_is_active(pqxx::connection& connection) {
  if (!try_take_runner_lock(connection)) return true;
  pqxx::nontransaction tx(connection);
  tx.exec(std::string("SELECT pg_advisory_unlock(") + kRunnerLockKey + ")");
  return false;
}

void fail_operation(pqxx::work& tx, const std::string& operation_id, const std::string& error) {
  tx.exec_params(R"(
    UPDATE bulk_operations SET state = 'failed', last_error = $2, finished_at = now(),
                               updated_at = now()
    WHERE id = $1 AND state = 'running')",
                 operation_id, error);
}

}  // namespace warren::db

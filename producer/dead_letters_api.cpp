// See dead_letters_api.h.
#include "producer/dead_letters_api.h"

#include <set>

#include "shared/db/bulk_operation_store.h"
#include "shared/db/dead_letter_store.h"
#include "shared/job_request.h"
#include "shared/logging.h"
#include "shared/problem.h"
#include "shared/strict_json.h"
#include "shared/uuid.h"

namespace warren {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxReasonBytes = 1000;
const std::set<std::string> kFilterKeys{"type", "queue", "reason", "error_type",
                                        "q",    "since", "until",  "state"};

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  throw ProblemError(validation_problem(field + " " + message, {{field, message}}));
}

// An optional JSON object body: {} when the request has none.
json optional_body(const httplib::Request& request) {
  if (request.body.empty()) return json::object();
  require_json_content_type(request);
  auto parsed = parse_strict_json(request.body);
  if (!parsed.value) throw ProblemError(validation_problem(parsed.error));
  if (!parsed.value->is_object()) bad("body", "must be a JSON object");
  return std::move(*parsed.value);
}

std::string text_field(const json& body, const std::string& key) {
  if (!body.contains(key)) return "";
  const auto& value = body[key];
  if (!value.is_string()) bad(key, "must be a string");
  const auto& text = value.get_ref<const std::string&>();
  if (!is_clean_text(text) || text.size() > kMaxReasonBytes) {
    bad(key, "must be at most 1000 bytes of text");
  }
  return text;
}

std::optional<int> budget_field(const json& body) {
  if (!body.contains("max_attempts")) return std::nullopt;
  const auto& value = body["max_attempts"];
  if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
      value.get<std::int64_t>() > 100) {
    bad("max_attempts", "must be between 1 and 100");
  }
  return value.get<int>();
}

void only_keys(const json& body, const std::set<std::string>& allowed) {
  for (const auto& [key, value] : body.items()) {
    if (allowed.count(key) == 0) bad(is_clean_text(key) ? key : "body", "is not a known field");
  }
}

[[noreturn]] void answer_failure(const db::ActionOutcome& outcome, const std::string& id) {
  if (outcome.result == db::ActionResult::kNotFound) {
    throw ProblemError(not_found_problem("no dead letter " + id));
  }
  throw ProblemError(conflict_problem(outcome.detail));
}

// The bulk body: {"ids": [...]} or the list filters as keys, plus limit, comment (the audit
// text: `reason` is already the dead-letter reason filter here) and, for requeue, max_attempts.
db::BulkRequest parse_bulk(const json& body, const std::string& kind, const Caller& caller) {
  std::set<std::string> allowed = kFilterKeys;
  allowed.insert({"ids", "limit", "comment"});
  if (kind == "requeue") allowed.insert("max_attempts");
  only_keys(body, allowed);

  db::BulkRequest request;
  request.kind = kind;
  request.actor = caller.name;
  request.reason = text_field(body, "comment");
  if (kind == "requeue") request.max_attempts = budget_field(body);

  std::vector<std::pair<std::string, std::string>> filter;
  for (const auto& key : kFilterKeys) {
    if (!body.contains(key)) continue;
    if (!body[key].is_string()) bad(key, "must be a string");
    filter.emplace_back(key, body[key].get<std::string>());
  }
  if (body.contains("ids")) {
    if (!filter.empty()) bad("ids", "cannot be combined with filters");
    if (body.contains("limit")) bad("limit", "applies to filters, not to ids");
    const auto& ids = body["ids"];
    if (!ids.is_array() || ids.empty() || ids.size() > db::kMaxBulkItems) {
      bad("ids", "must be an array of 1 to 10000 dead letter ids");
    }
    std::set<std::string> seen;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_string() || !is_canonical_uuid(ids[i].get<std::string>())) {
        bad("ids[" + std::to_string(i) + "]", "must be a dead letter id (lower-case UUID)");
      }
      const auto id = ids[i].get<std::string>();
      if (seen.insert(id).second) request.ids.push_back(id);
    }
    return request;
  }
  if (body.contains("limit")) {
    const auto& limit = body["limit"];
    if (!limit.is_number_integer()) bad("limit", "must be an integer from 1 to 10000");
    filter.emplace_back("limit", std::to_string(limit.get<std::int64_t>()));
  }
  request.filter = db::parse_bulk_filter(std::move(filter), kind);
  return request;
}

}  // namespace

DeadLettersApi::DeadLettersApi(const Config& config, db::ConnectionPool& pool,
                               ProducerMetrics& metrics, Wakeups wakeups)
    : config_(config), pool_(pool), metrics_(metrics), wakeups_(std::move(wakeups)) {}

void DeadLettersApi::add_routes(ApiRouter& router) {
  auto bind = [this](void (DeadLettersApi::*method)(RequestContext&)) {
    return [this, method](RequestContext& context) { (this->*method)(context); };
  };
  // The fixed paths first: the router takes the first pattern that matches.
  router.add({"GET", "/v1/dead-letters", "GET /v1/dead-letters", Scope::kRead,
              bind(&DeadLettersApi::list)});
  router.add({"GET", "/v1/dead-letters/summary", "GET /v1/dead-letters/summary", Scope::kRead,
              bind(&DeadLettersApi::summary)});
  router.add({"POST", "/v1/dead-letters/requeue", "POST /v1/dead-letters/requeue", Scope::kAdmin,
              [this](RequestContext& context) { bulk(context, "requeue"); }});
  router.add({"POST", "/v1/dead-letters/discard", "POST /v1/dead-letters/discard", Scope::kAdmin,
              [this](RequestContext& context) { bulk(context, "discard"); }});
  router.add({"GET", R"(/v1/dead-letters/([^/]+))", "GET /v1/dead-letters/{id}", Scope::kRead,
              bind(&DeadLettersApi::get)});
  router.add({"POST", R"(/v1/dead-letters/([^/]+)/requeue)", "POST /v1/dead-letters/{id}/requeue",
              Scope::kAdmin, bind(&DeadLettersApi::requeue_one)});
  router.add({"POST", R"(/v1/dead-letters/([^/]+)/discard)", "POST /v1/dead-letters/{id}/discard",
              Scope::kAdmin, bind(&DeadLettersApi::discard_one)});
}

void DeadLettersApi::list(RequestContext& context) {
  const auto filter =
      db::parse_dead_letter_filter({context.request.params.begin(), context.request.params.end()});
  context.json(200, pool_.with_connection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return db::list_dead_letters(tx, filter);
  }));
}

void DeadLettersApi::summary(RequestContext& context) {
  if (!context.request.params.empty()) bad("query", "summary takes no parameters");
  context.json(200, pool_.with_connection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return db::summarize_dead_letters(tx);
  }));
}

void DeadLettersApi::get(RequestContext& context) {
  const std::string id = context.request.matches[1].str();
  auto letter = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return db::find_dead_letter(tx, id);
  });
  if (!letter) throw ProblemError(not_found_problem("no dead letter " + id));
  context.json(200, *letter);
}

void DeadLettersApi::requeue_one(RequestContext& context) {
  const std::string id = context.request.matches[1].str();
  const json body = optional_body(context.request);
  only_keys(body, {"max_attempts", "payload", "reason"});
  db::RequeueOptions options;
  options.max_attempts = budget_field(body);
  if (body.contains("payload")) {
    if (!body["payload"].is_object()) bad("payload", "must be a JSON object");
    if (json_has_nul(body["payload"])) bad("payload", "must not contain NUL characters (\\u0000)");
    options.payload = body["payload"];
  }
  const db::DeadLetterAction action{context.caller.name, text_field(body, "reason"), std::nullopt};

  auto [outcome, letter] = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto result = db::requeue_dead_letter(tx, config_, id, action, options);
    if (result.result != db::ActionResult::kDone) return std::make_pair(result, json());
    auto after = db::find_dead_letter(tx, id);
    tx.commit();
    return std::make_pair(result, *after);
  });
  if (outcome.result != db::ActionResult::kDone) answer_failure(outcome, id);
  wakeups_.relay();
  metrics_.dead_letter_actions.with({"requeued", "single"}).inc();
  log::info("dead letter requeued", {{"request_id", context.request_id},
                                     {"dead_letter_id", id},
                                     {"job_id", outcome.job_id},
                                     {"first_attempt", outcome.first_attempt},
                                     {"caller", context.caller.name}});
  context.json(200, letter);
}

void DeadLettersApi::discard_one(RequestContext& context) {
  const std::string id = context.request.matches[1].str();
  const json body = optional_body(context.request);
  only_keys(body, {"reason"});
  const db::DeadLetterAction action{context.caller.name, text_field(body, "reason"), std::nullopt};

  auto [outcome, letter] = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto result = db::discard_dead_letter(tx, id, action);
    if (result.result != db::ActionResult::kDone) return std::make_pair(result, json());
    auto after = db::find_dead_letter(tx, id);
    tx.commit();
    return std::make_pair(result, *after);
  });
  if (outcome.result != db::ActionResult::kDone) answer_failure(outcome, id);
  metrics_.dead_letter_actions.with({"discarded", "single"}).inc();
  log::info("dead letter discarded", {{"request_id", context.request_id},
                                      {"dead_letter_id", id},
                                      {"caller", context.caller.name}});
  context.json(200, letter);
}

void DeadLettersApi::bulk(RequestContext& context, const std::string& kind) {
  require_json_content_type(context.request);
  auto parsed = parse_strict_json(context.request.body);
  if (!parsed.value) throw ProblemError(validation_problem(parsed.error));
  if (!parsed.value->is_object()) bad("body", "must be a JSON object");
  const auto request = parse_bulk(*parsed.value, kind, context.caller);

  const auto created = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto result = db::create_bulk_operation(tx, request);
    tx.commit();
    return result;
  });
  wakeups_.runner();
  log::info("bulk operation created", {{"request_id", context.request_id},
                                       {"operation_id", created.id},
                                       {"kind", kind},
                                       {"matched", created.matched},
                                       {"caller", context.caller.name}});
  const std::string url = "/v1/operations/" + created.id;
  json answer = {
      {"operation_id", created.id}, {"matched", created.matched}, {"operation_url", url}};
  if (!request.ids.empty()) answer["not_matched"] = created.not_matched;
  context.response.set_header("Location", url);
  context.json(202, answer);
}

}  // namespace warren

// `warrenctl dlq list|summary|show|requeue|discard|operation`: the dead-letter routes of API.md
// from a shell, with the producer's own SQL (db/dead_letter_store.h), so both show and do the
// same thing.
//
// Requeue and discard take one id (done at once, like POST /v1/dead-letters/{id}/requeue), or
// several ids or filter options (a durable bulk operation, like POST /v1/dead-letters/requeue).
// A running producer executes bulk operations at WARREN_REPLAY_RATE; warrenctl follows the
// operation with a progress bar until it ends. Ctrl-C stops watching, not the operation:
// `warrenctl dlq operation ID --wait` picks it up again.
//
// The audit trail names the actor: "warrenctl:<user>" unless --as NAME says otherwise.
#include <pwd.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <thread>

#include "shared/db/bulk_operation_store.h"
#include "shared/db/connection_pool.h"
#include "shared/db/dead_letter_store.h"
#include "shared/problem.h"
#include "tools/warrenctl/commands.h"
#include "tools/warrenctl/output.h"

namespace warren::ctl {
namespace {

using nlohmann::json;

const std::vector<std::string> kFilterOptions{"type", "queue", "reason", "error-type",
                                              "q",    "since", "until",  "state"};
const std::vector<Column> kLetterColumns{{"ID", "id"},
                                         {"TYPE", "type"},
                                         {"QUEUE", "queue"},
                                         {"REASON", "reason"},
                                         {"ERROR", "error/type"},
                                         {"ATTEMPTS", "attempts"},
                                         {"DEAD SINCE", "dead_lettered_at"},
                                         {"STATE", "state"},
                                         {"MESSAGE", "error/message"}};
const std::vector<Column> kGroupColumns{
    {"COUNT", "count"},      {"TYPE", "type"},
    {"QUEUE", "queue"},      {"REASON", "reason"},
    {"ERROR", "error_type"}, {"FIRST", "first_at"},
    {"LAST", "last_at"},     {"SAMPLE MESSAGE", "sample_message"}};
const std::vector<Column> kAttemptColumns{{"ATTEMPT", "attempt"},    {"OUTCOME", "outcome"},
                                          {"STARTED", "started_at"}, {"WORKER", "worker"},
                                          {"ERROR", "error/type"},   {"MESSAGE", "error/message"}};
const std::vector<Column> kAuditColumns{{"AT", "at"},
                                        {"ACTION", "action"},
                                        {"BY", "actor"},
                                        {"REASON", "reason"},
                                        {"OPERATION", "operation_id"}};

constexpr std::size_t kMessageWidth = 60;
constexpr auto kFollowInterval = std::chrono::milliseconds(250);
constexpr auto kStallWarning = std::chrono::seconds(10);

std::string actor(const CommandArgs& args) {
  if (auto name = args.get("as")) return *name;
  if (const char* user = std::getenv("USER"); user && *user)
    return std::string("warrenctl:") + user;
  // No USER (cron, a container): the account running the command.
  if (const passwd* account = getpwuid(getuid()))
    return std::string("warrenctl:") + account->pw_name;
  return "warrenctl:unknown";
}

std::vector<std::pair<std::string, std::string>> filter_params(const CommandArgs& args) {
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& name : kFilterOptions) {
    if (auto value = args.get(name)) {
      std::string key = name;
      std::replace(key.begin(), key.end(), '-', '_');
      params.emplace_back(key, *value);
    }
  }
  return params;
}

db::DeadLetterFilter parse_filter(std::vector<std::pair<std::string, std::string>> params,
                                  int max_limit) {
  try {
    return db::parse_dead_letter_filter(params, max_limit);
  } catch (const ProblemError& error) {
    throw UsageError(error.problem().detail);
  }
}

// Table cells stay on one line and readable.
std::vector<json> for_table(const json& rows, const char* message_field, const char* nested) {
  std::vector<json> out;
  for (json row : rows) {
    json* holder = nested ? &row[nested] : &row;
    if (holder->is_object() && (*holder)[message_field].is_string()) {
      (*holder)[message_field] =
          shorten((*holder)[message_field].get<std::string>(), kMessageWidth);
    }
    out.push_back(std::move(row));
  }
  return out;
}

int list(pqxx::connection& connection, const CommandArgs& args, OutputFormat format) {
  auto params = filter_params(args);
  for (const char* name : {"limit", "cursor"}) {
    if (auto value = args.get(name)) params.emplace_back(name, *value);
  }
  const auto filter = parse_filter(params, 500);
  pqxx::read_transaction tx(connection);
  const auto page = db::list_dead_letters(tx, filter);
  if (format == OutputFormat::kJson) {
    std::cout << page.dump(2) << "\n";
    return 0;
  }
  print_table(for_table(page["dead_letters"], "message", "error"), kLetterColumns);
  if (!page["next_cursor"].is_null()) {
    std::cout << "more: --cursor " << page["next_cursor"].get<std::string>() << "\n";
  }
  return 0;
}

int summary(pqxx::connection& connection, OutputFormat format) {
  pqxx::read_transaction tx(connection);
  const auto groups = db::summarize_dead_letters(tx);
  if (format == OutputFormat::kJson) {
    std::cout << groups.dump(2) << "\n";
  } else if (groups["groups"].empty()) {
    std::cout << "no dead letters\n";
  } else {
    print_table(for_table(groups["groups"], "sample_message", nullptr), kGroupColumns);
  }
  return 0;
}

void print_letter(const json& letter, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::cout << letter.dump(2) << "\n";
    return;
  }
  json record = letter;
  for (const char* nested : {"attempts_log", "audit", "headers"}) record.erase(nested);
  print_record(record);
  if (letter.contains("attempts_log")) {
    std::cout << "\nattempts:\n";
    print_table(for_table(letter["attempts_log"], "message", "error"), kAttemptColumns);
  }
  if (!letter["audit"].empty()) {
    std::cout << "\naudit:\n";
    print_table(letter["audit"].get<std::vector<json>>(), kAuditColumns);
  }
  std::cout << "\nheaders: " << letter["headers"].dump() << "\n";
}

int show(pqxx::connection& connection, const std::string& id, OutputFormat format) {
  pqxx::read_transaction tx(connection);
  auto letter = db::find_dead_letter(tx, id);
  if (!letter) {
    std::cerr << "no dead letter " << id << "\n";
    return 1;
  }
  print_letter(*letter, format);
  return 0;
}

int act_on_one(pqxx::connection& connection, const Config& config, const std::string& kind,
               const std::string& id, const CommandArgs& args, OutputFormat format) {
  const db::DeadLetterAction action{actor(args), args.get("comment").value_or(""), std::nullopt};
  db::RequeueOptions options;
  if (auto budget = args.get("max-attempts")) {
    options.max_attempts = args.get_int("max-attempts", 0, 1, 100);
  }
  if (auto payload = args.get("payload")) {
    options.payload = parse_or_usage(read_inline_or_file(*payload), "--payload");
    if (!options.payload->is_object()) throw UsageError("--payload must be a JSON object");
  }
  pqxx::work tx(connection);
  const auto outcome = kind == "requeue" ? db::requeue_dead_letter(tx, config, id, action, options)
                                         : db::discard_dead_letter(tx, id, action);
  if (outcome.result == db::ActionResult::kNotFound) {
    std::cerr << "no dead letter " << id << "\n";
    return 1;
  }
  if (outcome.result == db::ActionResult::kConflict) {
    std::cerr << "cannot " << kind << " " << id << ": " << outcome.detail << "\n";
    return 1;
  }
  auto letter = db::find_dead_letter(tx, id);
  tx.commit();
  if (kind == "requeue") {
    std::cerr << "requeued: job " << outcome.job_id << " runs next as attempt "
              << outcome.first_attempt << " (published by a running producer)\n";
  }
  print_letter(*letter, format);
  return 0;
}

// Follows an operation until it ends; the exit code says whether every item was done.
int follow(pqxx::connection& connection, const std::string& operation_id, OutputFormat format) {
  json operation;
  {
    pqxx::read_transaction tx(connection);
    operation = *db::find_operation(tx, operation_id);
  }
  ProgressBar bar(operation["kind"].get<std::string>(), operation["matched"].get<int>());
  auto last_change = std::chrono::steady_clock::now();
  int last_finished = -1;
  bool warned = false;
  while (operation["state"] == "running") {
    const int done = operation["done"].get<int>(), failed = operation["failed"].get<int>();
    bar.update(done, failed);
    if (done + failed != last_finished) {
      last_finished = done + failed;
      last_change = std::chrono::steady_clock::now();
    } else if (!warned && std::chrono::steady_clock::now() - last_change > kStallWarning &&
               !db::runner_is_active(connection)) {
      std::cerr << "\nno producer is running bulk operations; this one starts when one does "
                   "(Ctrl-C stops watching, not the operation)\n";
      warned = true;
    }
    std::this_thread::sleep_for(kFollowInterval);
    pqxx::read_transaction tx(connection);
    operation = *db::find_operation(tx, operation_id);
  }
  bar.update(operation["done"].get<int>(), operation["failed"].get<int>());
  if (format == OutputFormat::kJson) {
    std::cout << operation.dump(2) << "\n";
  } else {
    std::cout << "\n";
    json record = operation;
    record.erase("failures");
    print_record(record);
    if (!operation["failures"].empty()) {
      std::cout << "\nfailures (first " << operation["failures"].size() << "):\n";
      print_table(operation["failures"].get<std::vector<json>>(),
                  {{"DEAD LETTER", "dead_letter_id"}, {"ERROR", "error"}});
    }
  }
  return operation["state"] == "done" && operation["failed"] == 0 ? 0 : 1;
}

int bulk(pqxx::connection& connection, const std::string& kind, const std::vector<std::string>& ids,
         const CommandArgs& args, OutputFormat format) {
  db::BulkRequest request;
  request.kind = kind;
  request.actor = actor(args);
  request.reason = args.get("comment").value_or("");
  if (kind == "requeue" && args.has("max-attempts")) {
    request.max_attempts = args.get_int("max-attempts", 0, 1, 100);
  }
  auto params = filter_params(args);
  if (!ids.empty()) {
    if (!params.empty()) throw UsageError("give dead letter ids or filters, not both");
    request.ids = ids;
  } else {
    if (auto limit = args.get("limit")) params.emplace_back("limit", *limit);
    try {
      request.filter = db::parse_bulk_filter(std::move(params), kind);
    } catch (const ProblemError& error) {
      throw UsageError(error.problem().detail);
    }
  }
  db::CreatedOperation created;
  {
    pqxx::work tx(connection);
    created = db::create_bulk_operation(tx, request);
    tx.commit();
  }
  for (const auto& id : created.not_matched) {
    std::cerr << "skipped " << id << ": not a dead letter in state dead\n";
  }
  std::cerr << kind << ": operation " << created.id << " matched " << created.matched
            << " dead letters\n";
  if (args.has("no-wait")) {
    if (format == OutputFormat::kJson) {
      std::cout << json{{"operation_id", created.id}, {"matched", created.matched}}.dump(2) << "\n";
    }
    return 0;
  }
  return follow(connection, created.id, format);
}

int operation(pqxx::connection& connection, const CommandArgs& args, OutputFormat format) {
  if (args.positional.size() == 1) {
    pqxx::read_transaction tx(connection);
    const auto operations = db::list_operations(tx, 20);
    if (format == OutputFormat::kJson) {
      std::cout << operations.dump(2) << "\n";
    } else {
      print_table(operations["operations"].get<std::vector<json>>(), {{"ID", "id"},
                                                                      {"KIND", "kind"},
                                                                      {"STATE", "state"},
                                                                      {"MATCHED", "matched"},
                                                                      {"DONE", "done"},
                                                                      {"FAILED", "failed"},
                                                                      {"BY", "requested_by"},
                                                                      {"STARTED", "started_at"}});
    }
    return 0;
  }
  const std::string& id = args.positional[1];
  {
    pqxx::read_transaction tx(connection);
    auto found = db::find_operation(tx, id);
    if (!found) {
      std::cerr << "no operation " << id << "\n";
      return 1;
    }
    if (!args.has("wait")) {
      if (format == OutputFormat::kJson) {
        std::cout << found->dump(2) << "\n";
      } else {
        print_record(*found);
      }
      return 0;
    }
  }
  return follow(connection, id, format);
}

}  // namespace

int run_dlq(const Config& config, const std::vector<std::string>& words) {
  std::set<std::string> valued{"output",  "limit",   "cursor", "max-attempts",
                               "payload", "comment", "as"};
  for (const auto& name : kFilterOptions) valued.insert(name);
  const auto args = CommandArgs::parse(words, {"no-wait", "wait"}, valued);
  if (args.positional.empty()) {
    throw UsageError("dlq list|summary|show ID|requeue ID...|discard ID...|operation [ID]");
  }
  const std::string& action = args.positional[0];
  const auto format = output_format(args.get("output"));
  auto connection = db::connect(config.database_url);
  if (action == "list") return list(*connection, args, format);
  if (action == "summary") return summary(*connection, format);
  if (action == "operation" || action == "operations") return operation(*connection, args, format);
  if (action == "show") {
    if (args.positional.size() != 2) throw UsageError("dlq show ID");
    return show(*connection, args.positional[1], format);
  }
  if (action == "requeue" || action == "discard") {
    const std::vector<std::string> ids(args.positional.begin() + 1, args.positional.end());
    if (ids.size() == 1 && filter_params(args).empty()) {
      return act_on_one(*connection, config, action, ids[0], args, format);
    }
    if (args.has("payload")) throw UsageError("--payload edits one dead letter at a time");
    return bulk(*connection, action, ids, args, format);
  }
  throw UsageError("dlq list|summary|show ID|requeue ID...|discard ID...|operation [ID]");
}

}  // namespace warren::ctl

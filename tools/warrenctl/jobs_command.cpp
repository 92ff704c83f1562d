// `warrenctl jobs get|list|attempts|cancel`: the job routes of API.md, read straight from
// Postgres with the same queries the producer uses (db/job_store.h), so both show the same thing.
#include <iostream>

#include "shared/db/connection_pool.h"
#include "shared/db/job_store.h"
#include "tools/warrenctl/commands.h"
#include "tools/warrenctl/output.h"

namespace warren::ctl {
namespace {

const std::vector<Column> kJobColumns{{"ID", "id"},
                                      {"TYPE", "type"},
                                      {"QUEUE", "queue"},
                                      {"STATUS", "status"},
                                      {"ATTEMPTS", "attempts"},
                                      {"CREATED", "created_at"},
                                      {"LAST ERROR", "last_error/type"}};
const std::vector<Column> kAttemptColumns{
    {"ATTEMPT", "attempt"},         {"OUTCOME", "outcome"}, {"STARTED", "started_at"},
    {"DURATION MS", "duration_ms"}, {"WORKER", "worker"},   {"ERROR", "error/type"},
    {"MESSAGE", "error/message"}};

void print(const nlohmann::json& value, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    std::cout << value.dump(2) << "\n";
  } else {
    print_record(value);
  }
}

int list(pqxx::connection& connection, const CommandArgs& args, OutputFormat format) {
  std::vector<std::pair<std::string, std::string>> params;
  for (const char* name :
       {"status", "type", "queue", "created-after", "created-before", "limit", "cursor"}) {
    if (auto value = args.get(name)) {
      std::string key = name;
      std::replace(key.begin(), key.end(), '-', '_');
      params.emplace_back(key, *value);
    }
  }
  if (args.has("metadata")) {
    for (const auto& pair : args.options.at("metadata")) {
      auto eq = pair.find('=');
      if (eq == std::string::npos) throw UsageError("--metadata takes KEY=VALUE");
      params.emplace_back("metadata." + pair.substr(0, eq), pair.substr(eq + 1));
    }
  }
  db::JobFilter filter;
  try {
    filter = db::parse_job_filter(params);
  } catch (const ProblemError& error) {
    throw UsageError(error.problem().detail);
  }
  pqxx::read_transaction tx(connection);
  const auto page = db::list_jobs(tx, filter);
  if (format == OutputFormat::kJson) {
    std::cout << page.dump(2) << "\n";
    return 0;
  }
  print_table(page["jobs"].get<std::vector<nlohmann::json>>(), kJobColumns);
  if (!page["next_cursor"].is_null()) {
    std::cout << "more: --cursor " << page["next_cursor"].get<std::string>() << "\n";
  }
  return 0;
}

}  // namespace

int run_jobs(const Config& config, const std::vector<std::string>& words) {
  const auto args = CommandArgs::parse(words, {},
                                       {"output", "status", "type", "queue", "metadata",
                                        "created-after", "created-before", "limit", "cursor"});
  if (args.positional.empty()) throw UsageError("jobs get|list|attempts|cancel ...");
  const std::string& action = args.positional[0];
  const auto format = output_format(args.get("output"));
  auto connection = db::connect(config.database_url);
  if (action == "list") return list(*connection, args, format);

  if (args.positional.size() != 2) throw UsageError("jobs " + action + " ID");
  const std::string& id = args.positional[1];
  if (action == "get") {
    pqxx::read_transaction tx(*connection);
    auto job = db::find_job(tx, id);
    if (!job) {
      std::cerr << "no job " << id << "\n";
      return 1;
    }
    print(*job, format);
    return 0;
  }
  if (action == "attempts") {
    pqxx::read_transaction tx(*connection);
    auto attempts = db::find_attempts(tx, id);
    if (!attempts) {
      std::cerr << "no job " << id << "\n";
      return 1;
    }
    if (format == OutputFormat::kJson) {
      std::cout << attempts->dump(2) << "\n";
    } else {
      print_table((*attempts)["attempts"].get<std::vector<nlohmann::json>>(), kAttemptColumns);
    }
    return 0;
  }
  if (action == "cancel") {
    pqxx::work tx(*connection);
    auto outcome = db::cancel_job(tx, id);
    tx.commit();
    switch (outcome.kind) {
      case db::CancelKind::kNotFound:
        std::cerr << "no job " << id << "\n";
        return 1;
      case db::CancelKind::kAlreadyFinished:
        std::cerr << "job " << id << " is already " << (*outcome.job)["status"].get<std::string>()
                  << "\n";
        return 1;
      case db::CancelKind::kCancelRequested:
        std::cerr << "job " << id << " is running; its handler has been asked to stop\n";
        break;
      case db::CancelKind::kCancelled:
        break;
    }
    print(*outcome.job, format);
    return 0;
  }
  throw UsageError("jobs get|list|attempts|cancel ...");
}

}  // namespace warren::ctl

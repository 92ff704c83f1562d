// `warrenctl submit`: submits jobs without HTTP, straight into Postgres (the job row and its
// outbox entry, as the producer writes them); a running producer's outbox relay publishes them.
// The same validator as POST /v1/jobs decides what is accepted.
#include <fstream>
#include <iostream>
#include <sstream>

#include "shared/db/connection_pool.h"
#include "shared/db/job_store.h"
#include "shared/strict_json.h"
#include "tools/warrenctl/commands.h"

namespace warren::ctl {
namespace {

constexpr std::size_t kJobsPerCommit = 1000;

// Validates every job before writing any: a file with one bad line submits nothing.
std::vector<db::NewJob> validate_all(const std::vector<nlohmann::json>& bodies,
                                     const std::vector<std::string>& where, const Config& config) {
  std::vector<db::NewJob> jobs;
  bool bad = false;
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    auto validation = validate_job_request(bodies[i], config);
    for (const auto& e : validation.bad_request) {
      std::cerr << where[i] << ": " << e.field << " " << e.message << "\n";
    }
    for (const auto& e : validation.unprocessable) {
      std::cerr << where[i] << ": " << e.field << " " << e.message << "\n";
    }
    if (!validation.job) {
      bad = true;
      continue;
    }
    jobs.push_back(db::make_new_job(std::move(*validation.job), ""));
  }
  if (bad) throw UsageError("nothing was submitted");
  return jobs;
}

int write_jobs(const Config& config, const std::vector<db::NewJob>& jobs) {
  auto connection = db::connect(config.database_url);
  int exit_code = 0;
  for (std::size_t start = 0; start < jobs.size(); start += kJobsPerCommit) {
    std::vector<db::NewJob> chunk(
        jobs.begin() + static_cast<std::ptrdiff_t>(start),
        jobs.begin() + static_cast<std::ptrdiff_t>(std::min(jobs.size(), start + kJobsPerCommit)));
    pqxx::work tx(*connection);
    const auto outcomes = db::insert_jobs(tx, chunk);
    tx.commit();
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      switch (outcomes[i].kind) {
        case db::InsertKind::kCreated:
          std::cout << outcomes[i].id << "\n";
          break;
        case db::InsertKind::kReplayed:
          std::cout << outcomes[i].id << "\n";
          std::cerr << "job " << outcomes[i].id << " already exists for idempotency key "
                    << *chunk[i].request.idempotency_key << "\n";
          break;
        case db::InsertKind::kConflict:
        case db::InsertKind::kNotWritten:
          std::cerr << "idempotency key " << *chunk[i].request.idempotency_key
                    << " was already used with a different request\n";
          exit_code = 1;
          break;
      }
    }
  }
  return exit_code;
}

}  // namespace

int run_submit(const Config& config, const std::vector<std::string>& words) {
  const auto args = CommandArgs::parse(
      words, {}, {"payload", "queue", "max-attempts", "delay-ms", "idempotency-key", "from"});
  std::vector<nlohmann::json> bodies;
  std::vector<std::string> where;
  if (auto from = args.get("from")) {
    if (!args.positional.empty()) throw UsageError("give TYPE or --from FILE, not both");
    std::ifstream file(*from);
    if (!file) throw UsageError("cannot read " + *from);
    std::string line;
    for (int number = 1; std::getline(file, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      where.push_back(*from + ":" + std::to_string(number));
      bodies.push_back(parse_or_usage(line, where.back()));
    }
  } else {
    if (args.positional.size() != 1) throw UsageError("submit TYPE [--payload JSON|@file] ...");
    nlohmann::json body = {
        {"type", args.positional[0]},
        {"payload",
         parse_or_usage(read_inline_or_file(args.get("payload").value_or("{}")), "--payload")}};
    if (auto queue = args.get("queue")) body["queue"] = *queue;
    if (args.has("max-attempts")) body["max_attempts"] = args.get_int("max-attempts", 0, 1, 100);
    if (args.has("delay-ms")) body["delay_ms"] = args.get_int("delay-ms", 0, 0, 2147483647);
    if (auto key = args.get("idempotency-key")) body["idempotency_key"] = *key;
    bodies.push_back(body);
    where.push_back("job");
  }
  return write_jobs(config, validate_all(bodies, where, config));
}

}  // namespace warren::ctl

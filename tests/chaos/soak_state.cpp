// See soak_state.h.
#include "chaos/soak_state.h"

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <stdexcept>

#include "shared/topology.h"

namespace warren::chaos {

SoakStateReader::SoakStateReader(std::string database_url, std::string management_url,
                                 std::string prefix, std::vector<std::string> queues,
                                 std::string ledger_dir)
    : database_url_(std::move(database_url)),
      management_url_(std::move(management_url)),
      prefix_(std::move(prefix)),
      queues_(std::move(queues)),
      ledger_dir_(std::move(ledger_dir)) {}

// Messages in each queue of the soak's topology, from the management API: its `messages` counts
// every state (ready, unacknowledged, and dead-lettered but not yet confirmed by the next
// queue: "messages_dlx"), which a passive declare does not. The chaos soak found messages
// stuck in that last state, invisible to a passive declare.
std::map<std::string, std::int64_t> SoakStateReader::queue_messages() const {
  // management_url_ is http://user:password@host:port (scripts/lib/stack.sh).
  const auto scheme_end = management_url_.find("://") + 3;
  const auto at = management_url_.find('@', scheme_end);
  const auto credentials = management_url_.substr(scheme_end, at - scheme_end);
  const auto colon = credentials.find(':');
  httplib::Client client("http://" + management_url_.substr(at + 1));
  client.set_basic_auth(credentials.substr(0, colon).c_str(),
                        credentials.substr(colon + 1).c_str());
  client.set_read_timeout(10);
  auto response = client.Get("/api/queues/%2F?columns=name,messages");
  if (!response || response->status != 200) {
    throw std::runtime_error("the management API did not answer /api/queues");
  }
  std::map<std::string, std::int64_t> listed;
  for (const auto& queue : nlohmann::json::parse(response->body)) {
    listed[queue.value("name", "")] = queue.value("messages", std::int64_t{0});
  }
  std::map<std::string, std::int64_t> messages;
  for (const auto& queue : build_topology(prefix_, queues_, 20).queues) {
    messages[queue.name] = listed[queue.name];  // a queue not declared yet holds nothing
  }
  return messages;
}

SoakProgress SoakStateReader::progress() const {
  pqxx::connection connection(database_url_);
  pqxx::nontransaction tx(connection);
  auto row = tx.exec1(
      "SELECT (SELECT count(*) FROM jobs),"
      " (SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')),"
      " (SELECT count(*) FROM outbox),"
      " (SELECT count(*) FROM dead_letters WHERE reason = 'poison')");
  SoakProgress progress{row[0].as<std::int64_t>(), row[1].as<std::int64_t>(),
                        row[2].as<std::int64_t>(), row[3].as<std::int64_t>(), 0};
  for (const auto& [queue, messages] : queue_messages()) progress.queued_messages += messages;
  return progress;
}

namespace {

void read_jobs(pqxx::transaction_base& tx, SoakState& state) {
  for (const auto& row :
       tx.exec("SELECT j.id, j.status, j.attempts, j.max_attempts, coalesce(j.idempotency_key, ''),"
               " coalesce((SELECT min(a.started_at) < j.scheduled_for FROM job_attempts a"
               "           WHERE a.job_id = j.id), false)"
               " FROM jobs j")) {
    RecordedJob job;
    job.id = row[0].as<std::string>();
    job.status = row[1].as<std::string>();
    job.attempts = row[2].as<int>();
    job.max_attempts = row[3].as<int>();
    job.idempotency_key = row[4].as<std::string>();
    job.started_before_due = row[5].as<bool>();
    state.jobs.emplace(job.id, std::move(job));
  }
  for (const auto& row : tx.exec("SELECT job_id, attempt, coalesce(outcome, '') FROM job_attempts"
                                 " ORDER BY job_id, attempt")) {
    auto job = state.jobs.find(row[0].as<std::string>());
    if (job == state.jobs.end()) continue;  // impossible: the foreign key
    job->second.attempt_rows.push_back({row[1].as<int>(), row[2].as<std::string>()});
  }
}

void read_dead_letters(pqxx::transaction_base& tx, SoakState& state) {
  for (const auto& row : tx.exec("SELECT coalesce(job_id::text, ''), reason, state,"
                                 " coalesce(encode(raw_body, 'escape'), '') FROM dead_letters")) {
    state.dead_letters.push_back({row[0].as<std::string>(), row[1].as<std::string>(),
                                  row[2].as<std::string>(), row[3].as<std::string>()});
  }
}

void read_ledger(const std::string& dir, SoakState& state) {
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(file.path());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      LedgerLine entry;
      fields >> entry.job_id >> entry.attempt >> entry.result;
      state.ledger.push_back(std::move(entry));
    }
  }
}

}  // namespace

SoakState SoakStateReader::read() const {
  SoakState state;
  pqxx::connection connection(database_url_);
  pqxx::read_transaction tx(connection);
  read_jobs(tx, state);
  read_dead_letters(tx, state);
  state.outbox_rows = tx.exec1("SELECT count(*) FROM outbox")[0].as<std::int64_t>();
  read_ledger(ledger_dir_, state);
  state.queue_messages = queue_messages();
  return state;
}

}  // namespace warren::chaos

// See outbox_relay.h.
#include "producer/outbox_relay.h"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "shared/amqp/amqp_connection.h"
#include "shared/amqp/amqp_error.h"
#include "shared/config.h"
#include "shared/db/connection_pool.h"
#include "shared/db/sql_array.h"
#include "shared/job_message.h"
#include "shared/logging.h"
#include "shared/topology.h"

namespace warren {
namespace {

constexpr auto kConfirmTimeout = std::chrono::seconds(10);
constexpr auto kMinReconnectDelay = std::chrono::milliseconds(100);
constexpr auto kMaxReconnectDelay = std::chrono::milliseconds(5000);
// A row the broker refused (returned: no queue bound; nacked: queue full) is retried after this,
// so one unroutable job does not spin the relay.
constexpr const char* kRefusedRetryInterval = "5 seconds";

Backoff backoff_of(const pqxx::field& field, const Backoff& fallback) {
  if (field.is_null()) return fallback;
  auto j = nlohmann::json::parse(field.c_str());
  return Backoff{j.value("initial_ms", fallback.initial_ms), j.value("factor", fallback.factor),
                 j.value("max_ms", fallback.max_ms)};
}

}  // namespace

OutboxRelay::OutboxRelay(const Config& config, ProducerMetrics& metrics)
    : config_(config), metrics_(metrics) {}

OutboxRelay::~OutboxRelay() {
  stop();
}

void OutboxRelay::start() {
  thread_ = std::thread([this] { run(); });
}

void OutboxRelay::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxRelay::notify() {
  {
    std::lock_guard lock(mutex_);
    notified_ = true;
  }
  wake_.notify_one();
}

bool OutboxRelay::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, timeout, [&] { return notified_ || stopping_; });
  notified_ = false;
  return !stopping_;
}

void OutboxRelay::connect_broker(std::optional<amqp::AmqpConnection>& broker) {
  broker.emplace(amqp::AmqpConnection::open(config_.amqp_url, "warren-producer outbox relay"));
  // Declaring on every (re)connect costs a few milliseconds and repairs a broker that lost its
  // definitions (a fresh node): the relay never publishes into a topology that is not there.
  declare_topology(*broker, build_topology(config_));
  broker->enable_confirms();
  broker_connected_ = true;
  log::info("outbox relay connected to the broker", {{"amqp_url", redact_url(config_.amqp_url)}});
}

void OutboxRelay::run() {
  std::unique_ptr<pqxx::connection> database;
  std::optional<amqp::AmqpConnection> broker;
  auto retry_delay = kMinReconnectDelay;
  bool more = true;  // start with a pass: there may be rows from before a restart
  // The broker error last logged in this outage. Logging only the loss of a connection left a
  // relay that never connected (a wrong CA or password, a broker down at start) retrying
  // silently forever; now each outage logs its first error, and any different one after it.
  std::string reported_error;
  while (true) {
    if (!more && !wait(config_.outbox_poll_interval)) return;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    try {
      if (!broker || !broker->is_open()) connect_broker(broker);
      // rabbitmq-c answers heartbeats only inside its own calls: touching the connection on
      // every pass keeps an idle relay connected and notices a dead broker within a poll.
      broker->poll();
      if (!database || !database->is_open()) database = db::connect(config_.database_url);
      more = relay_batch(*database, *broker) >= static_cast<std::size_t>(config_.outbox_batch_size);
      retry_delay = kMinReconnectDelay;
      reported_error.clear();
    } catch (const amqp::AmqpError& error) {
      const bool was_connected = broker_connected_.exchange(false);
      if (was_connected || reported_error != error.what()) {
        log::warn(was_connected
                      ? "outbox relay lost the broker; jobs stay in the outbox until it is back"
                      : "outbox relay cannot connect to the broker; jobs stay in the outbox until "
                        "it can",
                  {{"error", error.what()}});
        reported_error = error.what();
      }
      metrics_.outbox_publish_failures.with({"broker_down"}).inc();
      broker.reset();
      more = false;
      if (!wait(retry_delay)) return;
      retry_delay = std::min(retry_delay * 2, kMaxReconnectDelay);
    } catch (const std::exception& error) {
      // Database trouble (or a bug): the transaction rolled back, the rows stay in the outbox.
      log::warn("outbox relay pass failed; retrying", {{"error", error.what()}});
      database.reset();
      more = false;
      if (!wait(retry_delay)) return;
      retry_delay = std::min(retry_delay * 2, kMaxReconnectDelay);
    }
  }
}

std::size_t OutboxRelay::relay_batch(pqxx::connection& database, amqp::AmqpConnection& broker) {
  pqxx::work tx(database);
  auto rows = tx.exec_params(R"(
    SELECT o.id, j.id::text, j.type, j.queue, j.payload::text, j.max_attempts, j.timeout_ms,
           j.backoff::text, warren_ts(j.created_at), j.attempts, j.traceparent, j.status,
           greatest(0, ceil(extract(epoch FROM o.deliver_at - now()) * 1000))::bigint
    FROM outbox o JOIN jobs j ON j.id = o.job_id
    WHERE o.available_at <= now()
    ORDER BY o.available_at
    LIMIT $1
    FOR UPDATE OF o SKIP LOCKED)",
                             config_.outbox_batch_size);
  if (rows.empty()) return 0;

  std::vector<int64_t> done;     // confirmed, or no longer needed: delete
  std::vector<int64_t> refused;  // returned or nacked: retry later
  std::vector<std::pair<std::uint64_t, int64_t>> published;  // sequence -> outbox id
  for (const auto& row : rows) {
    const int64_t outbox_id = row[0].as<int64_t>();
    const std::string status = row[11].as<std::string>();
    if (status == "cancelled" || status == "succeeded" || status == "failed") {
      done.push_back(outbox_id);  // nothing to run any more
      continue;
    }
    JobMessage job;
    job.id = row[1].as<std::string>();
    job.type = row[2].as<std::string>();
    job.queue = row[3].as<std::string>();
    job.payload_json = row[4].as<std::string>();
    job.max_attempts = row[5].as<int>();
    if (!row[6].is_null()) job.timeout_ms = row[6].as<int64_t>();
    job.backoff = backoff_of(row[7], config_.default_backoff);
    job.created_at = row[8].as<std::string>();
    job.attempt = row[9].as<int>() + 1;
    job.traceparent = row[10].as<std::string>("");
    const auto delay = std::chrono::milliseconds(row[12].is_null() ? 0 : row[12].as<int64_t>());
    published.emplace_back(broker.publish(make_job_message(job, config_.amqp_prefix, delay)),
                           outbox_id);
  }

  if (!published.empty()) {
    const auto confirms = broker.wait_for_confirms(kConfirmTimeout);
    for (const auto& [sequence, outbox_id] : published) {
      const auto* outcome = confirms.find(sequence);
      const auto status = outcome ? outcome->status : amqp::ConfirmStatus::kTimedOut;
      if (status == amqp::ConfirmStatus::kAcked) {
        done.push_back(outbox_id);
        continue;
      }
      refused.push_back(outbox_id);
      metrics_.outbox_publish_failures.with({amqp::to_string(status)}).inc();
      log::error("broker did not take a job message; it stays in the outbox",
                 {{"outbox_id", outbox_id},
                  {"outcome", amqp::to_string(status)},
                  {"reply", outcome ? outcome->reply_text : ""}});
    }
    metrics_.outbox_batch_messages.with().observe(static_cast<double>(published.size()));
  }

  if (!done.empty()) {
    tx.exec_params("DELETE FROM outbox WHERE id = ANY($1::bigint[])", db::sql_array(done));
  }
  if (!refused.empty()) {
    tx.exec_params(std::string("UPDATE outbox SET available_at = now() + interval '") +
                       kRefusedRetryInterval + "' WHERE id = ANY($1::bigint[])",
                   db::sql_array(refused));
  }
  tx.commit();
  metrics_.outbox_published.with().inc(published.size() - refused.size());
  return rows.size();
}

}  // namespace warren

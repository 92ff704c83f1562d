// See dead_letter_recorder.h.
#include "consumer/dead_letter_recorder.h"

#include <algorithm>

#include "consumer/consumer_metrics.h"
#include "shared/amqp/amqp_connection.h"
#include "shared/amqp/amqp_error.h"
#include "shared/config.h"
#include "shared/db/connection_pool.h"
#include "shared/logging.h"
#include "shared/time_format.h"
#include "shared/topology.h"

namespace warren::consumer {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Unacked messages the broker may hand us at once, and rows per transaction: large enough that
// a burst of thousands of dead letters is a few dozen commits, small enough that one
// transaction stays short.
constexpr std::uint16_t kPrefetch = 500;
constexpr std::size_t kMaxBatch = 500;
// How long to wait for the first message of a batch; also the longest the thread is deaf to
// stop() while idle, and well under half the heartbeat interval.
constexpr milliseconds kIdleWait{250};
constexpr milliseconds kMinRetryDelay{250};
constexpr milliseconds kMaxRetryDelay{10000};
constexpr int kHeartbeatSeconds = 30;

}  // namespace

DeadLetterRecorder::DeadLetterRecorder(const Config& config, ConsumerMetrics& metrics)
    : config_(config), metrics_(metrics) {}

DeadLetterRecorder::~DeadLetterRecorder() {
  stop();
}

void DeadLetterRecorder::start() {
  thread_ = std::thread([this] { run(); });
}

void DeadLetterRecorder::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool DeadLetterRecorder::stopping() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

bool DeadLetterRecorder::pause(milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, delay, [&] { return stopping_; });
}

void DeadLetterRecorder::run() {
  const std::string name = "warren-dead-letter-recorder " + config_.worker_id;
  milliseconds retry_delay = kMinRetryDelay;
  while (!stopping()) {
    try {
      auto broker = amqp::AmqpConnection::open(config_.amqp_url, name, kHeartbeatSeconds);
      retry_delay = kMinRetryDelay;
      serve(broker);
      broker.close();
    } catch (const amqp::AmqpError& error) {
      metrics_.dead_letter_errors.with({"broker"}).inc();
      log::warn("dead-letter recorder lost the broker; its unacked messages go back to the queue",
                {{"error", error.what()}, {"retry_in_ms", retry_delay.count()}});
      if (!pause(retry_delay)) return;
      retry_delay = std::min(retry_delay * 2, kMaxRetryDelay);
    }
  }
}

void DeadLetterRecorder::serve(amqp::AmqpConnection& broker) {
  const std::string queue = TopologyNames{config_.amqp_prefix}.dead_letters_queue();
  broker.basic_qos(kPrefetch);
  broker.basic_consume(queue);
  log::info("dead-letter recorder subscribed (active while no other replica's recorder is)",
            {{"queue", queue}});
  while (!stopping()) {
    if (!broker.take_cancelled_consumers().empty()) {
      throw amqp::AmqpError("the broker cancelled the dead-letter consumer (queue deleted?)", true);
    }
    auto batch = collect(broker);
    if (batch.empty()) continue;
    if (!record(batch, broker)) return;
    broker.ack(batch.back().delivery_tag, true);
  }
}

std::vector<amqp::Delivery> DeadLetterRecorder::collect(amqp::AmqpConnection& broker) {
  std::vector<amqp::Delivery> batch;
  auto first = broker.consume_one(kIdleWait);
  if (!first) return batch;
  batch.push_back(std::move(*first));
  // Whatever else has already arrived joins the batch; nothing waits for more.
  while (batch.size() < kMaxBatch) {
    auto next = broker.consume_one(milliseconds(0));
    if (!next) break;
    batch.push_back(std::move(*next));
  }
  return batch;
}

bool DeadLetterRecorder::record(const std::vector<amqp::Delivery>& batch,
                                amqp::AmqpConnection& broker) {
  const auto now = std::chrono::system_clock::now();
  std::vector<DeadLetterRow> rows;
  rows.reserve(batch.size());
  for (const auto& delivery : batch) {
    rows.push_back(decode_dead_letter(delivery, config_.amqp_prefix, config_.default_backoff, now));
  }
  milliseconds retry_delay = kMinRetryDelay;
  bool outage_reported = false;
  for (;;) {
    switch (write(rows)) {
      case WriteStatus::kWritten:
        if (outage_reported) log::info("dead-letter recorder: database available again", {});
        return true;
      case WriteStatus::kRefused:
        if (write_one_by_one(rows, batch)) return true;
        break;
      case WriteStatus::kFailed:
        break;
    }
    if (!outage_reported) {
      log::warn("dead-letter recorder cannot reach the database; holding its batch",
                {{"messages", batch.size()}});
      outage_reported = true;
    }
    // Wait in heartbeat-sized steps: an outage may outlast the broker's patience.
    const auto until = Clock::now() + retry_delay;
    while (Clock::now() < until) {
      if (!pause(std::min<milliseconds>(kIdleWait, retry_delay))) return false;
      broker.poll();
    }
    retry_delay = std::min(retry_delay * 2, kMaxRetryDelay);
  }
}

DeadLetterRecorder::WriteStatus DeadLetterRecorder::write(std::vector<DeadLetterRow>& rows) {
  try {
    if (!database_ || !database_->is_open()) database_ = db::connect(config_.database_url);
    pqxx::work tx(*database_);
    const auto written =
        write_dead_letters(tx, rows, format_rfc3339_ms(std::chrono::system_clock::now()));
    tx.commit();
    count(rows, written);
    return WriteStatus::kWritten;
  } catch (const pqxx::transaction_rollback& error) {
    log::warn("dead-letter batch rolled back, retrying", {{"error", error.what()}});
    return WriteStatus::kFailed;
  } catch (const pqxx::broken_connection& error) {
    metrics_.dead_letter_errors.with({"database"}).inc();
    database_.reset();
    return WriteStatus::kFailed;
  } catch (const pqxx::sql_error& error) {
    if (database_ && !database_->is_open()) {
      database_.reset();
      return WriteStatus::kFailed;
    }
    log::warn("dead-letter batch refused by the database; writing its messages one by one",
              {{"error", error.what()}, {"messages", rows.size()}});
    return WriteStatus::kRefused;
  } catch (const std::exception& error) {
    metrics_.dead_letter_errors.with({"database"}).inc();
    log::warn("dead-letter batch failed", {{"error", error.what()}});
    database_.reset();
    return WriteStatus::kFailed;
  }
}

// True when every row is now recorded (as it was, or in its minimal form).
bool DeadLetterRecorder::write_one_by_one(std::vector<DeadLetterRow>& rows,
                                          const std::vector<amqp::Delivery>& batch) {
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::vector<DeadLetterRow> one{rows[i]};
    auto status = write(one);
    if (status == WriteStatus::kRefused) {
      metrics_.dead_letter_errors.with({"refused"}).inc();
      log::error("database refused a dead letter; recording it without headers or payload",
                 {{"job_id", rows[i].job_id}, {"message_key", rows[i].message_key}});
      one = {minimal_dead_letter(rows[i], batch[i].body, "see the consumer log")};
      status = write(one);
    }
    if (status != WriteStatus::kWritten) return false;
  }
  return true;
}

void DeadLetterRecorder::count(const std::vector<DeadLetterRow>& rows,
                               const DeadLetterWrite& written) {
  int recorded = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (written.recorded[i]) {
      ++recorded;
      metrics_.dead_letters_recorded.with({rows[i].reason}).inc();
    } else {
      metrics_.dead_letter_duplicates.with().inc();
    }
  }
  metrics_.dead_letter_jobs_failed.with().inc(static_cast<double>(written.jobs_failed));
  if (recorded > 0 || written.jobs_failed > 0) {
    log::info("dead letters recorded",
              {{"recorded", recorded},
               {"already_recorded", static_cast<int>(rows.size()) - recorded},
               {"jobs_failed", written.jobs_failed}});
  }
}

}  // namespace warren::consumer

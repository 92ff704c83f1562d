// The outbox relay: publishes every committed job to RabbitMQ, with publisher confirms, and
// deletes its outbox row only once the broker confirmed it (MESSAGING.md guarantee 1). This is
// what lets a submission succeed while the broker is down: the job waits in the outbox and is
// published when the broker returns.
//
// One relay thread per producer; it owns its AMQP connection (rabbitmq-c is not thread-safe) and
// a database connection. Rows are claimed with FOR UPDATE SKIP LOCKED, so the relays of several
// producer replicas share the outbox without publishing a row twice at the same time. (A crash
// between the broker's confirm and the commit of the delete can publish a row again: consumers
// drop such duplicates at claim time.)
//
// It is woken by notify() after every submit commit (low latency for the common case) and
// otherwise polls (rows of other replicas, jobs scheduled beyond the broker's delay horizon).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "producer/producer_metrics.h"
#include "shared/retry_policy.h"

namespace warren {

namespace amqp {
class AmqpConnection;
}

struct Config;

class OutboxRelay {
 public:
  OutboxRelay(const Config& config, ProducerMetrics& metrics);
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  void start();
  void stop();

  // New rows were committed: publish now rather than at the next poll.
  void notify();

  // True while the relay holds an open, working broker connection (for /readyz).
  bool broker_connected() const { return broker_connected_.load(); }

 private:
  void run();
  // Publishes one batch of due rows; returns how many rows it took off the outbox.
  std::size_t relay_batch(pqxx::connection& database, amqp::AmqpConnection& broker);
  void connect_broker(std::optional<amqp::AmqpConnection>& broker);
  // Sleeps until notified, stopped or `timeout`; returns false when stopping.
  bool wait(std::chrono::milliseconds timeout);

  const Config& config_;
  ProducerMetrics& metrics_;
  std::atomic<bool> broker_connected_{false};

  std::mutex mutex_;
  std::condition_variable wake_;
  bool notified_ = false;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace warren

// See broker_session.h.
#include "consumer/broker_session.h"

#include <algorithm>
#include <random>

#include "consumer/consumer_metrics.h"
#include "shared/amqp/amqp_error.h"
#include "shared/config.h"
#include "shared/logging.h"
#include "shared/topology.h"

namespace warren::consumer {
namespace {

constexpr auto kMinReconnectDelay = std::chrono::milliseconds(250);
constexpr auto kMaxReconnectDelay = std::chrono::milliseconds(10000);
// AMQP heartbeat negotiated with the broker: a consumer that stops answering (paused, partitioned)
// loses its connection, and with it its unacked messages, within about two intervals.
constexpr int kAmqpHeartbeatSeconds = 10;
// rabbitmq-c answers heartbeats only inside its calls; this timer makes one at least this often.
constexpr auto kPollInterval = std::chrono::milliseconds(1000);

std::chrono::milliseconds jittered(std::chrono::milliseconds delay) {
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<std::int64_t> spread(delay.count() / 2, delay.count());
  return std::chrono::milliseconds(spread(rng));
}

}  // namespace

// What a connect on the thread pool hands back to the loop.
struct BrokerSession::ConnectAttempt {
  std::unique_ptr<amqp::AmqpConnection> connection;
  std::string error;
};

BrokerSession::BrokerSession(EventLoop& loop, const Config& config, ConsumerMetrics& metrics,
                             Callbacks callbacks)
    : loop_(loop),
      config_(config),
      metrics_(metrics),
      callbacks_(std::move(callbacks)),
      heartbeat_timer_(loop, [this] { read_available(); }),
      reconnect_timer_(loop, [this] { connect(); }),
      before_wait_(loop, [this] { flush_acks(); }),
      reconnect_delay_(kMinReconnectDelay) {}

BrokerSession::~BrokerSession() {
  *alive_ = false;
  socket_watcher_.reset();  // before the socket it watches is closed
  if (connection_) connection_->close();
}

void BrokerSession::start() {
  connect();
}

void BrokerSession::shutdown() {
  shut_down_ = true;
  reconnect_timer_.stop();
  heartbeat_timer_.stop();
  flush_acks();
  socket_watcher_.reset();
  if (connection_) {
    connection_->close();
    connection_.reset();
  }
  for (auto& [sequence, callback] : awaiting_confirm_) callback(false, "consumer shutting down");
  awaiting_confirm_.clear();
}

void BrokerSession::connect() {
  if (connecting_ || connection_ || shut_down_) return;
  connecting_ = true;
  auto attempt = std::make_shared<ConnectAttempt>();
  const std::string url = config_.amqp_url;
  const Topology topology = build_topology(config_);
  const int prefetch = config_.prefetch > 0 ? config_.prefetch : 2 * config_.concurrency;
  const std::string name = "warren-consumer " + config_.worker_id;
  loop_.queue_work(
      [attempt, url, topology, prefetch, name] {
        try {
          auto connection = std::make_unique<amqp::AmqpConnection>(
              amqp::AmqpConnection::open(url, name, kAmqpHeartbeatSeconds));
          // Declaring on every connect repairs a broker that lost its definitions.
          declare_topology(*connection, topology);
          connection->enable_confirms();
          connection->basic_qos(static_cast<std::uint16_t>(std::clamp(prefetch, 1, 65535)));
          attempt->connection = std::move(connection);
        } catch (const std::exception& error) {
          attempt->error = error.what();
        }
      },
      [this, attempt, alive = alive_] {
        if (!*alive) return;
        connecting_ = false;
        if (shut_down_) return;
        if (!attempt->connection) {
          schedule_reconnect(attempt->error);
          return;
        }
        adopt(std::move(attempt->connection));
      });
}

void BrokerSession::adopt(std::unique_ptr<amqp::AmqpConnection> connection) {
  connection_ = std::move(connection);
  ++generation_;
  acks_ = AckTracker{};
  reconnect_delay_ = kMinReconnectDelay;
  if (ever_connected_) metrics_.reconnects.with({"broker"}).inc();
  ever_connected_ = true;
  socket_watcher_ = std::make_unique<SocketWatcher>(loop_, connection_->socket_fd(),
                                                    [this] { read_available(); });
  heartbeat_timer_.start(kPollInterval, kPollInterval);
  log::info("connected to the broker",
            {{"amqp_url", redact_url(config_.amqp_url)}, {"generation", generation_}});
  if (callbacks_.on_connected) callbacks_.on_connected();
  if (want_consuming_) start_consuming();
}

void BrokerSession::schedule_reconnect(const std::string& why) {
  const auto delay = jittered(reconnect_delay_);
  log::warn("broker unavailable, retrying", {{"error", why}, {"retry_in_ms", delay.count()}});
  reconnect_delay_ = std::min(reconnect_delay_ * 2, kMaxReconnectDelay);
  reconnect_timer_.start(delay);
}

// Every call on the connection goes through here: any broker error ends this connection (a
// channel error also cancels our consumers and requeues our deliveries, so carrying on with the
// same connection would only hide that), and the session starts over.
template <typename Call>
void BrokerSession::guarded(const char* what, Call&& call) {
  if (!connection_) return;
  try {
    call(*connection_);
  } catch (const amqp::AmqpError& error) {
    lose(std::string(what) + ": " + error.what());
  }
}

void BrokerSession::lose(const std::string& why) {
  if (!connection_) return;
  const std::uint64_t lost_generation = generation_;
  log::warn("lost the broker connection", {{"error", why}, {"generation", lost_generation}});
  heartbeat_timer_.stop();
  socket_watcher_.reset();
  connection_->close();
  connection_.reset();
  consumer_tags_.clear();
  acks_ = AckTracker{};
  auto unconfirmed = std::move(awaiting_confirm_);
  awaiting_confirm_.clear();
  for (auto& [sequence, callback] : unconfirmed) callback(false, "broker connection lost");
  if (callbacks_.on_lost) callbacks_.on_lost(lost_generation, why);
  schedule_reconnect(why);
}

void BrokerSession::start_consuming() {
  want_consuming_ = true;
  if (!connection_ || !consumer_tags_.empty()) return;
  TopologyNames names{config_.amqp_prefix};
  guarded("basic.consume", [&](amqp::AmqpConnection& c) {
    for (const auto& queue : config_.queues) {
      consumer_tags_.push_back(c.basic_consume(names.work_queue(queue)));
    }
  });
  if (connection_) log::info("consuming", {{"queues", config_.queues}});
}

void BrokerSession::stop_consuming() {
  want_consuming_ = false;
  if (!connection_ || consumer_tags_.empty()) return;
  auto tags = std::move(consumer_tags_);
  consumer_tags_.clear();
  guarded("basic.cancel", [&](amqp::AmqpConnection& c) {
    for (const auto& tag : tags) c.basic_cancel(tag);
  });
  // Deliveries that crossed the cancel on the wire were kept by the connection: hand them over.
  read_available();
}

void BrokerSession::publish(const amqp::OutgoingMessage& message, ConfirmCallback on_confirm) {
  if (!connection_) {
    on_confirm(false, "not connected to the broker");
    return;
  }
  std::uint64_t sequence = 0;
  guarded("basic.publish", [&](amqp::AmqpConnection& c) { sequence = c.publish(message); });
  if (!connection_) {
    on_confirm(false, "broker connection lost while publishing");
    return;
  }
  awaiting_confirm_.emplace(sequence, std::move(on_confirm));
}

void BrokerSession::ack(DeliveryRef ref) {
  if (current(ref)) acks_.finished(ref.tag);
}

void BrokerSession::nack_requeue(DeliveryRef ref) {
  if (!current(ref)) return;
  acks_.settled_otherwise(ref.tag);
  metrics_.acks.with({"nack"}).inc();
  guarded("basic.nack", [&](amqp::AmqpConnection& c) { c.nack(ref.tag, false, true); });
}

void BrokerSession::reject_no_requeue(DeliveryRef ref) {
  if (!current(ref)) return;
  acks_.settled_otherwise(ref.tag);
  metrics_.acks.with({"reject"}).inc();
  guarded("basic.reject", [&](amqp::AmqpConnection& c) { c.reject(ref.tag, false); });
}

void BrokerSession::flush_acks() {
  if (!connection_) return;
  for (const auto& frame : acks_.flush()) {
    metrics_.acks.with({frame.multiple ? "multiple" : "single"}).inc();
    guarded("basic.ack",
            [&](amqp::AmqpConnection& c) { c.ack(frame.delivery_tag, frame.multiple); });
    if (!connection_) return;
  }
}

void BrokerSession::read_available() {
  const std::uint64_t reading = generation_;
  // Deliveries first: consume_one(0) also processes confirms, returns and cancels it meets.
  for (;;) {
    std::optional<amqp::Delivery> delivery;
    guarded("consume", [&](amqp::AmqpConnection& c) { delivery = c.consume_one({}); });
    if (!connection_ || generation_ != reading) return;
    if (!delivery) break;
    acks_.received(delivery->delivery_tag);
    const DeliveryRef ref{generation_, delivery->delivery_tag};
    callbacks_.on_delivery(std::move(*delivery), ref);
    if (!connection_ || generation_ != reading) return;
  }
  guarded("poll", [](amqp::AmqpConnection& c) { c.poll(); });
  if (!connection_) return;
  std::vector<std::string> cancelled;
  guarded("cancels", [&](amqp::AmqpConnection& c) { cancelled = c.take_cancelled_consumers(); });
  if (!cancelled.empty() && want_consuming_) {
    // The broker cancelled us (queue deleted or moved): start over on a fresh connection, which
    // re-declares the topology.
    lose("the broker cancelled our consumer");
    return;
  }
  dispatch_confirms();
}

void BrokerSession::dispatch_confirms() {
  if (!connection_ || awaiting_confirm_.empty()) return;
  amqp::ConfirmBatch batch;
  guarded("confirms", [&](amqp::AmqpConnection& c) { batch = c.take_settled(); });
  for (const auto& outcome : batch.outcomes) {
    auto found = awaiting_confirm_.find(outcome.sequence);
    if (found == awaiting_confirm_.end()) continue;
    auto callback = std::move(found->second);
    awaiting_confirm_.erase(found);
    const bool ok = outcome.status == amqp::ConfirmStatus::kAcked;
    callback(ok, ok ? "" : std::string(amqp::to_string(outcome.status)) + " " + outcome.reply_text);
  }
}

}  // namespace warren::consumer

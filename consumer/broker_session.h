// The consumer's RabbitMQ connection, owned by the event loop (rabbitmq-c is not thread-safe,
// so every call on the connection happens on the loop thread).
//
// It keeps one connection alive: connects off the loop (libuv's thread pool, so a blackholed
// broker never freezes the loop), declares the topology, sets the prefetch, consumes the work
// queues; reads whenever the socket is readable; answers heartbeats from a timer; reconnects
// with capped, jittered backoff after a loss. Each connection has a generation number:
// delivery tags are only meaningful on the connection that issued them, so acks for an older
// generation are dropped (the broker has already requeued those messages).
//
// Acks are gathered during a loop turn and sent before the loop waits (AckTracker: one
// `multiple` frame where order allows). Publishes of follow-up messages (retries, dead letters)
// report their publisher confirm through a callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consumer/ack_tracker.h"
#include "consumer/event_loop.h"
#include "shared/amqp/amqp_connection.h"
#include "shared/amqp/message.h"

namespace warren {
struct Config;
}

namespace warren::consumer {

struct ConsumerMetrics;

// A delivery and the connection it came on.
struct DeliveryRef {
  std::uint64_t generation = 0;
  std::uint64_t tag = 0;
};

class BrokerSession {
 public:
  struct Callbacks {
    std::function<void(amqp::Delivery delivery, DeliveryRef ref)> on_delivery;
    std::function<void()> on_connected;
    // The connection of `generation` is gone: its unsettled deliveries are back in the queue.
    std::function<void(std::uint64_t generation, const std::string& why)> on_lost;
  };
  // ok = the broker confirmed the publish; otherwise `why` says what happened.
  using ConfirmCallback = std::function<void(bool ok, const std::string& why)>;

  BrokerSession(EventLoop& loop, const Config& config, ConsumerMetrics& metrics,
                Callbacks callbacks);
  ~BrokerSession();
  BrokerSession(const BrokerSession&) = delete;
  BrokerSession& operator=(const BrokerSession&) = delete;

  void start();     // begin connecting (and reconnecting after losses)
  void shutdown();  // close the connection politely; no reconnect afterwards

  bool connected() const { return connection_ != nullptr; }
  bool consuming() const { return !consumer_tags_.empty(); }
  std::uint64_t generation() const { return generation_; }

  // Starts / stops the consumers of the work queues (idempotent; no-ops while disconnected).
  void start_consuming();
  void stop_consuming();

  // Fails at once while disconnected: the callback may run before publish() returns.
  void publish(const amqp::OutgoingMessage& message, ConfirmCallback on_confirm);

  // Settlements of a delivery; silently dropped when `ref` belongs to a lost connection.
  void ack(DeliveryRef ref);  // sent before the loop next waits, batched
  void nack_requeue(DeliveryRef ref);
  void reject_no_requeue(DeliveryRef ref);

  // Sends the acks gathered so far (also done automatically before each wait).
  void flush_acks();

 private:
  struct ConnectAttempt;

  void connect();
  void adopt(std::unique_ptr<amqp::AmqpConnection> connection);
  void schedule_reconnect(const std::string& why);
  void read_available();
  void dispatch_confirms();
  void lose(const std::string& why);
  bool current(DeliveryRef ref) const { return connection_ && ref.generation == generation_; }
  template <typename Call>
  void guarded(const char* what, Call&& call);

  EventLoop& loop_;
  const Config& config_;
  ConsumerMetrics& metrics_;
  Callbacks callbacks_;

  std::unique_ptr<amqp::AmqpConnection> connection_;
  std::unique_ptr<SocketWatcher> socket_watcher_;
  std::uint64_t generation_ = 0;
  std::vector<std::string> consumer_tags_;
  AckTracker acks_;
  std::map<std::uint64_t, ConfirmCallback> awaiting_confirm_;  // by publish sequence number
  Timer heartbeat_timer_;
  Timer reconnect_timer_;
  BeforeWait before_wait_;
  std::chrono::milliseconds reconnect_delay_;
  bool connecting_ = false;
  bool shut_down_ = false;
  bool ever_connected_ = false;
  bool want_consuming_ = false;
  // Shared with a connect running on the thread pool, so it can tell whether we still exist.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace warren::consumer

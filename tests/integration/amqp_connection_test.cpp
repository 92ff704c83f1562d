// Integration tests of the AMQP client layer (shared/amqp/amqp_connection.h) against a real
// RabbitMQ 3.10, whose URL comes from WARREN_TEST_AMQP_URL (scripts/test.sh sets it).
//
// Every test uses its own uniquely named exchanges and queues (test-amqp-<kind>-<random>) and
// deletes them afterwards through a fresh connection, so tests can share one broker.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shared/amqp/amqp_connection.h"

namespace warren::amqp {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string random_suffix() {
  static std::mt19937_64 generator{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string suffix;
  std::uint64_t value = generator();
  for (int i = 0; i < 12; ++i, value >>= 4) suffix.push_back(digits[value & 0xf]);
  return suffix;
}

FieldTable warren_queue_arguments(const std::string& dead_letter_exchange) {
  return FieldTable{
      {"x-queue-type", "quorum"},       {"x-dead-letter-exchange", dead_letter_exchange},
      {"x-overflow", "reject-publish"}, {"x-dead-letter-strategy", "at-least-once"},
      {"x-delivery-limit", 20},
  };
}

// The test URL with another password, keeping the scheme, user, host and vhost.
std::string with_password(const std::string& url, const std::string& password) {
  const std::size_t start = url.find("://") + 3;
  const std::size_t at = url.rfind('@');
  if (at == std::string::npos || at < start) {
    return url.substr(0, start) + "guest:" + password + "@" + url.substr(start);
  }
  const std::size_t colon = url.find(':', start);
  const std::string user =
      url.substr(start, (colon != std::string::npos && colon < at ? colon : at) - start);
  return url.substr(0, start) + user + ":" + password + url.substr(at);
}

// A local port nobody listens on: bound then released.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

OutgoingMessage message_to(const std::string& exchange, const std::string& routing_key,
                           const std::string& body) {
  OutgoingMessage message;
  message.exchange = exchange;
  message.routing_key = routing_key;
  message.body = body;
  message.content_type = "application/json";
  message.app_id = "warren";
  return message;
}

class AmqpConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("WARREN_TEST_AMQP_URL");
    if (url == nullptr || *url == '\0') {
      GTEST_SKIP() << "WARREN_TEST_AMQP_URL is not set (the integration harness sets it, e.g. "
                      "amqp://guest:guest@127.0.0.1:5672/%2f)";
    }
    url_ = url;
    connection_.emplace(AmqpConnection::open(url_, "warren-amqp-test"));
  }

  void TearDown() override {
    if (url_.empty() || (queues_.empty() && exchanges_.empty())) return;
    // A fresh connection: the test's own may have been closed on purpose.
    try {
      AmqpConnection cleanup = AmqpConnection::open(url_, "warren-amqp-test-cleanup");
      for (const auto& queue : queues_) cleanup.delete_queue(queue);
      for (const auto& exchange : exchanges_) cleanup.delete_exchange(exchange);
    } catch (const std::exception& error) {
      ADD_FAILURE() << "cleanup failed: " << error.what();
    }
  }

  std::string new_queue_name() {
    queues_.push_back("test-amqp-q-" + random_suffix());
    return queues_.back();
  }
  std::string new_exchange_name() {
    exchanges_.push_back("test-amqp-x-" + random_suffix());
    return exchanges_.back();
  }

  // A quorum queue with Warren's arguments, bound to a fresh topic exchange with routing key
  // "work"; returns {exchange, queue}.
  std::pair<std::string, std::string> work_queue() {
    const std::string exchange = new_exchange_name();
    const std::string dead = new_exchange_name();
    const std::string queue = new_queue_name();
    conn().declare_exchange(exchange, "topic");
    conn().declare_exchange(dead, "topic");
    conn().declare_queue(queue, warren_queue_arguments(dead));
    conn().bind_queue(queue, exchange, "work");
    return {exchange, queue};
  }

  AmqpConnection& conn() { return *connection_; }

  std::string url_;
  std::optional<AmqpConnection> connection_;
  std::vector<std::string> queues_;
  std::vector<std::string> exchanges_;
};

TEST_F(AmqpConnectionTest, DeclaringTwiceIsIdempotent) {
  const std::string exchange = new_exchange_name();
  const std::string source = new_exchange_name();
  const std::string queue = new_queue_name();
  for (int i = 0; i < 2; ++i) {
    conn().declare_exchange(exchange, "topic");
    conn().declare_exchange(source, "topic");
    const QueueCounts counts = conn().declare_queue(queue, warren_queue_arguments(exchange));
    EXPECT_EQ(counts.message_count, 0u);
    EXPECT_EQ(counts.consumer_count, 0u);
    conn().bind_queue(queue, exchange, "work");
    conn().bind_exchange(exchange, source, "#");
  }
  EXPECT_TRUE(conn().check_exchange(exchange));
  EXPECT_TRUE(conn().check_queue(queue));
}

TEST_F(AmqpConnectionTest, QuorumQueueWithWarrenArguments) {
  const std::string dead = new_exchange_name();
  const std::string queue = new_queue_name();
  conn().declare_exchange(dead, "topic");
  conn().declare_queue(queue, warren_queue_arguments(dead));
  ASSERT_TRUE(conn().inspect_queue(queue).has_value());
  EXPECT_EQ(conn().inspect_queue(queue)->message_count, 0u);

  // Proof that the arguments reached the broker: redeclaring without them is refused
  // (406 inequivalent arg ...), and only the channel suffers.
  try {
    conn().declare_queue(queue, FieldTable{});
    FAIL() << "expected a 406";
  } catch (const AmqpError& error) {
    EXPECT_EQ(error.reply_code(), 406) << error.what();
    EXPECT_FALSE(error.connection_lost());
    EXPECT_NE(std::string(error.what()).find("inequivalent arg"), std::string::npos)
        << error.what();
  }
  FieldTable other_limit = warren_queue_arguments(dead);
  other_limit.set("x-delivery-limit", 5);
  try {
    conn().declare_queue(queue, other_limit);
    FAIL() << "expected a 406";
  } catch (const AmqpError& error) {
    EXPECT_EQ(error.reply_code(), 406) << error.what();
  }
  EXPECT_TRUE(conn().is_open());
  EXPECT_TRUE(conn().check_queue(queue));
}

TEST_F(AmqpConnectionTest, FiveHundredPersistentPublishesOneConfirmWait) {
  const auto [exchange, queue] = work_queue();
  conn().enable_confirms();
  for (std::uint64_t i = 1; i <= 500; ++i) {
    OutgoingMessage message = message_to(exchange, "work", "{\"n\":" + std::to_string(i) + "}");
    message.message_id = "job-" + std::to_string(i);
    message.delivery_mode = kPersistent;
    ASSERT_EQ(conn().publish(message), i);
  }
  const ConfirmBatch batch = conn().wait_for_confirms(milliseconds(30000));
  ASSERT_EQ(batch.outcomes.size(), 500u);
  EXPECT_TRUE(batch.all_acked());
  EXPECT_EQ(batch.count(ConfirmStatus::kAcked), 500u);
  EXPECT_EQ(batch.outcomes.front().sequence, 1u);
  EXPECT_EQ(batch.outcomes.back().sequence, 500u);
  EXPECT_EQ(conn().unconfirmed_count(), 0u);
  const auto counts = conn().inspect_queue(queue);
  ASSERT_TRUE(counts.has_value());
  EXPECT_EQ(counts->message_count, 500u);
}

TEST_F(AmqpConnectionTest, ConfirmWaitTimeoutReportsUnsettledAndIgnoresLateAcks) {
  const auto [exchange, queue] = work_queue();
  conn().enable_confirms();
  for (int i = 0; i < 200; ++i) conn().publish(message_to(exchange, "work", "{}"));
  // A quorum queue confirms after a Raft commit: the last ones cannot be here yet.
  const ConfirmBatch rushed = conn().wait_for_confirms(milliseconds(0));
  ASSERT_EQ(rushed.outcomes.size(), 200u);
  EXPECT_GE(rushed.count(ConfirmStatus::kTimedOut), 1u);
  EXPECT_EQ(rushed.count(ConfirmStatus::kAcked) + rushed.count(ConfirmStatus::kTimedOut), 200u);
  EXPECT_EQ(conn().unconfirmed_count(), 0u);

  // The late acks for the timed-out ones must not show up in the next batch.
  EXPECT_EQ(conn().publish(message_to(exchange, "work", "{}")), 201u);
  const ConfirmBatch next = conn().wait_for_confirms(milliseconds(10000));
  ASSERT_EQ(next.outcomes.size(), 1u);
  EXPECT_EQ(next.outcomes[0].sequence, 201u);
  EXPECT_TRUE(next.all_acked());
}

TEST_F(AmqpConnectionTest, EventLoopStyleConfirmsWithPollAndTakeSettled) {
  const auto [exchange, queue] = work_queue();
  conn().enable_confirms();
  for (int i = 0; i < 10; ++i) conn().publish(message_to(exchange, "work", "{}"));
  EXPECT_EQ(conn().unconfirmed_count(), 10u);
  const auto deadline = Clock::now() + milliseconds(10000);
  while (conn().unconfirmed_count() > 0 && Clock::now() < deadline) {
    conn().poll();
    std::this_thread::sleep_for(milliseconds(5));
  }
  const ConfirmBatch batch = conn().take_settled();
  EXPECT_EQ(batch.outcomes.size(), 10u);
  EXPECT_TRUE(batch.all_acked());
  EXPECT_TRUE(conn().take_settled().outcomes.empty());
}

TEST_F(AmqpConnectionTest, BrokerCancelledConsumerIsReported) {
  const std::string queue = new_queue_name();
  conn().declare_queue(queue, FieldTable{});
  const std::string tag = conn().basic_consume(queue);
  AmqpConnection other = AmqpConnection::open(url_, "warren-amqp-test-deleter");
  other.delete_queue(queue);
  const auto deadline = Clock::now() + milliseconds(5000);
  std::vector<std::string> cancelled;
  while (cancelled.empty() && Clock::now() < deadline) {
    EXPECT_FALSE(conn().consume_one(milliseconds(100)).has_value());
    cancelled = conn().take_cancelled_consumers();
  }
  EXPECT_EQ(cancelled, std::vector<std::string>{tag});
  EXPECT_TRUE(conn().is_open());
}

TEST_F(AmqpConnectionTest, PropertiesAndHeadersRoundTripThroughBasicGet) {
  const auto [exchange, quorum_queue] = work_queue();
  const std::string classic_queue = new_queue_name();
  conn().declare_queue(classic_queue, FieldTable{});
  conn().bind_queue(classic_queue, exchange, "work");
  conn().enable_confirms();
  OutgoingMessage sent = message_to(exchange, "work", std::string("{\"k\":1}\0tail", 12));
  sent.message_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  sent.type = "sleep";
  sent.timestamp = 1700000123;
  sent.headers = FieldTable{
      {"x-warren-attempt", 1},
      {"x-warren-max-attempts", 5},
      {"x-warren-queue", "default"},
      {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
      {"flag", true},
      {"off", false},
      {"big", std::int64_t{-1} << 40},
      {"ratio", 0.25},
      {"when", Timestamp{1700000000}},
      {"nested", FieldTable{{"a", "b"}, {"n", 7}, {"deep", FieldTable{{"t", true}}}}},
      {"list", FieldArray{"x", 2, FieldTable{{"k", "v"}}}},
  };
  conn().publish(sent);
  ASSERT_TRUE(conn().wait_for_confirms(milliseconds(10000)).all_acked());

  for (const std::string& queue : {classic_queue, quorum_queue}) {
    SCOPED_TRACE(queue == classic_queue ? "classic queue" : "quorum queue");
    std::optional<Delivery> got = conn().basic_get(queue);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->body, sent.body);
    EXPECT_EQ(got->exchange, exchange);
    EXPECT_EQ(got->routing_key, "work");
    EXPECT_EQ(got->content_type, "application/json");
    EXPECT_EQ(got->message_id, sent.message_id);
    EXPECT_EQ(got->type, "sleep");
    EXPECT_EQ(got->app_id, "warren");
    EXPECT_EQ(got->timestamp, 1700000123);
    EXPECT_EQ(got->delivery_mode, kPersistent);
    EXPECT_FALSE(got->redelivered);
    EXPECT_EQ(got->message_count, 0u);
    if (queue == quorum_queue) {
      // Quorum queues add their delivery counter (0 on a first delivery) to the headers.
      EXPECT_EQ(got->headers.get_int("x-delivery-count"), 0);
      got->headers.erase("x-delivery-count");
    }
    EXPECT_EQ(got->headers, sent.headers);
    conn().ack(got->delivery_tag);
    EXPECT_FALSE(conn().basic_get(queue).has_value());
  }
}

TEST_F(AmqpConnectionTest, MandatoryUnroutablePublishIsReportedReturned) {
  const auto [exchange, queue] = work_queue();
  conn().enable_confirms();
  OutgoingMessage lost = message_to(exchange, "nowhere", "{}");
  lost.mandatory = true;
  OutgoingMessage routed = message_to(exchange, "work", "{}");
  routed.mandatory = true;
  OutgoingMessage dropped = message_to(exchange, "nowhere", "{}");  // not mandatory

  const std::uint64_t lost_seq = conn().publish(lost);
  const std::uint64_t routed_seq = conn().publish(routed);
  const std::uint64_t dropped_seq = conn().publish(dropped);
  const ConfirmBatch batch = conn().wait_for_confirms(milliseconds(10000));
  ASSERT_EQ(batch.outcomes.size(), 3u);
  ASSERT_NE(batch.find(lost_seq), nullptr);
  EXPECT_EQ(batch.find(lost_seq)->status, ConfirmStatus::kReturned);
  EXPECT_EQ(batch.find(lost_seq)->reply_code, 312);
  EXPECT_EQ(batch.find(lost_seq)->reply_text, "NO_ROUTE");
  EXPECT_EQ(batch.find(routed_seq)->status, ConfirmStatus::kAcked);
  // Without mandatory the broker acks and drops: why Warren publishes with mandatory.
  EXPECT_EQ(batch.find(dropped_seq)->status, ConfirmStatus::kAcked);
  EXPECT_FALSE(batch.all_acked());

  const auto got = conn().basic_get(queue, /*no_ack=*/true);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->headers.get_int(kPublishSequenceHeader), static_cast<std::int64_t>(routed_seq));
}

TEST_F(AmqpConnectionTest, MissingEntitiesCheckFalseAndConnectionStaysUsable) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(conn().check_queue("test-amqp-missing-" + random_suffix()));
    EXPECT_FALSE(conn().check_exchange("test-amqp-missing-" + random_suffix()));
    EXPECT_FALSE(conn().inspect_queue("test-amqp-missing-" + random_suffix()).has_value());
  }
  EXPECT_TRUE(conn().is_open());
  const auto [exchange, queue] = work_queue();
  EXPECT_TRUE(conn().check_queue(queue));
  EXPECT_TRUE(conn().check_exchange(exchange));
  conn().enable_confirms();
  EXPECT_EQ(conn().publish(message_to(exchange, "work", "{}")), 1u);
  EXPECT_TRUE(conn().wait_for_confirms(milliseconds(10000)).all_acked());
  EXPECT_TRUE(conn().basic_get(queue, true).has_value());
}

TEST_F(AmqpConnectionTest, PublishToMissingExchangeIsAChannelErrorAndRecovers) {
  const auto [exchange, queue] = work_queue();
  conn().enable_confirms();
  EXPECT_EQ(conn().publish(message_to("test-amqp-missing-" + random_suffix(), "k", "{}")), 1u);
  try {
    (void)conn().wait_for_confirms(milliseconds(10000));
    FAIL() << "expected a 404";
  } catch (const AmqpError& error) {
    EXPECT_EQ(error.reply_code(), 404) << error.what();
    EXPECT_FALSE(error.connection_lost());
  }
  const ConfirmBatch failed = conn().take_settled();
  ASSERT_EQ(failed.outcomes.size(), 1u);
  EXPECT_EQ(failed.outcomes[0].status, ConfirmStatus::kNacked);
  EXPECT_EQ(failed.outcomes[0].reply_code, 404);

  // The channel was reopened in confirm mode; numbering continues.
  EXPECT_EQ(conn().publish(message_to(exchange, "work", "{}")), 2u);
  const ConfirmBatch batch = conn().wait_for_confirms(milliseconds(10000));
  ASSERT_EQ(batch.outcomes.size(), 1u);
  EXPECT_EQ(batch.outcomes[0].sequence, 2u);
  EXPECT_TRUE(batch.all_acked());
}

TEST_F(AmqpConnectionTest, WrongPasswordFailsWithoutLeakingIt) {
  const std::string password = "wrong-pw-" + random_suffix();
  const std::string url = with_password(url_, password);
  ASSERT_NE(url.find(password), std::string::npos);
  try {
    (void)AmqpConnection::open(url, "warren-amqp-test-bad-login");
    FAIL() << "expected AmqpError";
  } catch (const AmqpError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find(password), std::string::npos) << message;
    EXPECT_NE(message.find("login"), std::string::npos) << message;
    EXPECT_EQ(error.reply_code(), 403) << message;
    EXPECT_TRUE(error.connection_lost());
  }
}

TEST_F(AmqpConnectionTest, ClosedPortFailsFast) {
  const std::string url = "amqp://guest:guest@127.0.0.1:" + std::to_string(closed_port()) + "/%2f";
  const auto start = Clock::now();
  try {
    (void)AmqpConnection::open(url, "warren-amqp-test-closed-port");
    FAIL() << "expected AmqpError";
  } catch (const AmqpError& error) {
    EXPECT_TRUE(error.connection_lost());
    EXPECT_NE(std::string(error.what()).find("cannot connect"), std::string::npos) << error.what();
  }
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
}

TEST_F(AmqpConnectionTest, ConsumeNackRequeueThenAck) {
  const auto [exchange, queue] = work_queue();
  conn().enable_confirms();
  conn().basic_qos(10);
  const std::string tag = conn().basic_consume(queue, "warren-test-consumer");
  EXPECT_EQ(tag, "warren-test-consumer");
  OutgoingMessage message = message_to(exchange, "work", "{\"n\":1}");
  message.message_id = "m-1";
  conn().publish(message);
  ASSERT_TRUE(conn().wait_for_confirms(milliseconds(10000)).all_acked());

  auto first = conn().consume_one(milliseconds(10000));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->consumer_tag, tag);
  EXPECT_EQ(first->message_id, "m-1");
  EXPECT_FALSE(first->redelivered);
  conn().nack(first->delivery_tag, false, /*requeue=*/true);

  auto second = conn().consume_one(milliseconds(10000));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->message_id, "m-1");
  EXPECT_TRUE(second->redelivered);
  conn().ack(second->delivery_tag);

  const auto start = Clock::now();
  EXPECT_FALSE(conn().consume_one(milliseconds(300)).has_value());
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(3000));
  EXPECT_FALSE(conn().has_buffered_data());
  EXPECT_GE(conn().socket_fd(), 0);
  conn().basic_cancel(tag);
}

TEST_F(AmqpConnectionTest, DeliveriesArrivingDuringAConfirmWaitAreKept) {
  const auto [exchange, queue] = work_queue();
  conn().basic_consume(queue);
  conn().enable_confirms();
  for (int i = 0; i < 20; ++i) conn().publish(message_to(exchange, "work", std::to_string(i)));
  ASSERT_TRUE(conn().wait_for_confirms(milliseconds(10000)).all_acked());
  std::vector<std::string> bodies;
  while (bodies.size() < 20) {
    auto delivery = conn().consume_one(milliseconds(10000));
    ASSERT_TRUE(delivery.has_value());
    bodies.push_back(delivery->body);
    conn().ack(delivery->delivery_tag);
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(bodies[i], std::to_string(i));
}

TEST_F(AmqpConnectionTest, BasicGetWhileConfirmsAreOutstanding) {
  // A classic queue: its enqueue is synchronous with the channel, so the get sees the messages.
  const std::string queue = new_queue_name();
  conn().declare_queue(queue, FieldTable{});
  conn().enable_confirms();
  for (int i = 0; i < 50; ++i) conn().publish(message_to("", queue, std::to_string(i)));
  // Acks arrive interleaved with the get's reply; none may be lost or mistaken for content.
  for (int i = 0; i < 5; ++i) {
    const auto got = conn().basic_get(queue, /*no_ack=*/true);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->body, std::to_string(i));
  }
  const ConfirmBatch batch = conn().wait_for_confirms(milliseconds(10000));
  EXPECT_EQ(batch.outcomes.size(), 50u);
  EXPECT_TRUE(batch.all_acked());
}

TEST_F(AmqpConnectionTest, UnknownDeliveryTagSurfacesAsChannelError) {
  const auto [exchange, queue] = work_queue();
  conn().ack(987654);  // asynchronous: the broker answers with a channel close
  try {
    (void)conn().consume_one(milliseconds(5000));
    FAIL() << "expected a 406";
  } catch (const AmqpError& error) {
    EXPECT_EQ(error.reply_code(), 406) << error.what();
    EXPECT_FALSE(error.connection_lost());
  }
  EXPECT_TRUE(conn().check_queue(queue));
}

TEST_F(AmqpConnectionTest, ConnectionLevelErrorMarksTheConnectionLost) {
  // An unknown exchange type is a connection-level error in RabbitMQ (503 COMMAND_INVALID).
  try {
    conn().declare_exchange(new_exchange_name(), "no-such-type");
    FAIL() << "expected AmqpError";
  } catch (const AmqpError& error) {
    EXPECT_TRUE(error.connection_lost()) << error.what();
    EXPECT_EQ(error.reply_code(), 503) << error.what();
  }
  EXPECT_FALSE(conn().is_open());
  try {
    conn().check_queue("anything");
    FAIL() << "expected AmqpError";
  } catch (const AmqpError& error) {
    EXPECT_TRUE(error.connection_lost());
  }
}

TEST_F(AmqpConnectionTest, MovedConnectionKeepsWorking) {
  const std::string queue = new_queue_name();
  AmqpConnection moved = std::move(conn());
  EXPECT_FALSE(conn().is_open());  // NOLINT(bugprone-use-after-move): checking the moved-from
  moved.declare_queue(queue, FieldTable{});
  EXPECT_TRUE(moved.check_queue(queue));
  AmqpConnection other = AmqpConnection::open(url_, "warren-amqp-test-2");
  other = std::move(moved);  // closes the connection "other" held
  EXPECT_TRUE(other.check_queue(queue));
}

TEST_F(AmqpConnectionTest, PollKeepsAnIdleConnectionAliveThroughHeartbeats) {
  AmqpConnection idle = AmqpConnection::open(url_, "warren-amqp-test-heartbeat", 1);
  const auto until = Clock::now() + milliseconds(3500);
  while (Clock::now() < until) {
    idle.poll();
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_TRUE(idle.is_open());
  EXPECT_FALSE(idle.check_queue("test-amqp-missing-" + random_suffix()));
}

}  // namespace
}  // namespace warren::amqp

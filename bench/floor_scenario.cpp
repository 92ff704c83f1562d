// Scenario 1, the floor: what the broker alone sustains for Warren's messages, measured with
// Warren's own AMQP client (shared/amqp) on the topology Warren declares (a quorum queue behind
// the topic jobs exchange, mandatory persistent messages with Warren's headers and body).
//
// One publisher thread keeps up to kConfirmWindow publishes unconfirmed (a sliding window: it
// publishes again as soon as confirms free room), one consumer thread acks with `multiple`
// every kAckEvery deliveries at prefetch kPrefetch. The rate is messages / (first publish ->
// last ack). Every Warren scenario is reported as a ratio of this number, measured in the same
// run on the same machine: it is the physical limit of a design that persists every job in
// the broker.
#include <poll.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "http_load.h"
#include "scenarios.h"
#include "shared/amqp/amqp_connection.h"
#include "shared/job_message.h"
#include "shared/topology.h"
#include "shared/uuid.h"
#include "support/test_stack.h"
#include "warren_deployment.h"

namespace warren::bench {
namespace {

constexpr std::size_t kConfirmWindow = 1000;
constexpr std::uint16_t kPrefetch = 1000;
constexpr int kAckEvery = 100;

// Waits (without spinning) until the connection's socket has something to read.
void wait_readable(amqp::AmqpConnection& connection, int timeout_ms) {
  if (connection.has_buffered_data()) return;
  pollfd fd{connection.socket_fd(), POLLIN, 0};
  ::poll(&fd, 1, timeout_ms);
}

amqp::OutgoingMessage floor_message(const std::string& prefix) {
  JobMessage job;
  job.id = new_uuid_v7();
  job.type = "noop";
  job.queue = "default";
  job.payload_json = "{}";
  job.created_at = "2026-11-23T00:00:00.000Z";
  return make_job_message(job, prefix, std::chrono::milliseconds(0));
}

void publish_all(const std::string& url, const std::string& prefix, int messages) {
  auto connection = amqp::AmqpConnection::open(url, "warren bench floor publisher");
  connection.enable_confirms();
  const auto message = floor_message(prefix);
  std::size_t confirmed = 0;
  auto settle = [&] {
    connection.poll();
    const auto batch = connection.take_settled();
    if (!batch.all_acked()) throw std::runtime_error("the broker refused a floor message");
    confirmed += batch.outcomes.size();
  };
  for (int i = 0; i < messages; ++i) {
    while (connection.unconfirmed_count() >= kConfirmWindow) {
      wait_readable(connection, 1000);
      settle();
    }
    connection.publish(message);
  }
  const auto rest = connection.wait_for_confirms(std::chrono::seconds(60));
  if (!rest.all_acked()) throw std::runtime_error("the broker refused a floor message");
}

// Returns when `messages` deliveries were acked.
void consume_all(const std::string& url, const std::string& queue, int messages,
                 std::atomic<bool>& consuming) {
  auto connection = amqp::AmqpConnection::open(url, "warren bench floor consumer");
  connection.basic_qos(kPrefetch);
  connection.basic_consume(queue);
  consuming = true;
  int received = 0, unacked = 0;
  std::uint64_t last_tag = 0;
  while (received < messages) {
    auto delivery = connection.consume_one(std::chrono::milliseconds(unacked > 0 ? 0 : 5000));
    if (!delivery) {
      if (unacked > 0) {  // nothing more buffered: ack what we have before waiting
        connection.ack(last_tag, true);
        unacked = 0;
        continue;
      }
      throw std::runtime_error("the floor consumer got nothing for 5 s");
    }
    ++received;
    last_tag = delivery->delivery_tag;
    if (++unacked >= kAckEvery) {
      connection.ack(last_tag, true);
      unacked = 0;
    }
  }
  if (unacked > 0) connection.ack(last_tag, true);
  connection.poll();  // the acks are on the wire before the clock stops
}

}  // namespace

ScenarioResult run_floor(const BenchContext& context) {
  const int messages = context.sizes.floor_messages;
  const auto prefix = "benchfloor" + test::random_suffix();
  const auto topology = build_topology(prefix, {"default"}, 20);
  {
    auto admin = amqp::AmqpConnection::open(context.amqp_url, "warren bench floor setup");
    declare_topology(admin, topology);
  }
  std::atomic<bool> consuming{false};
  std::exception_ptr consumer_failure;
  std::thread consumer([&] {
    try {
      consume_all(context.amqp_url, TopologyNames{prefix}.work_queue("default"), messages,
                  consuming);
    } catch (...) {
      consumer_failure = std::current_exception();
      consuming = true;
    }
  });
  while (!consuming) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto machine_before = machine_cpu();
  const auto start = Clock::now();
  std::exception_ptr publisher_failure;
  try {
    publish_all(context.amqp_url, prefix, messages);
  } catch (...) {
    publisher_failure = std::current_exception();
  }
  const auto published = Clock::now();
  consumer.join();
  const auto end = Clock::now();
  const auto machine_after = machine_cpu();
  {
    auto admin = amqp::AmqpConnection::open(context.amqp_url, "warren bench floor cleanup");
    test::delete_topology(admin, prefix, {"default"});
  }
  if (publisher_failure) std::rethrow_exception(publisher_failure);
  if (consumer_failure) std::rethrow_exception(consumer_failure);

  const double seconds = std::chrono::duration<double>(end - start).count();
  ScenarioResult result;
  result.scenario = "1 floor";
  result.setup = std::to_string(messages) +
                 " Warren job messages (persistent, mandatory, headers) through the topic jobs "
                 "exchange into a quorum queue; one publisher with up to " +
                 std::to_string(kConfirmWindow) + " unconfirmed, one consumer at prefetch " +
                 std::to_string(kPrefetch) + " acking every " + std::to_string(kAckEvery) + ".";
  result.add("msg/s (publish -> last ack)", messages / seconds, "msg/s");
  result.add("publish phase", messages / std::chrono::duration<double>(published - start).count(),
             "msg/s");
  result.add("machine CPU busy (broker and this client; 2 cores = 100%)",
             busy_percent(machine_before, machine_after), "%");
  return result;
}

}  // namespace warren::bench

// Tests for the topology description (MESSAGING.md "Topology") and the message encoding.
#include "shared/topology.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "shared/delay_route.h"
#include "shared/job_message.h"

namespace warren {
namespace {

const QueueSpec* find_queue(const Topology& t, const std::string& name) {
  for (const auto& q : t.queues) {
    if (q.name == name) return &q;
  }
  return nullptr;
}

TEST(Topology, WorkQueuesAreQuorumWithSafeDeadLettering) {
  auto t = build_topology("warren", {"default", "emails"}, 20);
  for (const char* name : {"warren.q.default", "warren.q.emails"}) {
    const auto* q = find_queue(t, name);
    ASSERT_NE(q, nullptr) << name;
    EXPECT_EQ(q->arguments.get_string("x-queue-type"), "quorum");
    EXPECT_EQ(q->arguments.get_string("x-dead-letter-exchange"), "warren.dead");
    EXPECT_EQ(q->arguments.get_string("x-dead-letter-strategy"), "at-least-once");
    EXPECT_EQ(q->arguments.get_string("x-overflow"), "reject-publish");
    EXPECT_EQ(q->arguments.get_int("x-delivery-limit"), 20);
  }
}

TEST(Topology, HasAllNamedPartsOfMessagingMd) {
  auto t = build_topology("acme", {"default"}, 7);
  std::set<std::string> exchanges, queues;
  for (const auto& e : t.exchanges) exchanges.insert(e.name);
  for (const auto& q : t.queues) queues.insert(q.name);
  for (const char* e :
       {"acme.jobs", "acme.delivery", "acme.dead", "acme.delay.00", "acme.delay.27"}) {
    EXPECT_TRUE(exchanges.count(e)) << e;
  }
  for (const char* q : {"acme.q.default", "acme.dead-letters", "acme.delay.00", "acme.delay.27"}) {
    EXPECT_TRUE(queues.count(q)) << q;
  }
  EXPECT_EQ(exchanges.size(), 3u + 28u);
  EXPECT_EQ(queues.size(), 1u + 28u + 1u);
  EXPECT_EQ(find_queue(t, "acme.dead-letters")->arguments.get_bool("x-single-active-consumer"),
            true);
  EXPECT_EQ(find_queue(t, "acme.delay.05")->arguments.get_int("x-message-ttl"), 32000);
  EXPECT_EQ(find_queue(t, "acme.delay.05")->arguments.get_string("x-dead-letter-exchange"),
            "acme.delay.04");
  EXPECT_EQ(find_queue(t, "acme.delay.00")->arguments.get_string("x-dead-letter-exchange"),
            "acme.delivery");
}

TEST(Topology, DefinitionsExportHasEveryObject) {
  auto t = build_topology("warren", {"default"}, 20);
  auto d = topology_definitions(t);
  EXPECT_EQ(d["exchanges"].size(), t.exchanges.size());
  EXPECT_EQ(d["queues"].size(), t.queues.size());
  EXPECT_EQ(d["bindings"].size(), t.bindings.size());
  EXPECT_EQ(d["queues"][0]["arguments"]["x-queue-type"], "quorum");
}

// rabbitmq/definitions.json is what operators import; it must be what the code declares.
// Regenerate with: build/bin/warrenctl topology export > rabbitmq/definitions.json
TEST(Topology, CheckedInDefinitionsMatchTheCode) {
  std::ifstream file(std::string(WARREN_SOURCE_DIR) + "/rabbitmq/definitions.json");
  ASSERT_TRUE(file.good());
  const auto checked_in = nlohmann::json::parse(file);
  EXPECT_EQ(checked_in, topology_definitions(build_topology("warren", {"default"}, 20)));
}

TEST(JobMessage, ImmediateJobGoesToJobsExchangeWithHeaders) {
  JobMessage job;
  job.id = "0193a1b2-0000-7000-8000-000000000001";
  job.type = "email.send";
  job.queue = "default";
  job.payload_json = R"({"to": "a@example.com"})";
  job.max_attempts = 3;
  job.created_at = "2026-11-23T10:00:00.000Z";
  job.attempt = 1;
  job.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto m = make_job_message(job, "warren", std::chrono::milliseconds(0));
  EXPECT_EQ(m.exchange, "warren.jobs");
  EXPECT_EQ(m.routing_key, "default");
  EXPECT_TRUE(m.mandatory);
  EXPECT_EQ(m.delivery_mode, amqp::kPersistent);
  EXPECT_EQ(m.message_id, job.id);
  EXPECT_EQ(m.type, "email.send");
  EXPECT_EQ(m.app_id, "warren");
  EXPECT_EQ(m.content_type, "application/json");
  EXPECT_EQ(m.headers.get_int("x-warren-attempt"), 1);
  EXPECT_EQ(m.headers.get_int("x-warren-max-attempts"), 3);
  EXPECT_EQ(m.headers.get_string("x-warren-queue"), "default");
  EXPECT_EQ(m.headers.get_string("traceparent"), job.traceparent);
  auto body = nlohmann::json::parse(m.body);
  EXPECT_EQ(body["id"], job.id);
  EXPECT_EQ(body["payload"]["to"], "a@example.com");
  EXPECT_EQ(body["backoff"]["initial_ms"], 5000);
  EXPECT_TRUE(body["timeout_ms"].is_null());
  for (const char* key :
       {"id", "type", "queue", "payload", "max_attempts", "timeout_ms", "created_at", "backoff"}) {
    EXPECT_TRUE(body.contains(key)) << key;
  }
}

TEST(JobMessage, DelayedJobEntersTheDelayInfrastructureAtTheTopLevel) {
  JobMessage job;
  job.id = "x";
  job.type = "t";
  job.queue = "default";
  job.payload_json = "{}";
  auto m = make_job_message(job, "warren", std::chrono::milliseconds(2500));
  EXPECT_EQ(m.exchange, "warren.delay.27");
  auto route = decode_delay_routing_key(m.routing_key);
  ASSERT_TRUE(route);
  EXPECT_EQ(route->delay_seconds, 3u);  // rounded up
  EXPECT_EQ(route->queue, "default");
}

}  // namespace
}  // namespace warren

// The dead-letter recorder against the real broker and database: the store's idempotency and
// its job bookkeeping on exact rows (consumer/dead_letter_store.h), then whole consumers
// draining warren.dead-letters: their own dead letters are not recorded twice, and a poison
// message published straight to a work queue ends in the table with its raw bytes.
// (The delivery-limit path is in consumer_resilience_test.cpp, where a handler crashes its
// consumer until the broker gives up.)
#include <gtest/gtest.h>

#include "consumer/dead_letter_store.h"
#include "shared/amqp/amqp_connection.h"
#include "shared/db/connection_pool.h"
#include "shared/db/migrator.h"
#include "shared/encoding.h"
#include "shared/topology.h"
#include "shared/uuid.h"
#include "support/jobs.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using consumer::DeadLetterRow;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kNow[] = "2030-06-01T12:00:00.000Z";

class DeadLetterStore : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    db_ = db::connect(database_->url());
    db::migrate(*db_);
  }
  void TearDown() override {
    db_.reset();
    IntegrationTest::TearDown();
  }

  consumer::DeadLetterWrite write(std::vector<DeadLetterRow> rows) {
    pqxx::work tx(*db_);
    auto result = consumer::write_dead_letters(tx, rows, kNow);
    tx.commit();
    return result;
  }

  static DeadLetterRow poison_row(const std::string& key, bool redelivered) {
    DeadLetterRow row;
    row.id = new_uuid_v7();
    row.message_key = key;
    row.redelivered = redelivered;
    row.reason = "poison";
    row.error_type = "poison";
    row.error_message = "not a job message";
    row.dead_lettered_at = kNow;
    row.raw_body = std::string("\x00\x01raw", 5);
    return row;
  }

  // A job running attempt 2 on a consumer that died; attempt 1 failed.
  std::string add_abandoned_job() {
    const std::string id = new_uuid_v7();
    execute(
        "INSERT INTO jobs (id, type, queue, status, payload, attempts, max_attempts, "
        "created_at, updated_at, started_at) VALUES ('" +
        id + "', 'crash', 'default', 'running', '{}', 2, 10, now(), now(), now())");
    execute(
        "INSERT INTO job_attempts (job_id, attempt, outcome, started_at, finished_at, worker) "
        "VALUES ('" +
        id + "', 1, 'failed', now(), now(), 'c1'), ('" + id + "', 2, NULL, now(), NULL, 'c2')");
    return id;
  }

  DeadLetterRow delivery_limit_row(const std::string& job_id) {
    DeadLetterRow row = poison_row("sha256:limit-" + job_id, false);
    row.reason = "delivery_limit";
    row.error_type = "delivery_limit";
    row.error_message = "redelivered too often";
    row.job_id = job_id;
    row.type = "crash";
    row.queue = "default";
    row.raw_body.reset();
    row.payload_json = "{}";
    row.fails_job = true;
    return row;
  }

  std::unique_ptr<pqxx::connection> db_;
};

TEST_F(DeadLetterStore, RedeliveryOfARecordedMessageIsANoOp) {
  auto first = write({poison_row("sha256:aa", false)});
  EXPECT_EQ(first.recorded, std::vector<bool>{true});
  auto again = write({poison_row("sha256:aa", true)});
  EXPECT_EQ(again.recorded, std::vector<bool>{false});
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters"), 1);
  EXPECT_EQ(query_value("SELECT encode(raw_body, 'hex') FROM dead_letters"), "0001726177");
}

TEST_F(DeadLetterStore, IdenticalMessagesDeliveredForTheFirstTimeGetARowEach) {
  // Two byte-identical poison messages: one in an earlier batch, two more in this one.
  write({poison_row("sha256:bb", false)});
  auto result = write({poison_row("sha256:bb", false), poison_row("sha256:bb", false)});
  EXPECT_EQ(result.recorded, (std::vector<bool>{true, true}));
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE message_key LIKE 'sha256:bb%'"), 3);
}

TEST_F(DeadLetterStore, DeliveryLimitFailsTheJobAndClosesItsOpenAttemptAsLost) {
  const auto id = add_abandoned_job();
  auto result = write({delivery_limit_row(id)});
  EXPECT_EQ(result.jobs_failed, 1);
  const json job = query_json(
      "SELECT status, finished_at IS NOT NULL AS finished, last_error "
      "FROM jobs WHERE id = '" +
      id + "'")[0];
  EXPECT_EQ(job["status"], "failed");
  EXPECT_EQ(job["finished"], true);
  EXPECT_EQ(job["last_error"]["type"], "delivery_limit");
  EXPECT_EQ(query_json("SELECT attempt, outcome, error->>'type' AS error FROM job_attempts "
                       "WHERE job_id = '" +
                       id + "' ORDER BY attempt"),
            json::parse(R"([{"attempt": 1, "outcome": "failed", "error": null},
                            {"attempt": 2, "outcome": "lost", "error": "worker_lost"}])"));
  // The dead letter counts the attempts the job made.
  EXPECT_EQ(query_int("SELECT attempts FROM dead_letters WHERE job_id = '" + id + "'"), 2);

  // Recorded again (a redelivery): nothing changes.
  auto row = delivery_limit_row(id);
  row.redelivered = true;
  EXPECT_EQ(write({row}).jobs_failed, 0);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters"), 1);
}

TEST_F(DeadLetterStore, RedeliveryAfterARequeueDoesNotFailTheJobAgain) {
  // Recorded (job failed), the recorder died before its ack, an operator requeued the job, and
  // then the message came back to another recorder.
  const auto id = add_abandoned_job();
  ASSERT_EQ(write({delivery_limit_row(id)}).jobs_failed, 1);
  execute("UPDATE jobs SET status = 'queued', finished_at = NULL WHERE id = '" + id + "'");
  auto row = delivery_limit_row(id);
  row.redelivered = true;
  EXPECT_EQ(write({row}).jobs_failed, 0);
  EXPECT_EQ(query_value("SELECT to_json(status) FROM jobs WHERE id = '" + id + "'"), "queued");
}

TEST_F(DeadLetterStore, StaleCopyDoesNotFailAJobThatMovedOn) {
  const auto id = add_abandoned_job();
  execute("UPDATE jobs SET status = 'retrying' WHERE id = '" + id + "'");
  EXPECT_EQ(write({delivery_limit_row(id)}).jobs_failed, 0);
  EXPECT_EQ(query_value("SELECT to_json(status) FROM jobs WHERE id = '" + id + "'"), "retrying");
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE job_id = '" + id + "'"), 1);
}

class DeadLetterRecorderTest : public IntegrationTest {
 protected:
  std::uint32_t queue_depth_of_dead_letters() {
    auto counts = broker().inspect_queue(TopologyNames{prefix_}.dead_letters_queue());
    return counts ? counts->message_count : 0;
  }
};

TEST_F(DeadLetterRecorderTest, ConsumerDeadLettersAreRecordedOnceAndTheQueueDrains) {
  start_producer();
  auto& consumer = start_consumer();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(submit_job(
        *api(), {{"type", "fail"}, {"payload", {{"permanent", true}, {"message", "nope"}}}}));
  }
  ASSERT_TRUE(wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'failed'") == 20; }, 30s));
  // The recorder drains the queue; each message finds the row its consumer wrote.
  ASSERT_TRUE(wait_until([&] { return queue_depth_of_dead_letters() == 0; }, 20s));
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters"), 20);
  EXPECT_EQ(query_int("SELECT count(DISTINCT job_id) FROM dead_letters "
                      "WHERE reason = 'permanent_failure' AND error_message = 'nope'"),
            20);
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = consumer.health_client()->Get("/metrics");
        return r && r->body.find("warren_dead_letter_duplicates_total 20") != std::string::npos;
      },
      10s));
}

TEST_F(DeadLetterRecorderTest, PoisonPublishedStraightToAWorkQueueIsRecordedWithItsRawBytes) {
  start_producer();
  start_consumer();
  const std::string body("this is not a job \xff\x00!", 21);
  auto connection = broker();
  connection.enable_confirms();
  amqp::OutgoingMessage message;
  message.routing_key = TopologyNames{prefix_}.work_queue("default");
  message.body = body;
  message.content_type = "text/plain";
  connection.publish(message);
  ASSERT_TRUE(connection.wait_for_confirms(5s).all_acked());

  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM dead_letters") == 1; }, 20s));
  const json row = query_json(
      "SELECT reason, error_type, job_id, queue, payload, encode(raw_body, 'base64') AS raw, "
      "headers->'x-death'->0->>'reason' AS broker_reason FROM dead_letters")[0];
  EXPECT_EQ(row["reason"], "poison");
  EXPECT_EQ(row["error_type"], "poison");
  EXPECT_TRUE(row["job_id"].is_null());
  EXPECT_TRUE(row["payload"].is_null());
  EXPECT_EQ(row["queue"], "default");
  EXPECT_EQ(row["broker_reason"], "rejected");
  EXPECT_EQ(base64_decode(row["raw"].get<std::string>()), body);
}

}  // namespace
}  // namespace warren::test

// warrenctl and the schema: migrations (idempotent, safe from many processes at once),
// topology declare/check, submit without HTTP, jobs get/list/attempts/cancel, and retention.
#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <future>
#include <pqxx/pqxx>

#include "producer/retention_cleaner.h"
#include "shared/db/migrations.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;

class Tools : public IntegrationTest {};

TEST_F(Tools, MigrateIsIdempotentAndSafeFromManyProcessesAtOnce) {
  std::vector<std::future<CommandResult>> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(std::async(std::launch::async, [&] { return warrenctl({"migrate"}); }));
  }
  int applied = 0;
  for (auto& run : runs) {
    auto result = run.get();
    ASSERT_EQ(result.exit_code, 0) << result.err;
    if (result.out.find("applied 0001_initial_schema") != std::string::npos) ++applied;
  }
  EXPECT_EQ(applied, 1);  // exactly one process applied it; the others found it done
  auto again = warrenctl({"migrate"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("nothing to do"), std::string::npos);
  auto status = warrenctl({"migrate", "--status", "--output", "json"});
  ASSERT_EQ(status.exit_code, 0);
  EXPECT_EQ(json::parse(status.out)[0]["state"], "applied");
  // One row per migration compiled in (0001, 0002, ...), each applied once.
  EXPECT_EQ(query_int("SELECT count(*) FROM warren_schema_migrations"),
            static_cast<int64_t>(db::embedded_migrations().size()));
}

TEST_F(Tools, ProducerWithoutAutoMigrationWaitsForTheSchemaThenGivesUpClearly) {
  auto env = warren_env();
  env["WARREN_AUTO_MIGRATE"] = "0";
  env["WARREN_STARTUP_WAIT_MS"] = "1500";
  env["WARREN_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(free_port());
  ChildProcess early(
      binary("warren-producer"), {}, env,
      test_env("WARREN_TEST_STACK_DIR") + "/producer-unmigrated-" + prefix_ + ".log");
  ASSERT_TRUE(wait_until([&] { return !early.running(); }, std::chrono::seconds(15)));
  EXPECT_EQ(early.stop(), 1);
  EXPECT_NE(early.log().find("run `warrenctl migrate`"), std::string::npos) << early.log();

  ASSERT_EQ(warrenctl({"migrate"}).exit_code, 0);
  start_producer({{"WARREN_AUTO_MIGRATE", "0"}});
  EXPECT_EQ(api()->Get("/healthz")->status, 200);
}

// A SIGTERM that arrives while the producer still waits for its schema used to be lost: the
// server started listening afterwards and could then only be killed.
TEST_F(Tools, SigtermBeforeListeningStillStopsTheProducer) {
  auto env = warren_env();
  env["WARREN_AUTO_MIGRATE"] = "0";
  env["WARREN_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(free_port());
  ChildProcess producer(
      binary("warren-producer"), {}, env,
      test_env("WARREN_TEST_STACK_DIR") + "/producer-early-term-" + prefix_ + ".log");
  // Signalled once it says it waits (a fixed sleep raced start-up under ASan: a SIGTERM before
  // the signal mask is set is the default one, exit 143).
  ASSERT_TRUE(
      wait_until([&] { return producer.log().find("waiting before start") != std::string::npos; },
                 std::chrono::seconds(15)))
      << producer.log();
  ::kill(producer.pid(), SIGTERM);
  ASSERT_EQ(warrenctl({"migrate"}).exit_code, 0);
  EXPECT_TRUE(wait_until([&] { return !producer.running(); }, std::chrono::seconds(10)))
      << producer.log();
  EXPECT_EQ(producer.stop(), 0) << producer.log();
}

TEST_F(Tools, TopologyDeclaredTwiceAndChecked) {
  auto missing = warrenctl({"topology", "check"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("missing exchange " + prefix_ + ".jobs"), std::string::npos);
  for (int i = 0; i < 2; ++i) {
    auto declared = warrenctl({"topology", "declare"});
    ASSERT_EQ(declared.exit_code, 0) << declared.err;
    EXPECT_NE(declared.out.find("31 exchanges, 30 queues"), std::string::npos) << declared.out;
  }
  auto check = warrenctl({"topology", "check"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  // The work queue is a quorum queue with the arguments of MESSAGING.md (a redeclare with
  // different arguments would fail, so declaring them identically proves them).
  auto connection = broker();
  amqp::FieldTable args;
  args.set("x-queue-type", std::string("quorum"));
  args.set("x-dead-letter-exchange", prefix_ + ".dead");
  args.set("x-dead-letter-strategy", std::string("at-least-once"));
  args.set("x-overflow", std::string("reject-publish"));
  args.set("x-delivery-limit", std::int64_t{20});
  EXPECT_NO_THROW(connection.declare_queue(prefix_ + ".q.default", args));
}

TEST_F(Tools, SubmitGetListAttemptsCancelWithoutHttp) {
  ASSERT_EQ(warrenctl({"migrate"}).exit_code, 0);
  auto submitted = warrenctl({"submit", "email.send", "--payload", R"({"to":"a@example.com"})",
                              "--max-attempts", "3", "--idempotency-key", "cli-1"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string id = submitted.out.substr(0, 36);
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox WHERE job_id = '" + id + "'"), 1);

  auto got = warrenctl({"jobs", "get", id, "--output", "json"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(json::parse(got.out)["max_attempts"], 3);
  auto attempts = warrenctl({"jobs", "attempts", id, "--output=json"});
  EXPECT_EQ(json::parse(attempts.out)["attempts"].size(), 0u);

  const std::string file = test_env("WARREN_TEST_STACK_DIR") + "/jobs-" + prefix_ + ".jsonl";
  {
    std::ofstream out(file);
    for (int i = 0; i < 2500; ++i) out << R"({"type":"noop","payload":{"i":)" << i << "}}\n";
  }
  auto bulk = warrenctl({"submit", "--from", file});
  ASSERT_EQ(bulk.exit_code, 0) << bulk.err;
  EXPECT_EQ(std::count(bulk.out.begin(), bulk.out.end(), '\n'), 2500);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 2501);

  auto listed = warrenctl({"jobs", "list", "--type", "email.send", "--output", "json"});
  EXPECT_EQ(json::parse(listed.out)["jobs"].size(), 1u);
  auto table = warrenctl({"jobs", "list", "--limit", "2", "--output", "table"});
  EXPECT_NE(table.out.find("ID"), std::string::npos);
  EXPECT_NE(table.out.find("more: --cursor"), std::string::npos);

  auto cancelled = warrenctl({"jobs", "cancel", id, "--output", "json"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(json::parse(cancelled.out)["status"], "cancelled");
  EXPECT_EQ(warrenctl({"jobs", "cancel", id}).exit_code, 1);

  // A bad line submits nothing and names the line.
  {
    std::ofstream out(file);
    out << R"({"type":"noop","payload":{}})"
        << "\n"
        << R"({"type":"noop"})"
        << "\n";
  }
  auto bad = warrenctl({"submit", "--from", file});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(":2: payload is required"), std::string::npos) << bad.err;
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 2501);
  EXPECT_EQ(warrenctl({"frobnicate"}).exit_code, 2);
}

TEST_F(Tools, RetentionDeletesExpiredFinishedJobsInBatchesAndKeepsTheRest) {
  ASSERT_EQ(warrenctl({"migrate"}).exit_code, 0);
  const std::string file = test_env("WARREN_TEST_STACK_DIR") + "/retention-" + prefix_ + ".jsonl";
  {
    std::ofstream out(file);
    for (int i = 0; i < 250; ++i)
      out << R"({"type":"noop","payload":{}})"
          << "\n";
  }
  ASSERT_EQ(warrenctl({"submit", "--from", file}).exit_code, 0);
  // 100 succeeded long ago (with attempts), 50 succeeded just now, 40 failed long ago with an
  // open dead letter for 10 of them, the rest still queued.
  execute(R"(WITH picked AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM jobs)
               UPDATE jobs j SET
                 status = CASE WHEN n <= 150 THEN 'succeeded' WHEN n <= 190 THEN 'failed' ELSE status END,
                 finished_at = CASE WHEN n <= 100 OR n > 150 AND n <= 190 THEN now() - interval '40 days'
                                    WHEN n <= 150 THEN now() END
               FROM picked WHERE picked.id = j.id AND n <= 190)");
  execute(
      "INSERT INTO job_attempts (job_id, attempt, outcome, started_at, finished_at, worker) "
      "SELECT id, 1, 'succeeded', now(), now(), 'w' FROM jobs WHERE status = 'succeeded' ");
  execute(R"(INSERT INTO dead_letters (id, message_key, job_id, reason, dead_lettered_at)
               SELECT gen_random_uuid(), id::text, id, 'max_attempts', now()
               FROM (SELECT id FROM jobs WHERE status = 'failed' ORDER BY id LIMIT 10) f)");
  // Dead letters an operator resolved: 3 discarded and 2 requeued long ago go; one discarded
  // today and one never resolved stay, however old.
  execute(R"(INSERT INTO dead_letters (id, message_key, reason, dead_lettered_at, state,
                                       discarded_at, requeued_at)
             SELECT gen_random_uuid(), 'resolved-' || n, 'poison', now() - interval '50 days',
                    CASE WHEN n <= 3 OR n = 6 THEN 'discarded' WHEN n <= 5 THEN 'requeued'
                         ELSE 'dead' END,
                    CASE WHEN n <= 3 THEN now() - interval '40 days' WHEN n = 6 THEN now() END,
                    CASE WHEN n IN (4, 5) THEN now() - interval '40 days' END
             FROM generate_series(1, 7) n)");

  RetentionSettings settings;
  settings.batch_size = 7;  // many small batches
  pqxx::connection connection(database_->url());
  const auto report = run_retention(connection, settings);
  EXPECT_EQ(report.succeeded, 100);
  EXPECT_EQ(report.failed, 30);
  EXPECT_EQ(report.dead_letters, 5);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE message_key LIKE 'resolved-%'"), 2);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'"), 50);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'failed'"), 10);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'queued'"), 60);
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts"), 50);  // cascaded with their jobs
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox o LEFT JOIN jobs j ON j.id = o.job_id "
                      "WHERE j.id IS NULL"),
            0);
}

}  // namespace
}  // namespace warren::test

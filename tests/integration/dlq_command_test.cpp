// `warrenctl dlq` against a real stack: summary, list with paging, show, requeue one with an
// actor and a comment, a bulk requeue it follows to the end (with its progress bar when it runs
// on a terminal), refusals with the exit codes of RUNNING.md (1 failed, 2 bad usage).
#include <gtest/gtest.h>

#include <fstream>

#include "support/jobs.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class DlqCommand : public IntegrationTest {
 protected:
  json run_json(const std::vector<std::string>& args) {
    auto result = warrenctl(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return json::parse(result.out.empty() ? "null" : result.out);
  }
};

TEST_F(DlqCommand, SummaryListShowRequeueOneThenTheRestInBulk) {
  // A slow replay, so the bulk requeue runs long enough to draw progress.
  start_producer({{"WARREN_REPLAY_RATE", "20"}});
  start_consumer();
  const std::string file = test_env("WARREN_TEST_STACK_DIR") + "/dlq-" + prefix_ + ".jsonl";
  {
    std::ofstream out(file);
    for (int i = 0; i < 30; ++i) {
      out << R"({"type":"fail","payload":{"times":1,"message":"mail server down"},)"
          << R"("max_attempts":1})"
          << "\n";
    }
  }
  ASSERT_EQ(warrenctl({"submit", "--from", file}).exit_code, 0);
  ASSERT_TRUE(
      wait_until([&] { return query_int("SELECT count(*) FROM dead_letters") == 30; }, 30s));

  const json groups = run_json({"dlq", "summary", "--output", "json"})["groups"];
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0]["count"], 30);
  EXPECT_EQ(groups[0]["sample_message"], "mail server down");
  const auto table = warrenctl({"dlq", "summary", "--output", "table"});
  EXPECT_NE(table.out.find("SAMPLE MESSAGE"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("mail server down"), std::string::npos) << table.out;

  const json page =
      run_json({"dlq", "list", "--type", "fail", "--limit", "10", "--output", "json"});
  ASSERT_EQ(page["dead_letters"].size(), 10u);
  ASSERT_TRUE(page["next_cursor"].is_string());
  const json next = run_json({"dlq", "list", "--type", "fail", "--limit", "25", "--cursor",
                              page["next_cursor"].get<std::string>(), "--output", "json"});
  EXPECT_EQ(next["dead_letters"].size(), 20u);
  EXPECT_TRUE(next["next_cursor"].is_null());

  const std::string first = page["dead_letters"][0]["id"].get<std::string>();
  const auto shown = warrenctl({"dlq", "show", first, "--output", "table"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("attempts:"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("mail server down"), std::string::npos) << shown.out;

  const json requeued = run_json({"dlq", "requeue", first, "--comment", "trying one first", "--as",
                                  "alice", "--output", "json"});
  EXPECT_EQ(requeued["state"], "requeued");
  EXPECT_EQ(requeued["requeued_by"], "alice");
  EXPECT_EQ(requeued["audit"][0]["reason"], "trying one first");
  EXPECT_EQ(requeued["audit"][0]["details"]["first_attempt"], 2);

  // Again: refused, exit 1, and says why.
  const auto again = warrenctl({"dlq", "discard", first});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("already requeued"), std::string::npos) << again.err;
  // Bulk without ids or filters: bad usage.
  EXPECT_EQ(warrenctl({"dlq", "requeue"}).exit_code, 2);
  EXPECT_EQ(warrenctl({"dlq", "requeue", "--reason", "sleepy"}).exit_code, 2);

  // The rest in bulk, on a terminal (script(1) gives it one): progress is drawn, and the command
  // returns when the operation is done.
  std::string command = binary("warrenctl") +
                        " dlq requeue --type fail --comment 'smtp fixed' "
                        "--as bob --output json";
  auto env = warren_env();
  const auto bulk = run_command("/usr/bin/script", {"-qec", command, "/dev/null"}, env);
  ASSERT_EQ(bulk.exit_code, 0) << bulk.out << bulk.err;
  EXPECT_NE(bulk.out.find("matched 29 dead letters"), std::string::npos) << bulk.out;
  EXPECT_NE(bulk.out.find("requeue [###"), std::string::npos) << bulk.out;
  EXPECT_NE(bulk.out.find("29/29  100%"), std::string::npos) << bulk.out;
  EXPECT_NE(bulk.out.find("\"state\": \"done\""), std::string::npos) << bulk.out;

  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE state = 'requeued'"), 30);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letter_audit WHERE actor = 'bob' AND "
                      "reason = 'smtp fixed' AND operation_id IS NOT NULL"),
            29);
  ASSERT_TRUE(wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'") == 30; },
      30s));

  // Without a terminal: no progress drawing, just the result.
  const json operations = run_json({"dlq", "operation", "--output", "json"})["operations"];
  ASSERT_EQ(operations.size(), 1u);
  EXPECT_EQ(operations[0]["done"], 29);
  const auto followed = warrenctl(
      {"dlq", "operation", operations[0]["id"].get<std::string>(), "--wait", "--output", "json"});
  EXPECT_EQ(followed.exit_code, 0);
  EXPECT_EQ(followed.err.find('\r'), std::string::npos) << followed.err;
  EXPECT_EQ(json::parse(followed.out)["requested_by"], "bob");
}

}  // namespace
}  // namespace warren::test

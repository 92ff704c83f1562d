// The attempt store (consumer/attempt_store.h) against a real Postgres: every row of its rule
// table, checked on the exact rows it leaves in jobs, job_attempts, outbox and dead_letters;
// an outcome and a claim of one job in one batch; and two consumers' batches over the same
// jobs at once (no deadlock, no attempt started twice). The rules alone, without a database,
// are tested in tests/unit/attempt_store_test.cpp.
#include <gtest/gtest.h>

#include <future>
#include <latch>

#include "consumer/attempt_store.h"
#include "shared/db/connection_pool.h"
#include "shared/db/migrator.h"
#include "shared/retry_policy.h"
#include "shared/time_format.h"
#include "shared/uuid.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using consumer::AttemptEnd;
using consumer::BatchResult;
using consumer::ClaimRequest;
using consumer::ClaimVerdict;
using consumer::OutcomeRequest;
using consumer::OutcomeVerdict;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kWorker[] = "consumer-a";
constexpr char kPayload[] = R"({"n": 1})";

class AttemptStore : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    db_ = db::connect(database_->url());
    db::migrate(*db_);
    now_ = *parse_rfc3339("2030-06-01T12:00:00.000Z");
  }

  void TearDown() override {
    db_.reset();
    IntegrationTest::TearDown();
  }

  std::string at(milliseconds offset) const { return format_rfc3339_ms(now_ + offset); }
  static std::string quote(const std::string& text) { return "'" + text + "'"; }

  // A job row; `columns` replaces defaults with SQL expressions. Created a minute ago.
  std::string add_job(std::map<std::string, std::string> columns = {}) {
    const std::string id = new_uuid_v7();
    std::map<std::string, std::string> row{{"id", quote(id)},
                                           {"type", "'report.build'"},
                                           {"queue", "'default'"},
                                           {"status", "'queued'"},
                                           {"payload", quote(kPayload)},
                                           {"max_attempts", "3"},
                                           {"created_at", quote(at(-seconds(60)))},
                                           {"updated_at", quote(at(-seconds(60)))}};
    for (auto& [name, value] : columns) row[name] = value;
    std::string names, values;
    for (const auto& [name, value] : row) {
      names += (names.empty() ? "" : ", ") + name;
      values += (values.empty() ? "" : ", ") + value;
    }
    execute("INSERT INTO jobs (" + names + ") VALUES (" + values + ")");
    return id;
  }

  // A running job at `attempts` whose attempt runs on `worker`; earlier attempts failed.
  std::string add_running_job(int attempts, const std::string& worker, int max_attempts = 3,
                              bool cancel_requested = false) {
    std::map<std::string, std::string> columns{{"status", "'running'"},
                                               {"attempts", std::to_string(attempts)},
                                               {"max_attempts", std::to_string(max_attempts)},
                                               {"started_at", quote(at(-seconds(10)))}};
    if (cancel_requested) columns["cancel_requested"] = "true";
    const auto id = add_job(columns);
    for (int a = 1; a < attempts; ++a) add_attempt(id, a, "failed", "consumer-old");
    add_attempt(id, attempts, "", worker);
    return id;
  }

  void add_attempt(const std::string& job, int attempt, const std::string& outcome,
                   const std::string& worker) {
    execute(
        "INSERT INTO job_attempts (job_id, attempt, outcome, started_at, finished_at, "
        "worker) VALUES (" +
        quote(job) + ", " + std::to_string(attempt) + ", " +
        (outcome.empty() ? "NULL" : quote(outcome)) + ", " + quote(at(-seconds(10))) + ", " +
        (outcome.empty() ? "NULL" : quote(at(-seconds(9)))) + ", " + quote(worker) + ")");
  }

  // A workers row whose last heartbeat is `age` before now.
  void add_worker(const std::string& id, milliseconds age, int heartbeat_ms = 5000,
                  bool stopped = false) {
    execute(
        "INSERT INTO workers (id, host, queues, concurrency, heartbeat_ms, version, started_at, "
        "last_heartbeat_at, stopped_at) VALUES (" +
        quote(id) + ", 'host', '{default}', 4, " + std::to_string(heartbeat_ms) + ", 'test', " +
        quote(at(-seconds(3600))) + ", " + quote(at(-age)) + ", " +
        (stopped ? quote(at(-age)) : "NULL") + ")");
  }

  static JobMessage message(const std::string& id, int attempt) {
    JobMessage m;
    m.id = id;
    m.type = "report.build";
    m.queue = "default";
    m.payload_json = kPayload;
    m.max_attempts = 3;
    m.created_at = "2030-06-01T11:59:00.000Z";
    m.backoff = Backoff{.initial_ms = 1000, .factor = 2, .max_ms = 60000};
    m.attempt = attempt;
    m.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    return m;
  }

  static ClaimRequest claim(const std::string& id, int attempt, bool redelivered = false,
                            std::uint64_t key = 7) {
    ClaimRequest request;
    request.key = key;
    request.job = message(id, attempt);
    request.redelivered = redelivered;
    request.headers =
        amqp::FieldTable{{"x-warren-attempt", attempt}, {"x-warren-queue", "default"}};
    return request;
  }

  static OutcomeRequest outcome(const std::string& id, int attempt, AttemptEnd end,
                                const std::string& error_type = "",
                                const std::string& error_message = "") {
    OutcomeRequest request;
    request.key = 9;
    request.job = message(id, attempt);
    request.attempt = attempt;
    request.end = end;
    request.error_type = error_type;
    request.error_message = error_message;
    request.headers =
        amqp::FieldTable{{"x-warren-attempt", attempt}, {"x-warren-queue", "default"}};
    return request;
  }

  consumer::AttemptStoreSettings settings(const std::string& worker = kWorker) const {
    consumer::AttemptStoreSettings s;
    s.worker_id = worker;
    s.dead_exchange = prefix_ + ".dead";
    s.now = now_;
    return s;
  }

  BatchResult run(const std::vector<OutcomeRequest>& outcomes,
                  const std::vector<ClaimRequest>& claims) {
    pqxx::work tx(*db_);
    auto result = consumer::write_attempt_batch(tx, settings(), outcomes, claims);
    tx.commit();
    return result;
  }

  ClaimVerdict run_claim(const ClaimRequest& request, consumer::ClaimResult* out = nullptr) {
    auto result = run({}, {request});
    EXPECT_EQ(result.claims.size(), 1u);
    EXPECT_EQ(result.claims[0].key, request.key);
    if (out) *out = result.claims[0];
    return result.claims[0].verdict;
  }

  consumer::OutcomeResult run_outcome(const OutcomeRequest& request) {
    auto result = run({request}, {});
    EXPECT_EQ(result.outcomes.size(), 1u);
    return result.outcomes.at(0);
  }

  json job_row(const std::string& id) {
    return query_json(
               "SELECT status, attempts, result, last_error, warren_ts(started_at) AS started_at, "
               "warren_ts(finished_at) AS finished_at, warren_ts(next_attempt_at) AS "
               "next_attempt_at, "
               "warren_ts(updated_at) AS updated_at FROM jobs WHERE id = " +
               quote(id))
        .at(0);
  }

  json attempt_rows(const std::string& id) {
    return query_json(
        "SELECT attempt, outcome, error, warren_ts(started_at) AS started_at, "
        "warren_ts(finished_at) AS finished_at, worker, retry_delay_ms FROM job_attempts "
        "WHERE job_id = " +
        quote(id) + " ORDER BY attempt");
  }

  json dead_letter_rows() {
    return query_json(
        "SELECT id::text, message_key, job_id::text, type, queue, reason, error_type, "
        "error_message, attempts, warren_ts(dead_lettered_at) AS dead_lettered_at, state, "
        "payload, headers, exchange, routing_key FROM dead_letters ORDER BY dead_lettered_at, "
        "id");
  }

  // Everything the store may write, to show that a batch wrote nothing.
  json all_rows() {
    return json{{"jobs", query_json("SELECT * FROM jobs ORDER BY id")},
                {"attempts", query_json("SELECT * FROM job_attempts ORDER BY job_id, attempt")},
                {"outbox", query_json("SELECT * FROM outbox ORDER BY id")},
                {"dead_letters", query_json("SELECT * FROM dead_letters ORDER BY id")}};
  }

  json running_job(int attempts, const std::string& started_at) {
    return json{{"status", "running"},        {"attempts", attempts},
                {"result", nullptr},          {"last_error", nullptr},
                {"started_at", started_at},   {"finished_at", nullptr},
                {"next_attempt_at", nullptr}, {"updated_at", at(milliseconds(0))}};
  }

  json open_attempt(int attempt, const std::string& worker = kWorker) {
    return json{{"attempt", attempt},       {"outcome", nullptr},
                {"error", nullptr},         {"started_at", at(milliseconds(0))},
                {"finished_at", nullptr},   {"worker", worker},
                {"retry_delay_ms", nullptr}};
  }

  json failed_attempt(int attempt) {
    return json{{"attempt", attempt},
                {"outcome", "failed"},
                {"error", nullptr},
                {"started_at", at(-seconds(10))},
                {"finished_at", at(-seconds(9))},
                {"worker", "consumer-old"},
                {"retry_delay_ms", nullptr}};
  }

  json closed_attempt(int attempt, const std::string& outcome, const json& error,
                      const std::string& worker, const std::string& started_at,
                      json retry_delay_ms = nullptr) {
    return json{{"attempt", attempt},
                {"outcome", outcome},
                {"error", error},
                {"started_at", started_at},
                {"finished_at", at(milliseconds(0))},
                {"worker", worker},
                {"retry_delay_ms", retry_delay_ms}};
  }

  // The dead_letters row a dead letter of this batch must be, whole.
  json expected_dead_letter(const consumer::DeadLetterRecord& record, const std::string& job,
                            const std::string& reason, const json& error_type,
                            const json& error_message, int attempts,
                            const amqp::FieldTable& delivery_headers) {
    json headers = consumer::dead_letter_headers(delivery_headers, record);
    return json{{"id", record.id},
                {"message_key", job + "/" + std::to_string(attempts)},
                {"job_id", job},
                {"type", "report.build"},
                {"queue", "default"},
                {"reason", reason},
                {"error_type", error_type},
                {"error_message", error_message},
                {"attempts", attempts},
                {"dead_lettered_at", at(milliseconds(0))},
                {"state", "dead"},
                {"payload", json::parse(kPayload)},
                {"headers", headers},
                {"exchange", prefix_ + ".dead"},
                {"routing_key", "default"}};
  }

  // A transaction of a third session holding one job's row lock: batches started meanwhile
  // get stuck in the middle of taking their locks, so that they really overlap.
  struct Blocker {
    std::unique_ptr<pqxx::connection> connection;
    std::unique_ptr<pqxx::work> tx;
  };
  std::unique_ptr<Blocker> hold_lock(const std::string& job) {
    auto blocker = std::make_unique<Blocker>();
    blocker->connection = db::connect(database_->url());
    blocker->tx = std::make_unique<pqxx::work>(*blocker->connection);
    blocker->tx->exec("SELECT 1 FROM jobs WHERE id = " + quote(job) + " FOR UPDATE");
    return blocker;
  }
  // Lets go once two sessions wait for a lock (one for the blocker's, one for the first
  // batch's), or after two seconds.
  void release_when_both_wait(Blocker& blocker) {
    wait_until(
        [&] {
          return query_int(
                     "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                     "current_database() AND wait_event_type = 'Lock'") >= 2;
        },
        seconds(2), milliseconds(5));
    blocker.tx->commit();
  }

  std::unique_ptr<pqxx::connection> db_;
  std::chrono::system_clock::time_point now_;
};

// ---- Claims -------------------------------------------------------------------------------

TEST_F(AttemptStore, ClaimOfAQueuedJobStartsAttemptOne) {
  const auto id = add_job();
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(claim(id, 1), &result), ClaimVerdict::kStart);
  EXPECT_EQ(result.attempt, 1);
  EXPECT_EQ(result.queue_wait, seconds(60));  // created a minute ago
  EXPECT_FALSE(result.closed_lost_attempt.has_value());
  EXPECT_FALSE(result.dead_letter.has_value());
  EXPECT_EQ(job_row(id), running_job(1, at(milliseconds(0))));
  EXPECT_EQ(attempt_rows(id), json::array({open_attempt(1)}));
}

TEST_F(AttemptStore, ClaimOfADueScheduledJobCountsTheWaitFromItsTime) {
  const auto id = add_job({{"status", "'scheduled'"}, {"scheduled_for", quote(at(-seconds(5)))}});
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(claim(id, 1), &result), ClaimVerdict::kStart);
  EXPECT_EQ(result.attempt, 1);
  EXPECT_EQ(result.queue_wait, seconds(5));
  EXPECT_EQ(job_row(id), running_job(1, at(milliseconds(0))));
  EXPECT_EQ(attempt_rows(id), json::array({open_attempt(1)}));
}

TEST_F(AttemptStore, RetryingJobStartsFromTheRetryMessageAndDropsOlderCopies) {
  const json error = {{"type", "http_503"}, {"message", "busy"}};
  const auto id = add_job({{"status", "'retrying'"},
                           {"attempts", "1"},
                           {"last_error", quote(error.dump())},
                           {"started_at", quote(at(-seconds(10)))},
                           {"next_attempt_at", quote(at(-milliseconds(2500)))}});
  add_attempt(id, 1, "failed", "consumer-old");
  const auto before = all_rows();

  consumer::ClaimResult stale;
  EXPECT_EQ(run_claim(claim(id, 1, true), &stale), ClaimVerdict::kDuplicate);
  EXPECT_EQ(stale.duplicate_reason, "stale");
  EXPECT_EQ(all_rows(), before);

  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(claim(id, 2), &result), ClaimVerdict::kStart);
  EXPECT_EQ(result.attempt, 2);
  EXPECT_EQ(result.queue_wait, milliseconds(2500));
  auto expected = running_job(2, at(milliseconds(0)));
  expected["last_error"] = error;
  EXPECT_EQ(job_row(id), expected);
  EXPECT_EQ(attempt_rows(id), json::array({failed_attempt(1), open_attempt(2)}));
}

TEST_F(AttemptStore, FirstCopyOfARunningJobWithALiveWorkerIsADuplicate) {
  add_worker("consumer-b", seconds(1));
  const auto id = add_running_job(1, "consumer-b");
  const auto before = all_rows();
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(claim(id, 1), &result), ClaimVerdict::kDuplicate);
  EXPECT_EQ(result.duplicate_reason, "running");
  EXPECT_EQ(result.attempt, 0);
  EXPECT_EQ(all_rows(), before);
}

TEST_F(AttemptStore, RedeliveredCopyClosesTheRunningAttemptAsLostAndStartsTheNext) {
  add_worker("consumer-b", seconds(1));
  const auto id = add_running_job(1, "consumer-b");
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(claim(id, 1, true), &result), ClaimVerdict::kStart);
  EXPECT_EQ(result.attempt, 2);
  EXPECT_EQ(result.closed_lost_attempt, 1);
  EXPECT_EQ(result.queue_wait, milliseconds(0));
  const json lost = {{"type", "worker_lost"},
                     {"message",
                      "the message was redelivered while attempt 1 on worker consumer-b was "
                      "running: its consumer lost it"}};
  auto expected = running_job(2, at(milliseconds(0)));
  expected["last_error"] = lost;
  EXPECT_EQ(job_row(id), expected);
  EXPECT_EQ(attempt_rows(id),
            json::array({closed_attempt(1, "lost", lost, "consumer-b", at(-seconds(10))),
                         open_attempt(2)}));
}

TEST_F(AttemptStore, AttemptOfAGoneWorkerIsLostWhateverMadeItGone) {
  // heartbeat_ms 5000: alive while the last heartbeat is less than 15 s old.
  add_worker("consumer-late", milliseconds(15000));
  add_worker("consumer-stopped", seconds(1), 5000, true);
  add_worker("consumer-alive", milliseconds(14999));
  add_worker("consumer-slow", seconds(20), 10000);  // 3 x 10 s: still alive
  const auto late = add_running_job(1, "consumer-late");
  const auto stopped = add_running_job(1, "consumer-stopped");
  const auto unknown = add_running_job(1, "consumer-never-registered");
  const auto alive = add_running_job(1, "consumer-alive");
  const auto slow = add_running_job(1, "consumer-slow");

  auto result =
      run({}, {claim(late, 1, false, 1), claim(stopped, 1, false, 2), claim(unknown, 1, false, 3),
               claim(alive, 1, false, 4), claim(slow, 1, false, 5)});
  ASSERT_EQ(result.claims.size(), 5u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(result.claims[i].key, i + 1);
    EXPECT_EQ(result.claims[i].verdict, ClaimVerdict::kStart) << i;
    EXPECT_EQ(result.claims[i].attempt, 2) << i;
    EXPECT_EQ(result.claims[i].closed_lost_attempt, 1) << i;
  }
  EXPECT_EQ(result.claims[3].verdict, ClaimVerdict::kDuplicate);
  EXPECT_EQ(result.claims[3].duplicate_reason, "running");
  EXPECT_EQ(result.claims[4].verdict, ClaimVerdict::kDuplicate);

  for (const auto& [id, worker] :
       {std::pair{late, "consumer-late"}, std::pair{stopped, "consumer-stopped"},
        std::pair{unknown, "consumer-never-registered"}}) {
    const json lost = {{"type", "worker_lost"},
                       {"message", std::string("attempt 1 on worker ") + worker +
                                       " was running when the worker stopped or stopped "
                                       "heartbeating"}};
    EXPECT_EQ(
        attempt_rows(id),
        json::array({closed_attempt(1, "lost", lost, worker, at(-seconds(10))), open_attempt(2)}))
        << worker;
    EXPECT_EQ(job_row(id)["last_error"], lost);
  }
  EXPECT_EQ(job_row(alive)["attempts"], 1);
  EXPECT_EQ(job_row(slow)["attempts"], 1);
}

TEST_F(AttemptStore, OldCopyOfARunningJobIsStaleEvenWhenRedelivered) {
  // Attempt 3 runs from the retry message of attempt 2: a copy of attempt 2's message (its
  // consumer died after committing the retry, before the ack) must not take the job over.
  add_worker("consumer-b", seconds(1));
  const auto id = add_running_job(3, "consumer-b", 5);
  const auto before = all_rows();
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(claim(id, 2, true), &result), ClaimVerdict::kDuplicate);
  EXPECT_EQ(result.duplicate_reason, "stale");
  EXPECT_EQ(all_rows(), before);
}

TEST_F(AttemptStore, TerminalAndCancelledJobsAreDuplicates) {
  const auto succeeded = add_job({{"status", "'succeeded'"}, {"attempts", "1"}});
  const auto failed = add_job({{"status", "'failed'"}, {"attempts", "3"}});
  const auto cancelled = add_job({{"status", "'cancelled'"}});
  const auto before = all_rows();
  auto result = run({}, {claim(succeeded, 1, true), claim(failed, 4), claim(cancelled, 1)});
  ASSERT_EQ(result.claims.size(), 3u);
  const char* reasons[] = {"terminal", "terminal", "cancelled"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(result.claims[i].verdict, ClaimVerdict::kDuplicate);
    EXPECT_EQ(result.claims[i].duplicate_reason, reasons[i]);
  }
  EXPECT_EQ(all_rows(), before);
}

TEST_F(AttemptStore, LostLastAttemptFailsTheJobWithADeadLetter) {
  const auto id = add_running_job(3, "consumer-gone", 3);
  auto request = claim(id, 3, true);
  request.headers.set("x-death", amqp::FieldArray{amqp::FieldTable{{"count", 1}}});
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(request, &result), ClaimVerdict::kGaveUp);
  EXPECT_EQ(result.closed_lost_attempt, 3);
  ASSERT_TRUE(result.dead_letter.has_value());
  const auto& record = *result.dead_letter;
  const std::string message =
      "attempt 3 on worker consumer-gone was running when the worker stopped or stopped "
      "heartbeating";
  EXPECT_TRUE(is_canonical_uuid(record.id));
  EXPECT_EQ(record.reason, "max_attempts");
  EXPECT_EQ(record.error_type, "worker_lost");
  EXPECT_EQ(record.error_message, message);
  EXPECT_EQ(record.attempts, 3);
  EXPECT_EQ(record.failed_at, at(milliseconds(0)));

  const json lost = {{"type", "worker_lost"}, {"message", message}};
  EXPECT_EQ(job_row(id), (json{{"status", "failed"},
                               {"attempts", 3},
                               {"result", nullptr},
                               {"last_error", lost},
                               {"started_at", at(-seconds(10))},
                               {"finished_at", at(milliseconds(0))},
                               {"next_attempt_at", nullptr},
                               {"updated_at", at(milliseconds(0))}}));
  EXPECT_EQ(attempt_rows(id),
            json::array({failed_attempt(1), failed_attempt(2),
                         closed_attempt(3, "lost", lost, "consumer-gone", at(-seconds(10)))}));
  const auto rows = dead_letter_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], expected_dead_letter(record, id, "max_attempts", "worker_lost", message, 3,
                                          request.headers));
  EXPECT_EQ(rows[0]["headers"]["x-warren-dead-letter-id"], record.id);
  EXPECT_EQ(rows[0]["headers"]["x-death"], json::parse(R"([{"count": 1}])"));
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox"), 0);
}

TEST_F(AttemptStore, QueuedJobWithoutAttemptsLeftGivesUpWithItsLastError) {
  // The last attempt was interrupted by a shutdown (lost, job queued): its redelivery finds
  // no attempt left.
  const json error = {{"type", "worker_shutdown"}, {"message", "consumer shut down"}};
  const auto id = add_job({{"attempts", "3"}, {"last_error", quote(error.dump())}});
  add_attempt(id, 1, "failed", "consumer-old");
  add_attempt(id, 2, "failed", "consumer-old");
  add_attempt(id, 3, "lost", "consumer-old");
  const auto attempts_before = attempt_rows(id);
  consumer::ClaimResult result;
  const auto request = claim(id, 3, true);
  EXPECT_EQ(run_claim(request, &result), ClaimVerdict::kGaveUp);
  EXPECT_FALSE(result.closed_lost_attempt.has_value());
  ASSERT_TRUE(result.dead_letter.has_value());
  EXPECT_EQ(result.dead_letter->error_type, "worker_shutdown");
  EXPECT_EQ(attempt_rows(id), attempts_before);
  EXPECT_EQ(job_row(id)["status"], "failed");
  EXPECT_EQ(job_row(id)["last_error"], error);
  const auto rows = dead_letter_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0],
            expected_dead_letter(*result.dead_letter, id, "max_attempts", "worker_shutdown",
                                 "consumer shut down", 3, request.headers));
}

TEST_F(AttemptStore, LostAttemptOfACancelRequestedJobCancelsIt) {
  const auto id = add_running_job(1, "consumer-gone", 3, true);
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(claim(id, 1, true), &result), ClaimVerdict::kCancelled);
  EXPECT_EQ(result.closed_lost_attempt, 1);
  EXPECT_EQ(result.attempt, 0);
  const auto row = job_row(id);
  EXPECT_EQ(row["status"], "cancelled");
  EXPECT_EQ(row["attempts"], 1);
  EXPECT_EQ(row["finished_at"], at(milliseconds(0)));
  EXPECT_EQ(attempt_rows(id)[0]["outcome"], "lost");
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters"), 0);
}

TEST_F(AttemptStore, MissingJobRowIsCreatedFromTheMessageThenStarted) {
  const std::string id = new_uuid_v7();
  auto request = claim(id, 1);
  request.job.timeout_ms = 30000;
  consumer::ClaimResult result;
  EXPECT_EQ(run_claim(request, &result), ClaimVerdict::kStart);
  EXPECT_EQ(result.attempt, 1);
  EXPECT_EQ(result.queue_wait, seconds(60));  // the message was created a minute ago
  const auto row = query_json(
      "SELECT type, queue, status, payload, metadata, attempts, max_attempts, timeout_ms, "
      "backoff, traceparent, warren_ts(created_at) AS created_at, warren_ts(started_at) AS "
      "started_at, warren_ts(updated_at) AS updated_at FROM jobs WHERE id = " +
      quote(id));
  EXPECT_EQ(row, json::array({json{{"type", "report.build"},
                                   {"queue", "default"},
                                   {"status", "running"},
                                   {"payload", json::parse(kPayload)},
                                   {"metadata", json::object()},
                                   {"attempts", 1},
                                   {"max_attempts", 3},
                                   {"timeout_ms", 30000},
                                   {"backoff", json::parse(R"({"initial_ms": 1000, "factor": 2.0,
                                                               "max_ms": 60000})")},
                                   {"traceparent", request.job.traceparent},
                                   {"created_at", "2030-06-01T11:59:00.000Z"},
                                   {"started_at", at(milliseconds(0))},
                                   {"updated_at", at(milliseconds(0))}}}));
  EXPECT_EQ(attempt_rows(id), json::array({open_attempt(1)}));
}

// ---- Outcomes -----------------------------------------------------------------------------

TEST_F(AttemptStore, SuccessStoresTheResult) {
  const auto id = add_running_job(2, kWorker);
  auto request = outcome(id, 2, AttemptEnd::kSucceeded);
  request.result = json{{"rows", 42}, {"note", std::string("a\0b", 3)}};
  const auto result = run_outcome(request);
  EXPECT_EQ(result.key, 9u);
  EXPECT_EQ(result.verdict, OutcomeVerdict::kSucceeded);
  EXPECT_EQ(result.attempt_outcome, "succeeded");
  EXPECT_EQ(job_row(id), (json{{"status", "succeeded"},
                               {"attempts", 2},
                               {"result", {{"rows", 42}, {"note", "ab"}}},
                               {"last_error", nullptr},
                               {"started_at", at(-seconds(10))},
                               {"finished_at", at(milliseconds(0))},
                               {"next_attempt_at", nullptr},
                               {"updated_at", at(milliseconds(0))}}));
  EXPECT_EQ(attempt_rows(id),
            json::array({failed_attempt(1),
                         closed_attempt(2, "succeeded", nullptr, kWorker, at(-seconds(10)))}));
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox") + query_int("SELECT count(*) FROM "
                                                                 "dead_letters"),
            0);
}

TEST_F(AttemptStore, SuccessWithoutResultStoresNull) {
  const auto id = add_running_job(1, kWorker);
  EXPECT_EQ(run_outcome(outcome(id, 1, AttemptEnd::kSucceeded)).verdict,
            OutcomeVerdict::kSucceeded);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE result IS NULL AND status = 'succeeded'"),
            1);
}

TEST_F(AttemptStore, RetryableFailureSchedulesTheRetryThroughTheOutbox) {
  const auto id = add_running_job(2, kWorker, 3);
  const auto result = run_outcome(outcome(id, 2, AttemptEnd::kFailed, "http_503", "busy"));
  EXPECT_EQ(result.verdict, OutcomeVerdict::kRetryScheduled);
  EXPECT_EQ(result.attempt_outcome, "failed");
  // Backoff 1000 ms x 2^(2-1) = 2000 ms, equal jitter: 1000 .. 2000 ms.
  const auto base = base_delay_ms(message(id, 2).backoff, 2);
  ASSERT_EQ(base, 2000);
  EXPECT_GE(result.retry_delay.count(), base - base / 2);
  EXPECT_LE(result.retry_delay.count(), base);
  EXPECT_GT(result.outbox_id, 0);
  EXPECT_FALSE(result.dead_letter.has_value());

  const json error = {{"type", "http_503"}, {"message", "busy"}};
  const auto due = at(result.retry_delay);
  EXPECT_EQ(job_row(id), (json{{"status", "retrying"},
                               {"attempts", 2},
                               {"result", nullptr},
                               {"last_error", error},
                               {"started_at", at(-seconds(10))},
                               {"finished_at", nullptr},
                               {"next_attempt_at", due},
                               {"updated_at", at(milliseconds(0))}}));
  EXPECT_EQ(
      attempt_rows(id),
      json::array({failed_attempt(1), closed_attempt(2, "failed", error, kWorker, at(-seconds(10)),
                                                     result.retry_delay.count())}));
  EXPECT_EQ(query_json("SELECT id, job_id::text, kind, warren_ts(available_at) AS available_at, "
                       "warren_ts(deliver_at) AS deliver_at, warren_ts(created_at) AS "
                       "created_at FROM outbox"),
            json::array({json{{"id", result.outbox_id},
                              {"job_id", id},
                              {"kind", "retry"},
                              {"available_at", at(consumer::kRetryOutboxLease)},
                              {"deliver_at", due},
                              {"created_at", at(milliseconds(0))}}}));

  // Once the broker confirmed the retry, the consumer removes the row.
  {
    pqxx::work tx(*db_);
    consumer::delete_outbox_rows(tx, {result.outbox_id, result.outbox_id + 1000});
    consumer::delete_outbox_rows(tx, {});
    tx.commit();
  }
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox"), 0);
}

TEST_F(AttemptStore, RequestedRetryDelayWinsOverTheBackoff) {
  const auto id = add_running_job(1, kWorker, 3);
  auto request = outcome(id, 1, AttemptEnd::kFailed, "http_429", "slow down");
  request.requested_retry_delay = milliseconds(12345);
  const auto result = run_outcome(request);
  EXPECT_EQ(result.verdict, OutcomeVerdict::kRetryScheduled);
  EXPECT_EQ(result.retry_delay, milliseconds(12345));
  EXPECT_EQ(job_row(id)["next_attempt_at"], at(milliseconds(12345)));
  EXPECT_EQ(attempt_rows(id)[0]["retry_delay_ms"], 12345);
  EXPECT_EQ(query_json("SELECT warren_ts(deliver_at) AS d FROM outbox"),
            json::array({json{{"d", at(milliseconds(12345))}}}));
}

TEST_F(AttemptStore, TimeoutIsRetriedLikeAFailure) {
  const auto id = add_running_job(1, kWorker, 3);
  const auto result =
      run_outcome(outcome(id, 1, AttemptEnd::kTimedOut, "timeout", "attempt exceeded 30000 ms"));
  EXPECT_EQ(result.verdict, OutcomeVerdict::kRetryScheduled);
  EXPECT_EQ(result.attempt_outcome, "timed_out");
  EXPECT_GE(result.retry_delay, milliseconds(500));
  EXPECT_LE(result.retry_delay, milliseconds(1000));
  const json error = {{"type", "timeout"}, {"message", "attempt exceeded 30000 ms"}};
  EXPECT_EQ(attempt_rows(id),
            json::array({closed_attempt(1, "timed_out", error, kWorker, at(-seconds(10)),
                                        result.retry_delay.count())}));
  EXPECT_EQ(job_row(id)["status"], "retrying");
  EXPECT_EQ(job_row(id)["last_error"], error);
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox WHERE kind = 'retry'"), 1);
}

TEST_F(AttemptStore, PermanentFailureDeadLettersAtOnce) {
  const auto id = add_running_job(1, kWorker, 5);
  auto request = outcome(id, 1, AttemptEnd::kPermanentFailure, "invalid_address",
                         "no @ in " + std::string(5000, 'x'));
  const auto result = run_outcome(request);
  EXPECT_EQ(result.verdict, OutcomeVerdict::kDeadLettered);
  EXPECT_EQ(result.attempt_outcome, "permanent_failure");
  ASSERT_TRUE(result.dead_letter.has_value());
  const std::string cut = ("no @ in " + std::string(5000, 'x')).substr(0, 4096);
  EXPECT_EQ(result.dead_letter->error_message, cut);
  const json error = {{"type", "invalid_address"}, {"message", cut}};
  EXPECT_EQ(job_row(id), (json{{"status", "failed"},
                               {"attempts", 1},
                               {"result", nullptr},
                               {"last_error", error},
                               {"started_at", at(-seconds(10))},
                               {"finished_at", at(milliseconds(0))},
                               {"next_attempt_at", nullptr},
                               {"updated_at", at(milliseconds(0))}}));
  EXPECT_EQ(
      attempt_rows(id),
      json::array({closed_attempt(1, "permanent_failure", error, kWorker, at(-seconds(10)))}));
  const auto rows = dead_letter_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], expected_dead_letter(*result.dead_letter, id, "permanent_failure",
                                          "invalid_address", cut, 1, request.headers));
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox"), 0);
}

TEST_F(AttemptStore, FailureOfTheLastAttemptDeadLettersMaxAttempts) {
  const auto id = add_running_job(3, kWorker, 3);
  auto request = outcome(id, 3, AttemptEnd::kTimedOut, "timeout", "attempt exceeded 5 ms");
  const auto result = run_outcome(request);
  EXPECT_EQ(result.verdict, OutcomeVerdict::kDeadLettered);
  EXPECT_EQ(result.attempt_outcome, "timed_out");
  EXPECT_EQ(result.retry_delay, milliseconds(0));
  ASSERT_TRUE(result.dead_letter.has_value());
  EXPECT_EQ(result.dead_letter->reason, "max_attempts");
  EXPECT_EQ(result.dead_letter->attempts, 3);
  const json error = {{"type", "timeout"}, {"message", "attempt exceeded 5 ms"}};
  EXPECT_EQ(attempt_rows(id)[2], closed_attempt(3, "timed_out", error, kWorker, at(-seconds(10))));
  EXPECT_EQ(job_row(id)["status"], "failed");
  const auto rows = dead_letter_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], expected_dead_letter(*result.dead_letter, id, "max_attempts", "timeout",
                                          "attempt exceeded 5 ms", 3, request.headers));
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox"), 0);
}

TEST_F(AttemptStore, CancelledAttemptCancelsTheJob) {
  const auto id = add_running_job(1, kWorker);
  const auto result =
      run_outcome(outcome(id, 1, AttemptEnd::kCancelled, "cancelled", "on request"));
  EXPECT_EQ(result.verdict, OutcomeVerdict::kCancelled);
  EXPECT_EQ(result.attempt_outcome, "cancelled");
  const json error = {{"type", "cancelled"}, {"message", "on request"}};
  EXPECT_EQ(job_row(id), (json{{"status", "cancelled"},
                               {"attempts", 1},
                               {"result", nullptr},
                               {"last_error", error},
                               {"started_at", at(-seconds(10))},
                               {"finished_at", at(milliseconds(0))},
                               {"next_attempt_at", nullptr},
                               {"updated_at", at(milliseconds(0))}}));
  EXPECT_EQ(attempt_rows(id),
            json::array({closed_attempt(1, "cancelled", error, kWorker, at(-seconds(10)))}));
}

TEST_F(AttemptStore, FailureOfACancelRequestedJobCancelsIt) {
  const auto id = add_running_job(1, kWorker, 3, true);
  const auto result = run_outcome(outcome(id, 1, AttemptEnd::kFailed, "http_503", "busy"));
  EXPECT_EQ(result.verdict, OutcomeVerdict::kCancelled);
  EXPECT_EQ(result.attempt_outcome, "cancelled");
  EXPECT_EQ(job_row(id)["status"], "cancelled");
  EXPECT_EQ(attempt_rows(id)[0]["outcome"], "cancelled");
  EXPECT_EQ(
      query_int("SELECT count(*) FROM outbox") + query_int("SELECT count(*) FROM dead_letters"), 0);
}

TEST_F(AttemptStore, InterruptedAttemptIsLostAndTheJobQueuedForItsRedelivery) {
  const auto id = add_running_job(1, kWorker, 3);
  const auto result =
      run_outcome(outcome(id, 1, AttemptEnd::kInterrupted, "worker_shutdown", "shutting down"));
  EXPECT_EQ(result.verdict, OutcomeVerdict::kRequeued);
  EXPECT_EQ(result.attempt_outcome, "lost");
  const json error = {{"type", "worker_shutdown"}, {"message", "shutting down"}};
  EXPECT_EQ(job_row(id), (json{{"status", "queued"},
                               {"attempts", 1},
                               {"result", nullptr},
                               {"last_error", error},
                               {"started_at", at(-seconds(10))},
                               {"finished_at", nullptr},
                               {"next_attempt_at", at(milliseconds(0))},
                               {"updated_at", at(milliseconds(0))}}));
  EXPECT_EQ(attempt_rows(id),
            json::array({closed_attempt(1, "lost", error, kWorker, at(-seconds(10)))}));
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox"), 0);

  // The requeued message comes back (redelivered) and starts attempt 2.
  consumer::ClaimResult claimed;
  EXPECT_EQ(run_claim(claim(id, 1, true), &claimed), ClaimVerdict::kStart);
  EXPECT_EQ(claimed.attempt, 2);
  EXPECT_FALSE(claimed.closed_lost_attempt.has_value());
  EXPECT_EQ(job_row(id)["attempts"], 2);
}

TEST_F(AttemptStore, StaleOutcomeWritesNothing) {
  // Attempt 1 was declared lost by another consumer, which runs attempt 2 now.
  add_worker("consumer-b", seconds(1));
  const auto id = add_job({{"status", "'running'"}, {"attempts", "2"}});
  add_attempt(id, 1, "lost", kWorker);
  add_attempt(id, 2, "", "consumer-b");
  const auto finished = add_job({{"status", "'succeeded'"}, {"attempts", "1"}});
  add_attempt(finished, 1, "succeeded", kWorker);
  const std::string missing = new_uuid_v7();
  const auto before = all_rows();
  auto result =
      run({outcome(id, 1, AttemptEnd::kSucceeded), outcome(id, 1, AttemptEnd::kFailed, "boom", "x"),
           outcome(finished, 1, AttemptEnd::kPermanentFailure, "late", "x"),
           outcome(missing, 1, AttemptEnd::kFailed, "gone", "x")},
          {});
  ASSERT_EQ(result.outcomes.size(), 4u);
  for (const auto& outcome : result.outcomes) {
    EXPECT_EQ(outcome.verdict, OutcomeVerdict::kStale);
    EXPECT_EQ(outcome.attempt_outcome, "");
    EXPECT_EQ(outcome.outbox_id, 0);
    EXPECT_FALSE(outcome.dead_letter.has_value());
  }
  EXPECT_EQ(all_rows(), before);
}

TEST_F(AttemptStore, OutcomeAndClaimOfOneJobInOneBatchSeeEachOther) {
  // A consumer reconnecting after losing the broker: the interrupted attempt 1 and the
  // redelivered message of the same job arrive in one batch.
  const auto requeued = add_running_job(1, kWorker, 3);
  // And a job whose retry message is already back, in the batch that schedules the retry.
  const auto retried = add_running_job(1, kWorker, 3);
  // And a success followed by a duplicate copy of its message.
  const auto done = add_running_job(1, kWorker, 3);
  auto result =
      run({outcome(requeued, 1, AttemptEnd::kInterrupted, "connection_lost", "broker gone"),
           outcome(retried, 1, AttemptEnd::kFailed, "http_503", "busy"),
           outcome(done, 1, AttemptEnd::kSucceeded)},
          {claim(requeued, 1, true, 1), claim(retried, 2, false, 2), claim(retried, 1, true, 3),
           claim(done, 1, true, 4)});
  ASSERT_EQ(result.outcomes.size(), 3u);
  EXPECT_EQ(result.outcomes[0].verdict, OutcomeVerdict::kRequeued);
  EXPECT_EQ(result.outcomes[1].verdict, OutcomeVerdict::kRetryScheduled);
  EXPECT_GT(result.outcomes[1].outbox_id, 0);
  EXPECT_EQ(result.outcomes[2].verdict, OutcomeVerdict::kSucceeded);
  ASSERT_EQ(result.claims.size(), 4u);
  EXPECT_EQ(result.claims[0].verdict, ClaimVerdict::kStart);
  EXPECT_EQ(result.claims[0].attempt, 2);
  EXPECT_EQ(result.claims[0].queue_wait, milliseconds(0));
  EXPECT_EQ(result.claims[1].verdict, ClaimVerdict::kStart);
  EXPECT_EQ(result.claims[1].attempt, 2);
  EXPECT_EQ(result.claims[1].queue_wait, milliseconds(0));  // the retry came early
  EXPECT_EQ(result.claims[2].verdict, ClaimVerdict::kDuplicate);
  EXPECT_EQ(result.claims[2].duplicate_reason, "stale");
  EXPECT_EQ(result.claims[3].verdict, ClaimVerdict::kDuplicate);
  EXPECT_EQ(result.claims[3].duplicate_reason, "terminal");

  const json interrupted = {{"type", "connection_lost"}, {"message", "broker gone"}};
  EXPECT_EQ(attempt_rows(requeued),
            json::array({closed_attempt(1, "lost", interrupted, kWorker, at(-seconds(10))),
                         open_attempt(2)}));
  auto expected = running_job(2, at(milliseconds(0)));
  expected["last_error"] = interrupted;
  EXPECT_EQ(job_row(requeued), expected);

  const json busy = {{"type", "http_503"}, {"message", "busy"}};
  EXPECT_EQ(attempt_rows(retried),
            json::array({closed_attempt(1, "failed", busy, kWorker, at(-seconds(10)),
                                        result.outcomes[1].retry_delay.count()),
                         open_attempt(2)}));
  EXPECT_EQ(job_row(retried)["status"], "running");
  EXPECT_EQ(job_row(retried)["next_attempt_at"], nullptr);
  EXPECT_EQ(job_row(done)["status"], "succeeded");
  EXPECT_EQ(attempt_rows(done).size(), 1u);
}

// Two consumers whose batches hold copies of the same jobs, in opposite orders, at the same
// moment: each job is started exactly once, and the ordered locks never deadlock.
TEST_F(AttemptStore, ConcurrentBatchesNeverDeadlockNorStartAnAttemptTwice) {
  add_worker("consumer-a", milliseconds(0));
  add_worker("consumer-b", milliseconds(0));
  auto a = db::connect(database_->url());
  auto b = db::connect(database_->url());
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<std::string> ids;
    for (int i = 0; i < 12; ++i) ids.push_back(i < 10 ? add_job() : new_uuid_v7());
    std::vector<ClaimRequest> forward, backward;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      forward.push_back(claim(ids[i], 1, false, i));
      backward.insert(backward.begin(), claim(ids[i], 1, false, i));
    }
    std::latch start(2);
    auto batch = [&](pqxx::connection& connection, const std::string& worker,
                     const std::vector<ClaimRequest>& claims) {
      start.arrive_and_wait();
      pqxx::work tx(connection);
      auto result = consumer::write_attempt_batch(tx, settings(worker), {}, claims);
      tx.commit();
      return result;
    };
    auto blocker = hold_lock(ids[5]);
    auto first = std::async(std::launch::async, batch, std::ref(*a), "consumer-a", forward);
    auto second = std::async(std::launch::async, batch, std::ref(*b), "consumer-b", backward);
    release_when_both_wait(*blocker);
    BatchResult ra, rb;
    ASSERT_NO_THROW(ra = first.get());
    ASSERT_NO_THROW(rb = second.get());
    std::map<std::uint64_t, int> starts;
    for (const auto* result : {&ra, &rb}) {
      ASSERT_EQ(result->claims.size(), ids.size());
      for (const auto& c : result->claims) {
        if (c.verdict == ClaimVerdict::kStart) {
          EXPECT_EQ(c.attempt, 1);
          ++starts[c.key];
        } else {
          EXPECT_EQ(c.verdict, ClaimVerdict::kDuplicate);
          EXPECT_EQ(c.duplicate_reason, "running");
        }
      }
    }
    for (std::size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(starts[i], 1) << ids[i];

    // Then both end what they started and re-claim each other's jobs, again crosswise.
    auto ends = [&](const BatchResult& result) {
      std::vector<OutcomeRequest> outcomes;
      for (const auto& c : result.claims) {
        if (c.verdict == ClaimVerdict::kStart) {
          outcomes.push_back(outcome(ids[c.key], 1, AttemptEnd::kFailed, "boom", "x"));
        }
      }
      return outcomes;
    };
    std::latch again(2);
    auto finish = [&](pqxx::connection& connection, const std::string& worker,
                      const std::vector<OutcomeRequest>& outcomes,
                      const std::vector<ClaimRequest>& claims) {
      again.arrive_and_wait();
      pqxx::work tx(connection);
      auto result = consumer::write_attempt_batch(tx, settings(worker), outcomes, claims);
      tx.commit();
      return result;
    };
    std::vector<ClaimRequest> retries_forward, retries_backward;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      retries_forward.push_back(claim(ids[i], 2, false, i));
      retries_backward.insert(retries_backward.begin(), claim(ids[i], 2, false, i));
    }
    blocker = hold_lock(ids[5]);
    auto third = std::async(std::launch::async, finish, std::ref(*a), "consumer-a", ends(ra),
                            retries_backward);
    auto fourth = std::async(std::launch::async, finish, std::ref(*b), "consumer-b", ends(rb),
                             retries_forward);
    release_when_both_wait(*blocker);
    BatchResult rc, rd;
    ASSERT_NO_THROW(rc = third.get());
    ASSERT_NO_THROW(rd = fourth.get());
    for (const auto* result : {&rc, &rd}) {
      for (const auto& o : result->outcomes) EXPECT_EQ(o.verdict, OutcomeVerdict::kRetryScheduled);
    }
  }
  // Every job: attempt 1 failed once, and attempt 2 started exactly once, by the consumer that
  // ended attempt 1 (the other one's copy found attempt 1 or 2 running: a duplicate).
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE attempt = 1 AND outcome = "
                      "'failed'"),
            240);
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE attempt = 2"), 240);
  EXPECT_EQ(query_int("SELECT count(DISTINCT job_id) FROM job_attempts WHERE attempt = 2"), 240);
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox WHERE kind = 'retry'"), 240);
}

// A batch finds its jobs and attempts through the primary keys, however many rows the tables
// keep. With the ids sent as a JSON list, Postgres estimated every batch at 100 jobs and, below
// some tens of thousands of rows, read the whole jobs table per statement (sql_array.h).
// pg_stat_xact_user_tables counts the scans of the current transaction: the batch's own.
TEST_F(AttemptStore, BatchesReadTheirRowsByIndexNotByScanningTheTables) {
  execute(
      "INSERT INTO jobs (id, type, queue, status, payload, max_attempts, attempts, created_at,"
      " started_at, finished_at, updated_at) SELECT gen_random_uuid(), 'noop', 'default',"
      " 'succeeded', '{}', 5, 1, now(), now(), now(), now() FROM generate_series(1, 20000)");
  execute(
      "INSERT INTO job_attempts (job_id, attempt, outcome, started_at, finished_at, worker)"
      " SELECT id, 1, 'succeeded', now(), now(), 'gone' FROM jobs");
  execute("ANALYZE jobs");
  execute("ANALYZE job_attempts");
  std::vector<std::string> ids;
  std::vector<ClaimRequest> claims;
  for (int i = 0; i < 10; ++i) {
    ids.push_back(add_job());
    claims.push_back(claim(ids.back(), 1, false, static_cast<std::uint64_t>(i)));
  }
  std::vector<OutcomeRequest> outcomes;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    outcomes.push_back(i % 2 == 0 ? outcome(ids[i], 1, AttemptEnd::kSucceeded)
                                  : outcome(ids[i], 1, AttemptEnd::kFailed, "http_503", "busy"));
  }
  // The counts this connection has not yet reported include earlier transactions (the
  // migrations' index builds scan tables too): the batch's share is the difference.
  auto scans_in_batch = [&](const auto& batch_outcomes, const auto& batch_claims) {
    pqxx::work tx(*db_);
    auto scans = [&] {
      auto row = tx.exec1(
          "SELECT coalesce(sum(seq_scan) FILTER (WHERE relname = 'jobs'), 0),"
          " coalesce(sum(seq_scan) FILTER (WHERE relname = 'job_attempts'), 0)"
          " FROM pg_stat_xact_user_tables");
      return std::make_pair(row[0].as<int64_t>(), row[1].as<int64_t>());
    };
    const auto before = scans();
    consumer::write_attempt_batch(tx, settings(), batch_outcomes, batch_claims);
    const auto after = scans();
    tx.commit();
    return std::make_pair(after.first - before.first, after.second - before.second);
  };

  EXPECT_EQ(scans_in_batch(std::vector<OutcomeRequest>{}, claims), std::make_pair(0L, 0L))
      << "(jobs, job_attempts) sequential scans of a batch of claims";
  EXPECT_EQ(scans_in_batch(outcomes, std::vector<ClaimRequest>{}), std::make_pair(0L, 0L))
      << "(jobs, job_attempts) sequential scans of a batch of outcomes";
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'retrying'"), 5);
}

}  // namespace
}  // namespace warren::test

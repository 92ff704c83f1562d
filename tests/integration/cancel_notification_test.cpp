// Cancellation of a running job reaches consumers within a second (MESSAGING.md
// "Cancellation"): the cancel's transaction NOTIFYs db::kCancelChannel with the job id, on
// commit only. Tested with a LISTENing connection standing in for a consumer, against the
// real producer (POST /v1/jobs/{id}/cancel), warrenctl (jobs cancel) and db::cancel_job.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "shared/db/job_store.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// What a consumer's listening connection would receive.
class CancelListener : public pqxx::notification_receiver {
 public:
  explicit CancelListener(pqxx::connection& connection)
      : pqxx::notification_receiver(connection, db::kCancelChannel) {}

  void operator()(const std::string& payload, int) override { payloads.push_back(payload); }

  // Waits until `count` notifications have arrived in all, or `timeout` passed.
  const std::vector<std::string>& await(std::size_t count, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (payloads.size() < count) {
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      conn().await_notification(static_cast<long>(left.count() / 1000000),
                                static_cast<long>(left.count() % 1000000));
    }
    return payloads;
  }

  std::vector<std::string> payloads;
};

class CancelNotification : public IntegrationTest {
 protected:
  std::string submit(httplib::Client& c) {
    auto r = post_json(c, "/v1/jobs", {{"type", "noop"}, {"payload", json::object()}});
    EXPECT_EQ(r->status, 202) << r->body;
    return json::parse(r->body)["id"];
  }

  // As a consumer marks the job it claimed.
  void mark_running(const std::string& id) {
    execute("UPDATE jobs SET status = 'running', attempts = 1, started_at = now() WHERE id = '" +
            id + "'");
  }

  bool cancel_requested(const std::string& id) {
    return query_int("SELECT count(*) FROM jobs WHERE cancel_requested AND id = '" + id + "'") == 1;
  }
};

TEST_F(CancelNotification, CancellingARunningJobNotifiesListenersWithinASecond) {
  start_producer();
  auto c = api();
  const auto running = submit(*c);
  const auto queued = submit(*c);
  const auto by_warrenctl = submit(*c);
  mark_running(running);
  mark_running(by_warrenctl);

  pqxx::connection listening(database_->url());
  CancelListener listener(listening);

  // A waiting job is cancelled outright: nobody runs it, nobody is told.
  auto r = c->Post(("/v1/jobs/" + queued + "/cancel").c_str(), "", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["status"], "cancelled");

  const auto asked = std::chrono::steady_clock::now();
  r = c->Post(("/v1/jobs/" + running + "/cancel").c_str(), "", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["cancel_requested"], true);
  EXPECT_EQ(listener.await(1, 1000ms), std::vector<std::string>{running});
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
  EXPECT_TRUE(cancel_requested(running));

  // warrenctl cancels through the same function, so consumers hear of it the same way.
  auto cancelled = warrenctl({"jobs", "cancel", by_warrenctl, "--output", "json"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(listener.await(2, 1000ms), (std::vector<std::string>{running, by_warrenctl}));

  // Nothing else was sent (the queued job's cancel above included).
  EXPECT_EQ(listener.await(3, 300ms).size(), 2u);
}

TEST_F(CancelNotification, NothingIsSentUnlessTheCancelCommits) {
  start_producer();
  auto c = api();
  const auto id = submit(*c);
  mark_running(id);
  pqxx::connection listening(database_->url());
  CancelListener listener(listening);

  pqxx::connection writing(database_->url());
  {
    pqxx::work tx(writing);
    EXPECT_EQ(db::cancel_job(tx, id).kind, db::CancelKind::kCancelRequested);
    tx.abort();
  }
  EXPECT_TRUE(listener.await(1, 500ms).empty());
  EXPECT_FALSE(cancel_requested(id));

  {
    pqxx::work tx(writing);
    EXPECT_EQ(db::cancel_job(tx, id).kind, db::CancelKind::kCancelRequested);
    // Not before the commit: a consumer told early would re-read a job not yet marked.
    EXPECT_TRUE(listener.await(1, 200ms).empty());
    tx.commit();
  }
  EXPECT_EQ(listener.await(1, 1000ms), std::vector<std::string>{id});

  // Asking again (the first notice may have been missed by a reconnecting consumer) repeats it.
  auto r = c->Post(("/v1/jobs/" + id + "/cancel").c_str(), "", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(listener.await(2, 1000ms), (std::vector<std::string>{id, id}));
}

}  // namespace
}  // namespace warren::test

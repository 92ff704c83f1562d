// Secrets never reach logs or /metrics (issue 5, API.md "Authentication"): a producer and a
// consumer run with a database password, a broker password and API tokens of their own, unique
// to this test, and do real work with them (submits, refusals of a wrong token, a job run to
// the end, metrics scraped); then every log line they wrote and every metrics page is searched
// for each secret.
#include <gtest/gtest.h>

#include <fstream>

#include "support/jobs.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// "scheme://user:password@rest" with the user and password replaced.
std::string with_credentials(const std::string& url, const std::string& user,
                             const std::string& password) {
  const auto scheme_end = url.find("://") + 3;
  const auto at = url.find('@', scheme_end);
  return url.substr(0, scheme_end) + user + ":" + password + url.substr(at);
}

class Secrets : public IntegrationTest {};

TEST_F(Secrets, PasswordsAndTokensNeverAppearInLogsOrMetrics) {
  const std::string suffix = random_suffix();
  const std::string db_user = "warren_secret_" + suffix;
  const std::string db_password = "dbpw" + random_suffix() + random_suffix();
  const std::string amqp_user = "warren-secret-" + suffix;
  const std::string amqp_password = "mqpw" + random_suffix() + random_suffix();
  const std::string token = "tok" + random_suffix() + random_suffix() + random_suffix();
  const std::string wrong_token = "bad" + random_suffix() + random_suffix() + random_suffix();

  // A database role and a broker user with those passwords (checked: scram-sha-256, PLAIN).
  ASSERT_EQ(warrenctl({"migrate"}).exit_code, 0);
  execute("CREATE ROLE " + db_user + " LOGIN PASSWORD '" + db_password + "'");
  execute("GRANT USAGE ON SCHEMA public TO " + db_user);
  execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO " + db_user);
  execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO " + db_user);
  const std::string management = test_env("WARREN_TEST_RABBITMQ_MANAGEMENT_URL");
  httplib::Client admin(management.substr(0, management.find("://") + 3) +
                        management.substr(management.find('@') + 1));
  admin.set_basic_auth("guest", "guest");
  auto created =
      admin.Put(("/api/users/" + amqp_user).c_str(),
                json{{"password", amqp_password}, {"tags", ""}}.dump(), "application/json");
  ASSERT_TRUE(created && created->status / 100 == 2) << (created ? created->body : "no answer");
  auto allowed = admin.Put(("/api/permissions/%2F/" + amqp_user).c_str(),
                           json{{"configure", ".*"}, {"write", ".*"}, {"read", ".*"}}.dump(),
                           "application/json");
  ASSERT_TRUE(allowed && allowed->status / 100 == 2);

  const std::string tokens = test_env("WARREN_TEST_STACK_DIR") + "/tokens-" + prefix_;
  std::ofstream(tokens) << "ci " << token << " admin\n";
  const std::map<std::string, std::string> env = {
      {"WARREN_DATABASE_URL", with_credentials(database_->url(), db_user, db_password)},
      {"WARREN_AMQP_URL",
       with_credentials(test_env("WARREN_TEST_AMQP_URL"), amqp_user, amqp_password)},
      {"WARREN_API_TOKENS_FILE", tokens},
      // The schema was migrated above by the owner; the application role only uses it.
      {"WARREN_AUTO_MIGRATE", "0"},
      {"WARREN_LOG_LEVEL", "debug"}};
  auto& producer = start_producer(env);
  auto& consumer = start_consumer(env);

  auto client = api();
  client->set_bearer_token_auth(token.c_str());
  const auto ids =
      submit_jobs(*client, std::vector<json>(20, {{"type", "noop"}, {"payload", json::object()}}));
  auto stranger = api();
  stranger->set_bearer_token_auth(wrong_token.c_str());
  auto refused = stranger->Get("/v1/jobs");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  ASSERT_TRUE(wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'") == 20; },
      30s));
  std::string pages;
  const auto producer_metrics = api();
  const auto consumer_metrics = consumer.health_client();
  for (auto* source : {producer_metrics.get(), consumer_metrics.get()}) {
    auto metrics = source->Get("/metrics");
    ASSERT_TRUE(metrics);
    pages += metrics->body;
  }
  EXPECT_EQ(consumer.stop(), 0);
  EXPECT_EQ(producer.stop(), 0);

  const std::string logs = producer.process().log() + consumer.process().log();
  ASSERT_NE(logs.find("job batch accepted"), std::string::npos) << "not the logs expected";
  ASSERT_NE(logs.find("consumer starting"), std::string::npos) << "not the logs expected";
  for (const auto& secret : {db_password, amqp_password, token, wrong_token}) {
    EXPECT_EQ(logs.find(secret), std::string::npos) << "a secret is in the logs";
    EXPECT_EQ(pages.find(secret), std::string::npos) << "a secret is in /metrics";
  }
  admin.Delete(("/api/users/" + amqp_user).c_str());
  execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM " + db_user);
  execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM " + db_user);
  execute("REVOKE ALL ON SCHEMA public FROM " + db_user);
  execute("DROP ROLE " + db_user);
}

}  // namespace
}  // namespace warren::test

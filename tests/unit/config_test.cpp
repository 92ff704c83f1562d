// Tests for load_config: defaults, environment, --flags, and the one-line errors of bad values.
#include "shared/config.h"

#include <gtest/gtest.h>

namespace warren {
namespace {

LoadedConfig load(Component component, std::vector<std::string> args,
                  std::map<std::string, std::string> env = {}) {
  return load_config(component, args, [&](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

std::string error_of(Component component, std::vector<std::string> args,
                     std::map<std::string, std::string> env = {}) {
  try {
    load(component, args, env);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Config, DefaultsMatchRunningMd) {
  auto c = load(Component::kConsumer, {}).config;
  EXPECT_EQ(c.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
  EXPECT_EQ(c.database_url, "postgresql://warren@127.0.0.1:5432/warren");
  EXPECT_EQ(c.amqp_prefix, "warren");
  EXPECT_EQ(c.queues, std::vector<std::string>{"default"});
  EXPECT_EQ(c.default_max_attempts, 5);
  EXPECT_EQ(c.delivery_limit, 20);
  EXPECT_EQ(c.concurrency, 16);
  EXPECT_EQ(c.prefetch, 32);  // 2 x concurrency
  EXPECT_EQ(c.shutdown_grace.count(), 25000);
  EXPECT_FALSE(c.worker_id.empty());
}

TEST(Config, EnvironmentThenFlagsOverride) {
  auto c = load(Component::kProducer, {"--http-addr=127.0.0.1:9999", "--WARREN_QUEUES=a,b"},
                {{"WARREN_HTTP_ADDR", "127.0.0.1:1"}, {"WARREN_MAX_BODY_BYTES", "2048"}})
               .config;
  EXPECT_EQ(c.http_addr, "127.0.0.1:9999");
  EXPECT_EQ(c.queues, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.max_body_bytes, 2048u);
}

TEST(Config, BadValuesNameTheVariable) {
  EXPECT_EQ(error_of(Component::kProducer, {}, {{"WARREN_MAX_BODY_BYTES", "lots"}}),
            "WARREN_MAX_BODY_BYTES (environment): must be an integer, got 'lots'");
  EXPECT_NE(error_of(Component::kConsumer, {"--concurrency=0"}).find("WARREN_CONCURRENCY (flag)"),
            std::string::npos);
  EXPECT_NE(error_of(Component::kProducer, {}, {{"WARREN_QUEUES", "a.b"}}).find("WARREN_QUEUES"),
            std::string::npos);
  EXPECT_NE(error_of(Component::kProducer, {}, {{"WARREN_AMQP_URL", "http://x"}}).find("amqp://"),
            std::string::npos);
  EXPECT_NE(error_of(Component::kProducer, {}, {{"WARREN_LOG_LEVEL", "loud"}}), "no error");
  EXPECT_NE(error_of(Component::kProducer, {},
                     {{"WARREN_RETRY_INITIAL_MS", "10000"}, {"WARREN_RETRY_MAX_MS", "5000"}}),
            "no error");
}

TEST(Config, ComponentSpecificSettingsAreNotFlagsOfOthers) {
  // A consumer setting given to the producer is not a config flag: it stays positional, and
  // the producer's main refuses it.
  auto loaded = load(Component::kProducer, {"--concurrency=4", "verb"});
  EXPECT_EQ(loaded.positional, (std::vector<std::string>{"--concurrency=4", "verb"}));
}

TEST(Config, RetentionDurations) {
  auto c = load(Component::kProducer, {},
                {{"WARREN_RETENTION_SUCCEEDED", "12h"}, {"WARREN_RETENTION_FAILED", "0"}})
               .config;
  EXPECT_EQ(c.retention.succeeded.count(), 12 * 3600);
  EXPECT_EQ(c.retention.failed.count(), 0);
  EXPECT_NE(error_of(Component::kProducer, {}, {{"WARREN_RETENTION_CANCELLED", "soon"}}),
            "no error");
}

TEST(Config, HelpListsEveryVariableOfTheComponent) {
  auto help = config_help(Component::kProducer, "warren-producer");
  for (const char* name : {"WARREN_HTTP_ADDR", "WARREN_API_TOKENS_FILE", "WARREN_MAX_BODY_BYTES",
                           "WARREN_AUTO_MIGRATE", "WARREN_AMQP_URL", "WARREN_JOB_TYPES"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
  EXPECT_EQ(help.find("WARREN_CONCURRENCY"), std::string::npos);
}

TEST(Config, RedactUrlHidesPasswords) {
  EXPECT_EQ(redact_url("amqp://guest:secret@host:5672/%2f"), "amqp://guest:***@host:5672/%2f");
  EXPECT_EQ(redact_url("postgresql://warren:pw@127.0.0.1/warren"),
            "postgresql://warren:***@127.0.0.1/warren");
  EXPECT_EQ(redact_url("postgresql://warren@127.0.0.1/warren"),
            "postgresql://warren@127.0.0.1/warren");
}

}  // namespace
}  // namespace warren

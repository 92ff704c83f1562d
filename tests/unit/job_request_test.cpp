// Tests for validate_job_request: every field of POST /v1/jobs, good and bad (API.md "Jobs").
#include "shared/job_request.h"

#include <gtest/gtest.h>

#include "shared/config.h"
#include "shared/time_format.h"

namespace warren {
namespace {

using nlohmann::json;

Config test_config() {
  Config c;
  c.queues = {"default", "emails"};
  return c;
}

const auto kNow = *parse_rfc3339("2026-11-23T10:00:00Z");

JobValidation check(const json& body, const Config& config = test_config()) {
  return validate_job_request(body, config, "", std::nullopt, kNow);
}

// The single field error of a refused request, as "field: message".
std::string only_error(const JobValidation& v) {
  auto& errors = v.bad_request.empty() ? v.unprocessable : v.bad_request;
  if (errors.size() != 1) return "expected one error, got " + std::to_string(errors.size());
  return errors[0].field + ": " + errors[0].message;
}

TEST(JobRequest, MinimalJobGetsDefaults) {
  auto v = check({{"type", "email.send"}, {"payload", json::object()}});
  ASSERT_TRUE(v.job);
  EXPECT_EQ(v.job->queue, "default");
  EXPECT_EQ(v.job->max_attempts, 5);
  EXPECT_FALSE(v.job->timeout_ms);
  EXPECT_FALSE(v.job->scheduled_for(kNow));
}

TEST(JobRequest, FullJobIsAccepted) {
  auto v = check({{"type", "email.send"},
                  {"payload", {{"to", "a@example.com"}}},
                  {"queue", "emails"},
                  {"max_attempts", 100},
                  {"timeout_ms", 86400000},
                  {"delay_ms", 1500},
                  {"backoff", {{"initial_ms", 100}, {"factor", 2.5}, {"max_ms", 1000}}},
                  {"idempotency_key", "order-123"},
                  {"metadata", {{"tenant", "acme"}}}});
  ASSERT_TRUE(v.job) << only_error(v);
  EXPECT_EQ(v.job->queue, "emails");
  EXPECT_EQ(*v.job->timeout_ms, 86400000);
  EXPECT_EQ(v.job->backoff->factor, 2.5);
  EXPECT_EQ(v.job->metadata.at("tenant"), "acme");
  EXPECT_EQ(*v.job->scheduled_for(kNow), kNow + std::chrono::milliseconds(1500));
}

TEST(JobRequest, TypeRules) {
  EXPECT_EQ(only_error(check({{"payload", json::object()}})), "type: is required");
  for (const char* bad : {"", "Email", "-x", ".x", "a b", "émail"}) {
    EXPECT_FALSE(check({{"type", bad}, {"payload", json::object()}}).job) << bad;
  }
  EXPECT_TRUE(check({{"type", std::string(64, 'a')}, {"payload", json::object()}}).job);
  EXPECT_FALSE(check({{"type", std::string(65, 'a')}, {"payload", json::object()}}).job);
  EXPECT_EQ(only_error(check({{"type", 5}, {"payload", json::object()}})),
            "type: must be a string");
}

TEST(JobRequest, PayloadMustBeAnObject) {
  EXPECT_EQ(only_error(check({{"type", "t"}})), "payload: is required");
  for (const json& bad : {json::array(), json("x"), json(1), json(true)}) {
    EXPECT_EQ(only_error(check({{"type", "t"}, {"payload", bad}})),
              "payload: must be a JSON object");
  }
}

TEST(JobRequest, QueueRulesAnd422ForUnconfiguredQueue) {
  EXPECT_FALSE(check({{"type", "t"}, {"payload", json::object()}, {"queue", "a.b"}}).job);
  auto v = check({{"type", "t"}, {"payload", json::object()}, {"queue", "other"}});
  EXPECT_FALSE(v.job);
  EXPECT_TRUE(v.bad_request.empty());
  ASSERT_EQ(v.unprocessable.size(), 1u);
  EXPECT_EQ(v.unprocessable[0].field, "queue");
}

TEST(JobRequest, TypeNotAcceptedIs422) {
  Config c = test_config();
  c.job_types = {"email.send"};
  auto v = check({{"type", "sms.send"}, {"payload", json::object()}}, c);
  ASSERT_EQ(v.unprocessable.size(), 1u);
  EXPECT_EQ(v.unprocessable[0].field, "type");
  EXPECT_TRUE(check({{"type", "email.send"}, {"payload", json::object()}}, c).job);
}

TEST(JobRequest, BadRequestWinsOver422) {
  auto v = check({{"type", "t"}, {"payload", 1}, {"queue", "other"}});
  EXPECT_EQ(v.bad_request.size(), 1u);
  EXPECT_TRUE(v.unprocessable.empty());
}

TEST(JobRequest, IntegerRanges) {
  auto with = [](const char* field, json value) {
    return check({{"type", "t"}, {"payload", json::object()}, {field, value}});
  };
  EXPECT_FALSE(with("max_attempts", 0).job);
  EXPECT_TRUE(with("max_attempts", 1).job);
  EXPECT_FALSE(with("max_attempts", 101).job);
  EXPECT_FALSE(with("max_attempts", 5.0).job);  // a count is not a float
  EXPECT_FALSE(with("max_attempts", "5").job);
  EXPECT_FALSE(with("max_attempts", 18446744073709551615ull).job);
  EXPECT_FALSE(with("max_attempts", -9223372036854775807ll).job);
  EXPECT_FALSE(with("timeout_ms", 0).job);
  EXPECT_FALSE(with("timeout_ms", 86400001).job);
  EXPECT_TRUE(with("delay_ms", 0).job);
  EXPECT_TRUE(with("delay_ms", 2147483648ll).job);
  EXPECT_FALSE(with("delay_ms", 2147483649ll).job);
  EXPECT_FALSE(with("delay_ms", -1).job);
}

// Bodies arrive as text, where nlohmann parses non-negative numbers as unsigned: the bounds
// must hold for those too (a 0 once slipped through to a database CHECK and a 500).
TEST(JobRequest, IntegerRangesOfParsedText) {
  auto parsed = [](const std::string& field, const std::string& number) {
    return check(json::parse(R"({"type":"t","payload":{},")" + field + "\":" + number + "}"));
  };
  EXPECT_EQ(only_error(parsed("max_attempts", "0")), "max_attempts: must be between 1 and 100");
  EXPECT_TRUE(parsed("max_attempts", "1").job);
  EXPECT_TRUE(parsed("max_attempts", "100").job);
  EXPECT_FALSE(parsed("max_attempts", "101").job);
  EXPECT_FALSE(parsed("max_attempts", "18446744073709551615").job);
  EXPECT_FALSE(parsed("max_attempts", "1e2").job);
  EXPECT_FALSE(parsed("timeout_ms", "0").job);
  EXPECT_TRUE(parsed("delay_ms", "0").job);
  EXPECT_FALSE(parsed("delay_ms", "-1").job);
}

// NUL cannot be stored by Postgres: one such job used to fail a commit shared with others.
TEST(JobRequest, NulAndBadUtf8AreRefusedBeforeTheDatabase) {
  const std::string nul("a\0b", 3);
  EXPECT_FALSE(check({{"type", "t"}, {"payload", {{"x", nul}}}}).job);
  EXPECT_FALSE(check({{"type", "t"}, {"payload", {{nul, 1}}}}).job);
  EXPECT_FALSE(check({{"type", "t"}, {"payload", {{"deep", {{"list", {1, nul}}}}}}}).job);
  EXPECT_FALSE(check({{"type", "t"}, {"payload", json::object()}, {"metadata", {{"k", nul}}}}).job);
  EXPECT_FALSE(check({{"type", "t"}, {"payload", json::object()}, {"idempotency_key", nul}}).job);
  auto bad_header = validate_job_request({{"type", "t"}, {"payload", json::object()}},
                                         test_config(), "", std::string("\xff\xfe"), kNow);
  ASSERT_EQ(bad_header.bad_request.size(), 1u);
  EXPECT_EQ(bad_header.bad_request[0].field, "Idempotency-Key");
}

TEST(JobRequest, CleanTextIsWellFormedUtf8WithoutNul) {
  EXPECT_TRUE(is_clean_text("plain ascii"));
  EXPECT_TRUE(is_clean_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_clean_text(std::string("a\0b", 3)));
  EXPECT_FALSE(is_clean_text("\xc3"));              // truncated
  EXPECT_FALSE(is_clean_text("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_clean_text("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_clean_text("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_clean_text("\x80"));              // lone continuation byte
}

TEST(JobRequest, RunAtInThePastIsDueNowAndOldDatesDoNotOverflow) {
  auto past =
      check({{"type", "t"}, {"payload", json::object()}, {"run_at", "2026-11-23T09:00:00Z"}});
  ASSERT_TRUE(past.job);
  EXPECT_FALSE(past.job->scheduled_for(kNow));  // queued at once
  auto ancient =
      check({{"type", "t"}, {"payload", json::object()}, {"run_at", "1700-01-01T00:00:00Z"}});
  ASSERT_TRUE(ancient.job) << only_error(ancient);
  EXPECT_FALSE(ancient.job->scheduled_for(kNow));
}

TEST(JobRequest, RunAtRules) {
  auto with = [](json value) {
    return check({{"type", "t"}, {"payload", json::object()}, {"run_at", value}});
  };
  auto ok = with("2026-11-23T11:00:00.000Z");
  ASSERT_TRUE(ok.job);
  EXPECT_EQ(*ok.job->scheduled_for(kNow), *parse_rfc3339("2026-11-23T11:00:00Z"));
  EXPECT_FALSE(with("tomorrow").job);
  EXPECT_FALSE(with("2035-06-01T00:00:00Z").job);  // more than 2^28 s ahead
  auto both = check({{"type", "t"},
                     {"payload", json::object()},
                     {"run_at", "2026-11-23T11:00:00Z"},
                     {"delay_ms", 5}});
  EXPECT_EQ(only_error(both), "run_at: give delay_ms or run_at, not both");
}

TEST(JobRequest, BackoffRules) {
  auto with = [](json value) {
    return check({{"type", "t"}, {"payload", json::object()}, {"backoff", value}});
  };
  EXPECT_TRUE(with({{"initial_ms", 10}}).job);
  EXPECT_FALSE(with({{"initial_ms", 0}}).job);
  EXPECT_FALSE(with({{"factor", 0.5}}).job);
  EXPECT_FALSE(with({{"initial_ms", 5000}, {"max_ms", 10}}).job);
  EXPECT_FALSE(with({{"jitter", true}}).job);
  EXPECT_FALSE(with("fast").job);
  auto v = with({{"initial_ms", 0}});
  ASSERT_EQ(v.bad_request.size(), 1u);
  EXPECT_EQ(v.bad_request[0].field, "backoff.initial_ms");
}

TEST(JobRequest, IdempotencyKeyFieldAndHeader) {
  const json body = {{"type", "t"}, {"payload", json::object()}, {"idempotency_key", "k1"}};
  EXPECT_TRUE(validate_job_request(body, test_config(), "", std::string("k1"), kNow).job);
  auto differ = validate_job_request(body, test_config(), "", std::string("k2"), kNow);
  EXPECT_EQ(only_error(differ), "idempotency_key: differs from the Idempotency-Key header");
  auto header_only = validate_job_request({{"type", "t"}, {"payload", json::object()}},
                                          test_config(), "", std::string("h"), kNow);
  EXPECT_EQ(*header_only.job->idempotency_key, "h");
  EXPECT_FALSE(check({{"type", "t"}, {"payload", json::object()}, {"idempotency_key", ""}}).job);
  EXPECT_FALSE(
      check(
          {{"type", "t"}, {"payload", json::object()}, {"idempotency_key", std::string(256, 'k')}})
          .job);
}

TEST(JobRequest, MetadataRules) {
  auto with = [](json value) {
    return check({{"type", "t"}, {"payload", json::object()}, {"metadata", value}});
  };
  EXPECT_FALSE(with({{"n", 1}}).job);
  EXPECT_FALSE(with(json::array()).job);
  json many = json::object();
  for (int i = 0; i < 33; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_FALSE(with(many).job);
  many.erase("k32");
  EXPECT_TRUE(with(many).job);
}

TEST(JobRequest, UnknownFieldsAndNonObjectsAreRefused) {
  EXPECT_EQ(only_error(check({{"type", "t"}, {"payload", json::object()}, {"max_attempt", 3}})),
            "max_attempt: is not a known field");
  EXPECT_EQ(only_error(check(json::array())), "body: must be a JSON object");
}

TEST(JobRequest, BatchPrefixNamesTheIndex) {
  auto v = validate_job_request({{"payload", json::object()}}, test_config(), "jobs[3].");
  ASSERT_EQ(v.bad_request.size(), 1u);
  EXPECT_EQ(v.bad_request[0].field, "jobs[3].type");
}

TEST(JobRequest, FingerprintIgnoresKeyOrderAndIdempotencyKey) {
  auto a = check(json::parse(R"({"type":"t","payload":{"x":1,"y":2},"idempotency_key":"a"})"));
  auto b = check(json::parse(R"({"payload":{"y":2,"x":1},"type":"t","idempotency_key":"b"})"));
  auto c = check(json::parse(R"({"type":"t","payload":{"x":1,"y":3}})"));
  EXPECT_EQ(a.job->fingerprint(), b.job->fingerprint());
  EXPECT_NE(a.job->fingerprint(), c.job->fingerprint());
}

TEST(JobRequest, RequireValidThrowsProblems) {
  try {
    require_valid(check({{"type", "t"}}));
    FAIL() << "expected a problem";
  } catch (const ProblemError& e) {
    EXPECT_EQ(e.problem().status, 400);
    auto j = e.problem().to_json();
    EXPECT_EQ(j["type"], "https://warren.dev/problems/validation");
    EXPECT_EQ(j["errors"][0]["field"], "payload");
  }
  try {
    require_valid(check({{"type", "t"}, {"payload", json::object()}, {"queue", "nope"}}));
    FAIL() << "expected a problem";
  } catch (const ProblemError& e) {
    EXPECT_EQ(e.problem().status, 422);
  }
}

}  // namespace
}  // namespace warren

// Tests for the handler interface, the built-in handlers and the job message decoder.
#include <gtest/gtest.h>

#include <thread>

#include "consumer/handler_registry.h"
#include "shared/job_message.h"

namespace warren::consumer {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Attempt {
  json payload;
  std::stop_source stop;
  JobContext context;

  Attempt(json p, int attempt)
      : payload(std::move(p)),
        context{"id",
                "t",
                "default",
                attempt,
                5,
                payload,
                std::chrono::steady_clock::time_point::max(),
                stop.get_token(),
                JobLogger(json{{"job_id", "id"}})} {}
};

HandlerResult run(const std::string& type, json payload, int attempt = 1) {
  HandlerRegistry registry;
  add_builtin_handlers(registry);
  Attempt r(std::move(payload), attempt);
  return run_handler(*registry.find(type), r.context);
}

TEST(BuiltinHandlers, NoopSucceeds) {
  EXPECT_EQ(run("noop", json::object()).kind, HandlerResult::Kind::kSuccess);
}

TEST(BuiltinHandlers, FailFailsItsFirstNAttemptsThenSucceeds) {
  const json twice = {{"times", 2}, {"message", "boom"}};
  EXPECT_EQ(run("fail", twice, 1).kind, HandlerResult::Kind::kRetry);
  EXPECT_EQ(run("fail", twice, 2).error.message, "boom");
  EXPECT_EQ(run("fail", twice, 3).kind, HandlerResult::Kind::kSuccess);
  EXPECT_EQ(run("fail", json::object(), 99).kind, HandlerResult::Kind::kRetry);  // always
  auto permanent = run("fail", {{"permanent", true}}, 1);
  EXPECT_EQ(permanent.kind, HandlerResult::Kind::kPermanent);
  EXPECT_EQ(permanent.error.type, "fail_permanent");
}

TEST(BuiltinHandlers, SleepSleepsAndStopsWhenAsked) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(run("sleep", {{"ms", 50}}).kind, HandlerResult::Kind::kSuccess);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);

  HandlerRegistry registry;
  add_builtin_handlers(registry);
  Attempt r({{"ms", 60000}}, 1);
  std::thread stopper([&] {
    std::this_thread::sleep_for(50ms);
    r.stop.request_stop();
  });
  const auto interrupted_at = std::chrono::steady_clock::now();
  auto result = run_handler(*registry.find("sleep"), r.context);
  stopper.join();
  EXPECT_EQ(result.kind, HandlerResult::Kind::kRetry);
  EXPECT_EQ(result.error.type, "interrupted");
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted_at, 5s);
}

TEST(HandlerInterface, ExceptionsAreRetryableErrorsNamedAfterTheirType) {
  Attempt r(json::object(), 1);
  auto result =
      run_handler([](JobContext&) -> HandlerResult { throw std::out_of_range("idx"); }, r.context);
  EXPECT_EQ(result.kind, HandlerResult::Kind::kRetry);
  EXPECT_EQ(result.error.type, "std::out_of_range");
  EXPECT_EQ(result.error.message, "idx");
  result = run_handler([](JobContext&) -> HandlerResult { throw 42; }, r.context);
  EXPECT_EQ(result.error.type, "unknown_exception");
}

TEST(HandlerRegistry, RefusesBadAndDuplicateNames) {
  HandlerRegistry registry;
  add_builtin_handlers(registry);
  EXPECT_THROW(registry.add("noop", [](JobContext&) { return HandlerResult::success(); }),
               std::invalid_argument);
  EXPECT_THROW(registry.add("Bad Name", [](JobContext&) { return HandlerResult::success(); }),
               std::invalid_argument);
  EXPECT_EQ(registry.find("email.send"), nullptr);
  EXPECT_EQ(registry.types(), (std::vector<std::string>{"fail", "noop", "sleep"}));
}

amqp::Delivery delivery(std::string body) {
  amqp::Delivery d;
  d.body = std::move(body);
  d.headers.set("x-warren-attempt", std::int64_t{3});
  d.headers.set("traceparent",
                std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  return d;
}

TEST(JobMessageDecoder, RoundTripsWhatTheProducerEncodes) {
  JobMessage job;
  job.id = "0193a1b2-0000-7000-8000-000000000001";
  job.type = "email.send";
  job.queue = "default";
  job.payload_json = R"({"to":"a@example.com"})";
  job.max_attempts = 7;
  job.timeout_ms = 1500;
  job.created_at = "2026-11-23T10:00:00.000Z";
  job.backoff = Backoff{100, 2, 1000};
  auto decoded = decode_job_message(delivery(encode_job_body(job)), Backoff{});
  ASSERT_TRUE(decoded.job) << decoded.poison_reason;
  EXPECT_EQ(decoded.job->id, job.id);
  EXPECT_EQ(decoded.job->type, job.type);
  EXPECT_EQ(json::parse(decoded.job->payload_json), json::parse(job.payload_json));
  EXPECT_EQ(decoded.job->max_attempts, 7);
  EXPECT_EQ(*decoded.job->timeout_ms, 1500);
  EXPECT_EQ(decoded.job->backoff, job.backoff);
  EXPECT_EQ(decoded.job->attempt, 3);
  EXPECT_EQ(decoded.job->traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

TEST(JobMessageDecoder, PoisonIsNamed) {
  const std::string good_id = "0193a1b2-0000-7000-8000-000000000001";
  auto reason = [](const std::string& body) {
    auto d = decode_job_message(delivery(body), Backoff{});
    return d.job ? std::string("decoded") : d.poison_reason;
  };
  EXPECT_NE(reason("\xff\xfe not json").find("not JSON"), std::string::npos);
  EXPECT_EQ(reason("[1]"), "body is not a JSON object");
  EXPECT_EQ(reason(R"({"type":"t","queue":"q","payload":{},"max_attempts":1})"),
            "missing or malformed id");
  EXPECT_EQ(reason(R"({"id":")" + good_id + R"(","queue":"q","payload":{},"max_attempts":1})"),
            "missing or malformed type");
  EXPECT_EQ(
      reason(R"({"id":")" + good_id + R"(","type":"t","queue":"q","payload":[],"max_attempts":1})"),
      "payload is not an object");
  EXPECT_EQ(
      reason(R"({"id":")" + good_id + R"(","type":"t","queue":"q","payload":{},"max_attempts":0})"),
      "missing or malformed max_attempts");
  EXPECT_NE(
      reason(R"({"id":")" + good_id +
             R"(","type":"t","queue":"q","payload":{},"max_attempts":1,"backoff":{"factor":"x"}})")
          .find("malformed"),
      std::string::npos);
  EXPECT_EQ(
      reason(R"({"id":")" + good_id + R"(","type":"t","queue":"q","payload":{},"max_attempts":1})"),
      "decoded");
}

// Found by tests/fuzz/job_message_fuzzer: a float backoff.initial_ms/max_ms out of int64 range
// (1e30) was converted with a cast (undefined behaviour); Warren writes integers, so a float is
// malformed.
TEST(JobMessageDecoder, FloatBackoffMillisecondsArePoison) {
  const std::string head = R"({"id":"0193a1b2-0000-7000-8000-000000000001","type":"t",)"
                           R"("queue":"q","payload":{},"max_attempts":1,"backoff":)";
  for (const std::string backoff :
       {R"({"max_ms":1e30})", R"({"initial_ms":5000.5})", R"({"initial_ms":-1e300})",
        R"({"max_ms":true})", R"({"initial_ms":null})"}) {
    const auto decoded = decode_job_message(delivery(head + backoff + "}"), Backoff{});
    EXPECT_FALSE(decoded.job) << backoff;
    EXPECT_NE(decoded.poison_reason.find("malformed"), std::string::npos) << backoff;
  }
  const auto integers = decode_job_message(
      delivery(head + R"({"initial_ms":100,"factor":2.5,"max_ms":1000})" + "}"), Backoff{});
  ASSERT_TRUE(integers.job) << integers.poison_reason;
  EXPECT_EQ(integers.job->backoff, (Backoff{100, 2.5, 1000}));
}

// Found by tests/fuzz/job_message_fuzzer: the consumer adds timeout_ms to a nanosecond
// steady_clock time, which overflowed for timeouts up to INT64_MAX ms; they are clamped to
// what jobs.timeout_ms holds, as the attempt store clamps the row.
TEST(JobMessageDecoder, HugeTimeoutIsClampedToTheJobsColumn) {
  const std::string head = R"({"id":"0193a1b2-0000-7000-8000-000000000001","type":"t",)"
                           R"("queue":"q","payload":{},"max_attempts":1,"timeout_ms":)";
  auto timeout = [&](const std::string& value) {
    auto decoded = decode_job_message(delivery(head + value + "}"), Backoff{});
    EXPECT_TRUE(decoded.job) << value << ": " << decoded.poison_reason;
    return decoded.job ? decoded.job->timeout_ms.value_or(-1) : -1;
  };
  EXPECT_EQ(timeout("9223372036854775807"), 2147483647);
  EXPECT_EQ(timeout("2147483648"), 2147483647);
  EXPECT_EQ(timeout("2147483647"), 2147483647);
  EXPECT_EQ(timeout("86400000"), 86400000);
}

}  // namespace
}  // namespace warren::consumer

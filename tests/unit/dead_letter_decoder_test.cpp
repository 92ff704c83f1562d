// What the dead-letter recorder makes of each kind of message on warren.dead-letters
// (consumer/dead_letter_decoder.h): the consumer's own dead letters, the broker's (delivery
// limit, expiry, rejection) and poison; and message keys that survive redelivery.
#include "consumer/dead_letter_decoder.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "consumer/attempt_store.h"
#include "shared/job_message.h"
#include "shared/job_request.h"
#include "shared/uuid.h"

namespace warren::consumer {
namespace {

using nlohmann::json;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
constexpr std::uint64_t kDeathTime = 1799999990;  // 2027-01-15T07:59:50Z
const char kJobId[] = "01937a5e-8f3c-7d2a-9b4e-0123456789ab";

amqp::Delivery job_delivery(const std::string& payload = R"({"to":"a@example.com"})") {
  amqp::Delivery delivery;
  delivery.exchange = "warren.dead";
  delivery.routing_key = "default";
  delivery.message_id = kJobId;
  delivery.type = "email.send";
  delivery.timestamp = 1799999000;
  delivery.body = R"({"id":")" + std::string(kJobId) +
                  R"(","type":"email.send","queue":"default","payload":)" + payload +
                  R"(,"max_attempts":5,"timeout_ms":null,"created_at":"2027-01-15T07:00:00.000Z"})";
  delivery.headers.set("x-warren-attempt", 3);
  delivery.headers.set("x-warren-queue", "default");
  return delivery;
}

amqp::FieldTable death(const std::string& reason, std::uint64_t time = kDeathTime) {
  return amqp::FieldTable{{"queue", "warren.q.default"},
                          {"reason", reason},
                          {"count", 1},
                          {"exchange", "warren.jobs"},
                          {"time", amqp::Timestamp{time}}};
}

amqp::Delivery broker_dead_letter(const std::string& reason, amqp::Delivery delivery) {
  delivery.headers.set("x-death", amqp::FieldArray{death(reason)});
  return delivery;
}

DeadLetterRow decode(const amqp::Delivery& delivery) {
  return decode_dead_letter(delivery, "warren", Backoff{}, kNow);
}

TEST(DeadLetterDecoder, ConsumerDeadLetterReusesTheRowTheConsumerWrote) {
  auto delivery = job_delivery();
  const std::string id = new_uuid_v7();
  delivery.headers.set(kDeadLetterIdHeader, id);
  delivery.headers.set("x-warren-reason", "permanent_failure");
  delivery.headers.set("x-warren-error-type", "http_404");
  delivery.headers.set("x-warren-error-message", "no such user");
  delivery.headers.set("x-warren-failed-at", "2027-01-15T07:59:58.123Z");
  delivery.headers.set("x-warren-attempt", 2);

  const auto row = decode(delivery);
  EXPECT_TRUE(row.written_by_consumer);
  EXPECT_EQ(row.id, id);
  // The key the consumer's attempt store wrote: a redelivery conflicts with it.
  EXPECT_EQ(row.message_key, std::string(kJobId) + "/2");
  EXPECT_EQ(row.reason, "permanent_failure");
  EXPECT_EQ(row.error_type, "http_404");
  EXPECT_EQ(row.error_message, "no such user");
  EXPECT_EQ(row.attempts, 2);
  EXPECT_EQ(row.dead_lettered_at, "2027-01-15T07:59:58.123Z");
  EXPECT_EQ(row.job_id, kJobId);
  EXPECT_EQ(row.type, "email.send");
  EXPECT_EQ(row.queue, "default");
  ASSERT_TRUE(row.payload_json.has_value());
  EXPECT_EQ(json::parse(*row.payload_json), json::parse(R"({"to":"a@example.com"})"));
  EXPECT_FALSE(row.raw_body.has_value());
  EXPECT_FALSE(row.fails_job);
}

TEST(DeadLetterDecoder, DeliveryLimitFailsTheJobAndKeepsThePayload) {
  auto delivery = broker_dead_letter("delivery_limit", job_delivery());
  delivery.headers.set("x-delivery-count", 20);
  const auto row = decode(delivery);
  EXPECT_FALSE(row.written_by_consumer);
  EXPECT_EQ(row.reason, "delivery_limit");
  EXPECT_EQ(row.error_type, "delivery_limit");
  EXPECT_NE(row.error_message.find("after 20 deliveries"), std::string::npos) << row.error_message;
  EXPECT_NE(row.error_message.find("warren.q.default"), std::string::npos);
  EXPECT_TRUE(row.fails_job);
  EXPECT_FALSE(row.attempts.has_value()) << "the job's own count is filled in by the store";
  EXPECT_EQ(row.job_id, kJobId);
  EXPECT_TRUE(row.payload_json.has_value());
  EXPECT_FALSE(row.raw_body.has_value());
  // The broker's time of death, to the second.
  EXPECT_EQ(row.dead_lettered_at, "2027-01-15T07:59:50.000Z");
  EXPECT_EQ(row.headers["x-death"][0]["reason"], "delivery_limit");
  EXPECT_EQ(row.message_key.rfind("sha256:", 0), 0u);
}

TEST(DeadLetterDecoder, ExpiredJobMessageFailsTheJob) {
  const auto row = decode(broker_dead_letter("expired", job_delivery()));
  EXPECT_EQ(row.reason, "expired");
  EXPECT_TRUE(row.fails_job);
}

TEST(DeadLetterDecoder, NonJsonBodyIsPoisonWithItsRawBytes) {
  amqp::Delivery delivery;
  delivery.exchange = "warren.dead";
  delivery.routing_key = "default";
  delivery.body = std::string("not json \xff\x00 at all", 17);
  delivery.headers.set("x-death", amqp::FieldArray{death("rejected")});
  const auto row = decode(delivery);
  EXPECT_EQ(row.reason, "poison");
  EXPECT_EQ(row.error_type, "poison");
  EXPECT_NE(row.error_message.find("not JSON"), std::string::npos) << row.error_message;
  ASSERT_TRUE(row.raw_body.has_value());
  EXPECT_EQ(*row.raw_body, delivery.body);
  EXPECT_FALSE(row.payload_json.has_value());
  EXPECT_EQ(row.job_id, "");
  EXPECT_FALSE(row.fails_job);
  // No body to read the queue from: the queue the broker took it from.
  EXPECT_EQ(row.queue, "default");
}

TEST(DeadLetterDecoder, RejectedJobIsPoisonButKeepsItsJobId) {
  // A consumer rejects a decodable job only when the database refused it; the job is not
  // failed here (it may not even exist).
  const auto row = decode(broker_dead_letter("rejected", job_delivery()));
  EXPECT_EQ(row.reason, "poison");
  EXPECT_EQ(row.job_id, kJobId);
  EXPECT_FALSE(row.fails_job);
  EXPECT_TRUE(row.raw_body.has_value());
  EXPECT_NE(row.error_message.find("database refused"), std::string::npos);
}

TEST(DeadLetterDecoder, PayloadThatJsonbCannotHoldIsKeptAsRawBytes) {
  const auto delivery =
      broker_dead_letter("delivery_limit", job_delivery(R"({"note":"nul \u0000 here"})"));
  const auto row = decode(delivery);
  EXPECT_FALSE(row.payload_json.has_value());
  ASSERT_TRUE(row.raw_body.has_value());
  EXPECT_EQ(*row.raw_body, delivery.body);
}

TEST(DeadLetterDecoder, HeadersAreMadeStorable) {
  auto delivery = broker_dead_letter("rejected", job_delivery());
  delivery.headers.set("x-app", std::string("a\0b\xff", 4));
  const auto row = decode(delivery);
  EXPECT_EQ(row.headers["x-app"], "ab\xEF\xBF\xBD");
}

TEST(DeadLetterDecoder, ContentKeySurvivesRedeliveryAndItsDeliveryCount) {
  auto first = broker_dead_letter("delivery_limit", job_delivery());
  first.headers.set("x-delivery-count", 20);
  auto again = first;
  again.redelivered = true;
  again.headers.set("x-delivery-count", 1);  // rewritten by the dead-letter queue
  const auto a = decode(first), b = decode(again);
  EXPECT_EQ(a.message_key, b.message_key);
  EXPECT_NE(a.id, b.id) << "ids are fresh; the key is what dedupes";
  EXPECT_FALSE(a.redelivered);
  EXPECT_TRUE(b.redelivered);
}

TEST(DeadLetterDecoder, ContentKeyTellsTwoDeathsOfOneJobApart) {
  auto first = job_delivery();
  first.headers.set("x-death", amqp::FieldArray{death("delivery_limit", kDeathTime)});
  auto later = job_delivery();
  later.headers.set("x-death", amqp::FieldArray{death("delivery_limit", kDeathTime + 3600)});
  EXPECT_NE(decode(first).message_key, decode(later).message_key);
}

TEST(DeadLetterDecoder, DistinctKeyForIdenticalMessages) {
  const auto row = decode(broker_dead_letter("rejected", job_delivery()));
  EXPECT_NE(distinct_message_key(row), row.message_key);
  EXPECT_EQ(distinct_message_key(row).rfind(row.message_key, 0), 0u);
}

TEST(DeadLetterDecoder, DeadLetterIdHeaderWithoutAJobFallsBackToContentKey) {
  amqp::Delivery delivery;
  delivery.body = "garbage";
  delivery.headers.set(kDeadLetterIdHeader, new_uuid_v7());
  delivery.headers.set("x-warren-attempt", 1);
  const auto row = decode(delivery);
  EXPECT_FALSE(row.written_by_consumer);
  EXPECT_EQ(row.reason, "poison");
  EXPECT_EQ(row.message_key.rfind("sha256:", 0), 0u);
  EXPECT_NE(row.error_message.find("not a job message"), std::string::npos) << row.error_message;
  EXPECT_EQ(row.dead_lettered_at, "2027-01-15T08:00:00.000Z") << "no x-death: recorded now";
}

// Found by tests/fuzz/job_message_fuzzer: x-death times past what system_clock holds (about
// 2262) overflowed the conversion to nanoseconds (undefined behaviour).
TEST(DeadLetterDecoder, DeathTimeBeyondTheClockIsIgnored) {
  auto delivery = job_delivery();
  for (const std::uint64_t time : {std::uint64_t{10000000000000}, std::uint64_t{9223372037},
                                   std::numeric_limits<std::uint64_t>::max()}) {
    delivery.headers.set("x-death", amqp::FieldArray{death("expired", time)});
    EXPECT_EQ(decode(delivery).dead_lettered_at, "2027-01-15T08:00:00.000Z") << time;
  }
  // The latest second it can hold still counts.
  delivery.headers.set("x-death", amqp::FieldArray{death("expired", 9223372036)});
  EXPECT_EQ(decode(delivery).dead_lettered_at, "2262-04-11T23:47:16.000Z");
}

// Found by tests/fuzz/job_message_fuzzer: a consumer-style dead letter (dead-letter id and
// attempt headers) with any other x-warren-reason made a row that breaks the CHECK on
// dead_letters.reason even in minimal form, so the recorder held its batch forever.
TEST(DeadLetterDecoder, ConsumerDeadLetterReasonIsOneTheTableAccepts) {
  const std::vector<std::string> reasons = {"bogus", std::string("max\0x\xff", 6), "poison", ""};
  for (const auto& reason : reasons) {
    auto delivery = job_delivery();
    delivery.headers.set(kDeadLetterIdHeader, new_uuid_v7());
    delivery.headers.set("x-warren-reason", reason);
    const auto row = decode(delivery);
    EXPECT_TRUE(row.written_by_consumer);
    EXPECT_EQ(row.reason, "max_attempts");
  }
}

// Found by tests/fuzz/job_message_fuzzer: the delivery-limit and expiry messages quoted the
// x-death queue as it came (only poison's message was cleaned), NUL and bad UTF-8 included.
TEST(DeadLetterDecoder, ErrorMessageQuotingTheDeathQueueIsCleanText) {
  for (const std::string reason : {"delivery_limit", "expired", "maxlen"}) {
    auto delivery = job_delivery();
    auto dead = death(reason);
    dead.set("queue", std::string("warren.q.\0bad\xff", 14));
    delivery.headers.set("x-death", amqp::FieldArray{dead});
    const auto row = decode(delivery);
    EXPECT_TRUE(is_clean_text(row.error_message)) << reason;
    EXPECT_NE(row.error_message.find("warren.q.bad\xEF\xBF\xBD"), std::string::npos)
        << row.error_message;
  }
}

}  // namespace
}  // namespace warren::consumer

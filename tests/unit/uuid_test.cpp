// Tests of UUID v7 generation and the canonical-form check (shared/uuid.h).

#include "shared/uuid.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace warren {
namespace {

int64_t timestamp_ms(const std::string& id) {
  return std::strtoll((id.substr(0, 8) + id.substr(9, 4)).c_str(), nullptr, 16);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(NewUuidV7, IsCanonicalVersion7Variant10) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = new_uuid_v7();
    ASSERT_EQ(id.size(), 36U);
    ASSERT_TRUE(is_canonical_uuid(id)) << id;
    EXPECT_EQ(id[14], '7') << id;                                          // Version nibble.
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // Variant 10xx.
  }
}

TEST(NewUuidV7, CarriesTheCurrentTime) {
  const int64_t before = now_ms();
  const std::string id = new_uuid_v7();
  const int64_t after = now_ms();
  // A previous test may have pushed the generator's clock ahead by at most a few ms.
  EXPECT_GE(timestamp_ms(id), before);
  EXPECT_LE(timestamp_ms(id), after + 1000);
}

TEST(NewUuidV7, SequentialIdsAreUniqueAndSorted) {
  std::vector<std::string> ids;
  ids.reserve(10000);
  for (int i = 0; i < 10000; ++i) ids.push_back(new_uuid_v7());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]) << i;
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
}

TEST(NewUuidV7, ThreadsGetUniqueIdsEachInOrder) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<std::string>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids = per_thread[t]] {
      for (int i = 0; i < kPerThread; ++i) ids.push_back(new_uuid_v7());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::string> all;
  for (const auto& ids : per_thread) {
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads} * kPerThread);
}

std::array<uint8_t, 10> bytes_of(uint8_t fill) {
  std::array<uint8_t, 10> random;
  random.fill(fill);
  return random;
}

TEST(UuidV7Generator, LaysOutTimestampVersionAndVariant) {
  UuidV7Generator generator;
  const std::array<uint8_t, 10> random = {0xAB, 0xCD, 0xEF, 0x01, 0x23,
                                          0x45, 0x67, 0x89, 0xAB, 0xCD};
  const UuidBytes id = generator.next(0x0193A4B27C1D, random);
  // rand_a = 0xBCD (12 bits of 0xABCD), rand_b = low 62 bits of 0xEF0123456789ABCD.
  EXPECT_EQ(format_uuid(id), "0193a4b2-7c1d-7bcd-af01-23456789abcd");
}

TEST(UuidV7Generator, IncreasesWithinOneMillisecond) {
  UuidV7Generator generator;
  UuidBytes previous = generator.next(1000, bytes_of(0x42));
  for (uint8_t fill : {0x00, 0xFF, 0x10, 0x00, 0x80}) {
    const UuidBytes id = generator.next(1000, bytes_of(fill));
    EXPECT_LT(previous, id);
    EXPECT_EQ(format_uuid(id).substr(0, 13), "00000000-03e8");  // Same timestamp.
    previous = id;
  }
}

TEST(UuidV7Generator, NewMillisecondStartsFromFreshRandomness) {
  UuidV7Generator generator;
  const UuidBytes first = generator.next(1000, bytes_of(0xFF));
  const UuidBytes second = generator.next(1001, bytes_of(0x00));
  EXPECT_LT(first, second);
  EXPECT_EQ(format_uuid(second), "00000000-03e9-7000-8000-000000000000");
}

TEST(UuidV7Generator, SmallClockStepBackKeepsOrder) {
  UuidV7Generator generator;
  const UuidBytes first = generator.next(50000, bytes_of(0x11));
  const UuidBytes second =
      generator.next(50000 - UuidV7Generator::kMaxClockRegressionMs, bytes_of(0x00));
  EXPECT_LT(first, second);
  EXPECT_EQ(format_uuid(second).substr(0, 13), format_uuid(first).substr(0, 13));
}

TEST(UuidV7Generator, LargeClockStepBackFollowsTheClock) {
  UuidV7Generator generator;
  generator.next(50000, bytes_of(0x11));
  const UuidBytes id =
      generator.next(50000 - UuidV7Generator::kMaxClockRegressionMs - 1, bytes_of(0x22));
  EXPECT_EQ(format_uuid(id).substr(0, 13), "00000000-9c3f");  // 39999 ms.
}

TEST(UuidV7Generator, CounterOverflowBorrowsTheNextMillisecond) {
  UuidV7Generator generator;
  const UuidBytes full = generator.next(1000, bytes_of(0xFF));  // Counter at its maximum.
  EXPECT_EQ(format_uuid(full), "00000000-03e8-7fff-bfff-ffffffffffff");
  const UuidBytes bumped = generator.next(1000, bytes_of(0x00));
  EXPECT_LT(full, bumped);
  EXPECT_EQ(format_uuid(bumped), "00000000-03e9-7000-8000-000000000000");
  // The clock has not reached 1001 yet: later ids keep the borrowed millisecond.
  const UuidBytes after = generator.next(1000, bytes_of(0x00));
  EXPECT_LT(bumped, after);
  EXPECT_EQ(format_uuid(after), "00000000-03e9-7000-8000-000000000001");
}

TEST(UuidV7Generator, ClampsTimesOutsideFortyEightBits) {
  UuidV7Generator generator;
  EXPECT_EQ(format_uuid(generator.next(-5, bytes_of(0))).substr(0, 13), "00000000-0000");
  UuidV7Generator other;
  EXPECT_EQ(format_uuid(other.next(int64_t{1} << 50, bytes_of(0))).substr(0, 13), "ffffffff-ffff");
}

TEST(IsCanonicalUuid, AcceptsLowerCaseOfAnyVersion) {
  EXPECT_TRUE(is_canonical_uuid("0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091"));  // v7
  EXPECT_TRUE(is_canonical_uuid("f47ac10b-58cc-4372-a567-0e02b2c3d479"));  // v4
  EXPECT_TRUE(is_canonical_uuid("00000000-0000-0000-0000-000000000000"));  // nil
  EXPECT_TRUE(is_canonical_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"));  // max
  EXPECT_TRUE(is_canonical_uuid(new_uuid_v7()));
}

TEST(IsCanonicalUuid, RejectsEverythingElse) {
  const char* bad[] = {
      "",
      "F47AC10B-58CC-4372-A567-0E02B2C3D479",    // upper case
      "f47ac10b-58cc-4372-a567-0E02b2c3d479",    // one upper-case digit
      "f47ac10b58cc4372a5670e02b2c3d479",        // no dashes
      "{f47ac10b-58cc-4372-a567-0e02b2c3d479}",  // braces
      "urn:uuid:f47ac10b-58cc-4372-a567-0e02b2c3d479",
      "f47ac10b-58cc-4372-a567-0e02b2c3d47",    // 35 chars
      "f47ac10b-58cc-4372-a567-0e02b2c3d4799",  // 37 chars
      "f47ac10b-58cc-4372-a567-0e02b2c3d47g",   // not hex
      "f47ac10b-58cc4-372-a567-0e02b2c3d479",   // dash misplaced
      "f47ac10b_58cc_4372_a567_0e02b2c3d479",   // wrong separator
      "f47ac10b-58cc-4372-a567-0e02b2c3d47 ",   // trailing space
      " f47ac10b-58cc-4372-a567-0e02b2c3d479",  // leading space
      "f47ac10b-58cc-4372-a567--e02b2c3d479",   // dash as a digit
  };
  for (const char* text : bad) EXPECT_FALSE(is_canonical_uuid(text)) << "'" << text << "'";
}

}  // namespace
}  // namespace warren

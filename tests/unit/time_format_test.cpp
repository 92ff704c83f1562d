// Tests of RFC 3339 formatting and parsing (shared/time_format.h).

#include "shared/time_format.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace warren {
namespace {

using namespace std::chrono_literals;
using std::chrono::days;
using std::chrono::December;
using std::chrono::duration_cast;
using std::chrono::February;
using std::chrono::floor;
using std::chrono::hours;
using std::chrono::January;
using std::chrono::March;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::November;
using std::chrono::seconds;
using std::chrono::sys_days;
using std::chrono::system_clock;
using std::chrono::year_month_day;

system_clock::time_point utc(year_month_day date, milliseconds since_midnight) {
  return system_clock::time_point(sys_days(date)) + since_midnight;
}

// --- Formatting ---------------------------------------------------------------------------------

TEST(FormatRfc3339Ms, MatchesTheApiExample) {
  const auto t = utc(2026y / November / 23, hours(10) + minutes(15) + seconds(30) + 123ms);
  EXPECT_EQ(format_rfc3339_ms(t), "2026-11-23T10:15:30.123Z");
}

TEST(FormatRfc3339Ms, AlwaysThreeFractionDigits) {
  EXPECT_EQ(format_rfc3339_ms(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(utc(2028y / February / 29, hours(23) + minutes(59) + 59s + 7ms)),
            "2028-02-29T23:59:59.007Z");
  EXPECT_EQ(format_rfc3339_ms(utc(2000y / January / 1, 50ms)), "2000-01-01T00:00:00.050Z");
}

TEST(FormatRfc3339Ms, TruncatesBelowMilliseconds) {
  const auto base = utc(2026y / March / 4, hours(5) + 6min + 7s + 8ms);
  EXPECT_EQ(format_rfc3339_ms(base + 999us), "2026-03-04T05:06:07.008Z");
  EXPECT_EQ(format_rfc3339_ms(base + 999999ns), "2026-03-04T05:06:07.008Z");
}

TEST(FormatRfc3339Ms, TimesBefore1970) {
  EXPECT_EQ(format_rfc3339_ms(system_clock::time_point{} - 1ms), "1969-12-31T23:59:59.999Z");
  // Floors toward the past, never toward 1970.
  EXPECT_EQ(format_rfc3339_ms(system_clock::time_point{} - 1ns), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(utc(1900y / January / 1, 0ms)), "1900-01-01T00:00:00.000Z");
}

// --- Parsing ------------------------------------------------------------------------------------

TEST(ParseRfc3339, ParsesTheApiFormat) {
  const auto t = parse_rfc3339("2026-11-23T10:15:30.123Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, utc(2026y / November / 23, hours(10) + minutes(15) + seconds(30) + 123ms));
}

TEST(ParseRfc3339, FractionOfAnyLength) {
  const auto base = utc(2026y / November / 23, hours(10) + minutes(15) + seconds(30));
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30Z"), base);
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30.1Z"), base + 100ms);
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30.12Z"), base + 120ms);
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30.000Z"), base);
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30.123456Z"), base + 123456us);
  // Beyond the clock's resolution digits are truncated (libstdc++: nanoseconds).
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30.123456789999Z"),
            base + duration_cast<system_clock::duration>(123456789ns));
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30." + std::string(200, '9') + "Z"),
            base + duration_cast<system_clock::duration>(999999999ns));
}

TEST(ParseRfc3339, LowerCaseSeparators) {
  EXPECT_EQ(parse_rfc3339("2026-11-23t10:15:30.123z"), parse_rfc3339("2026-11-23T10:15:30.123Z"));
}

TEST(ParseRfc3339, Offsets) {
  const auto expected = utc(2026y / November / 23, hours(10) + minutes(15) + seconds(30));
  EXPECT_EQ(parse_rfc3339("2026-11-23T12:15:30+02:00"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-23T05:15:30-05:00"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-23T15:45:30+05:30"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30+00:00"), expected);
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30-00:00"), expected);  // "unknown offset": UTC
  // Offsets may move the date, also across a year and a leap day.
  EXPECT_EQ(parse_rfc3339("2027-01-01T01:00:00+02:00"), utc(2026y / December / 31, hours(23)));
  EXPECT_EQ(parse_rfc3339("2028-02-28T23:30:00-01:00"), utc(2028y / February / 29, 30min));
  EXPECT_EQ(parse_rfc3339("2026-11-23T00:00:00+23:59"), utc(2026y / November / 22, 1min));
  EXPECT_EQ(parse_rfc3339("2026-11-23T10:15:30.5+01:00"), expected - 1h + 500ms);
}

TEST(ParseRfc3339, LeapDays) {
  EXPECT_EQ(parse_rfc3339("2028-02-29T00:00:00Z"), utc(2028y / February / 29, 0ms));
  EXPECT_FALSE(parse_rfc3339("2027-02-29T00:00:00Z").has_value());
  EXPECT_TRUE(parse_rfc3339("2000-02-29T00:00:00Z").has_value());   // divisible by 400
  EXPECT_FALSE(parse_rfc3339("2100-02-29T00:00:00Z").has_value());  // divisible by 100
}

TEST(ParseRfc3339, RejectsInvalidDatesAndTimes) {
  const char* bad[] = {
      "2026-02-30T00:00:00Z",  // Feb 30
      "2026-04-31T00:00:00Z",  // April has 30 days
      "2026-13-01T00:00:00Z",  // month 13
      "2026-00-10T00:00:00Z",  // month 0
      "2026-01-00T00:00:00Z",  // day 0
      "2026-01-32T00:00:00Z",  // day 32
      "2026-11-23T24:00:00Z",  // hour 24
      "2026-11-23T23:60:00Z",  // minute 60
      "2026-12-31T23:59:60Z",  // leap second
      "2026-11-23T10:15:30+24:00", "2026-11-23T10:15:30+02:60",
  };
  for (const char* text : bad) EXPECT_FALSE(parse_rfc3339(text).has_value()) << text;
}

TEST(ParseRfc3339, RejectsGarbage) {
  const char* bad[] = {
      "",
      "now",
      "2026-11-23",                  // date only
      "10:15:30Z",                   // time only
      "2026-11-23T10:15Z",           // no seconds
      "2026-11-23T10:15:30",         // no offset
      "2026-11-23 10:15:30Z",        // space separator
      "2026-11-23X10:15:30Z",        // other separator
      "2026/11/23T10:15:30Z",        // slashes
      "26-11-23T10:15:30Z",          // two-digit year
      "2026-1-23T10:15:30Z",         // one-digit month
      "2026-11-23T1:15:30Z",         // one-digit hour
      "2026-11-23T10:15:30.Z",       // empty fraction
      "2026-11-23T10:15:30,123Z",    // comma fraction
      "2026-11-23T10:15:30.12a3Z",   // letter in fraction
      "2026-11-23T10:15:30+0200",    // offset without colon
      "2026-11-23T10:15:30+02",      // offset without minutes
      "2026-11-23T10:15:30+2:00",    // one-digit offset hour
      "2026-11-23T10:15:30UTC",      // named zone
      "2026-11-23T10:15:30ZZ",       // trailing junk
      "2026-11-23T10:15:30Z ",       // trailing space
      " 2026-11-23T10:15:30Z",       // leading space
      "+2026-11-23T10:15:30Z",       // sign on year
      "-2026-11-23T10:15:30Z",       // negative year
      "2026-11-23T10:15:30.123Z\n",  // newline
      "2026-11-23T10:15:30Z+01:00",  // both
      "２０２６-11-23T10:15:30Z",    // non-ASCII digits
  };
  for (const char* text : bad) EXPECT_FALSE(parse_rfc3339(text).has_value()) << "'" << text << "'";
  EXPECT_FALSE(parse_rfc3339(std::string_view("2026-11-23T10:15:30\0Z", 21)).has_value());
}

TEST(ParseRfc3339, RejectsTimesTheClockCannotHold) {
  // libstdc++'s system_clock counts nanoseconds in 64 bits: about 1677..2262.
  const auto latest = floor<seconds>(system_clock::time_point::max());
  if (latest < sys_days(9999y / December / 31)) {
    EXPECT_FALSE(parse_rfc3339("9999-12-31T23:59:59Z").has_value());
    EXPECT_FALSE(parse_rfc3339("0000-01-01T00:00:00Z").has_value());
  }
  EXPECT_TRUE(parse_rfc3339("2261-12-31T23:59:59.999Z").has_value());
  EXPECT_TRUE(parse_rfc3339("1678-01-01T00:00:00Z").has_value());
}

// --- Round trip ---------------------------------------------------------------------------------

TEST(Rfc3339RoundTrip, FormatThenParseGivesTheMillisecond) {
  std::mt19937_64 rng(2026);
  // 1970 .. 2100, whole milliseconds plus some sub-millisecond noise.
  std::uniform_int_distribution<int64_t> ms_dist(0, int64_t{4102444800} * 1000);
  std::uniform_int_distribution<int64_t> noise(0, 999999);
  for (int i = 0; i < 20000; ++i) {
    const auto ms = milliseconds(ms_dist(rng));
    const auto t = system_clock::time_point(ms) +
                   duration_cast<system_clock::duration>(nanoseconds(noise(rng)));
    const std::string text = format_rfc3339_ms(t);
    ASSERT_EQ(text.size(), 24U) << text;
    const auto parsed = parse_rfc3339(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    ASSERT_EQ(*parsed, system_clock::time_point(ms)) << text;
    ASSERT_EQ(format_rfc3339_ms(*parsed), text);
  }
}

TEST(Rfc3339RoundTrip, NowSurvives) {
  const auto now = floor<milliseconds>(system_clock::now());
  EXPECT_EQ(parse_rfc3339(format_rfc3339_ms(now)), now);
}

}  // namespace
}  // namespace warren

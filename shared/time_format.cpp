// RFC 3339 formatting and parsing; see time_format.h for what is accepted.

#include "shared/time_format.h"

#include <cstdio>

namespace warren {
namespace {

using std::chrono::days;
using std::chrono::duration_cast;
using std::chrono::floor;
using std::chrono::hh_mm_ss;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using std::chrono::sys_days;
using std::chrono::sys_seconds;
using std::chrono::system_clock;
using std::chrono::year_month_day;

// The unsigned number in text[pos, pos + count), or -1 unless all of it is there and digits.
int read_digits(std::string_view text, size_t pos, size_t count) {
  if (pos + count > text.size()) return -1;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

bool char_at(std::string_view text, size_t pos, char expected) {
  return pos < text.size() && text[pos] == expected;
}

}  // namespace

std::string format_rfc3339_ms(system_clock::time_point t) {
  // floor, not duration_cast: before 1970 the latter rounds toward zero, i.e. into the future,
  // and would print the wrong second for negative times.
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day date{day};
  const hh_mm_ss time{ms - day};
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<int>(time.hours().count()),
                static_cast<int>(time.minutes().count()), static_cast<int>(time.seconds().count()),
                static_cast<int>(time.subseconds().count()));
  return text;
}

std::optional<system_clock::time_point> parse_rfc3339(std::string_view text) {
  // Fixed-width part: "YYYY-MM-DDTHH:MM:SS", 19 characters.
  const int year = read_digits(text, 0, 4);
  const int month = read_digits(text, 5, 2);
  const int mday = read_digits(text, 8, 2);
  const int hour = read_digits(text, 11, 2);
  const int minute = read_digits(text, 14, 2);
  const int second = read_digits(text, 17, 2);
  if (year < 0 || month < 0 || mday < 0 || hour < 0 || minute < 0 || second < 0) {
    return std::nullopt;
  }
  if (!char_at(text, 4, '-') || !char_at(text, 7, '-') ||
      !(char_at(text, 10, 'T') || char_at(text, 10, 't')) || !char_at(text, 13, ':') ||
      !char_at(text, 16, ':')) {
    return std::nullopt;
  }
  const year_month_day date{std::chrono::year{year},
                            std::chrono::month{static_cast<unsigned>(month)},
                            std::chrono::day{static_cast<unsigned>(mday)}};
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;

  size_t pos = 19;
  nanoseconds fraction{0};
  if (char_at(text, pos, '.')) {
    ++pos;
    const size_t first_digit = pos;
    int64_t scale = 100'000'000;  // Value of the first fraction digit, in ns.
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      fraction += nanoseconds((text[pos] - '0') * scale);
      scale /= 10;  // Reaches 0 after nine digits: later ones are read but do not count.
      ++pos;
    }
    if (pos == first_digit) return std::nullopt;
  }

  minutes offset{0};
  if (char_at(text, pos, 'Z') || char_at(text, pos, 'z')) {
    ++pos;
  } else if (char_at(text, pos, '+') || char_at(text, pos, '-')) {
    const bool east = text[pos] == '+';
    const int offset_hours = read_digits(text, pos + 1, 2);
    const int offset_minutes = read_digits(text, pos + 4, 2);
    if (offset_hours < 0 || offset_minutes < 0 || !char_at(text, pos + 3, ':') ||
        offset_hours > 23 || offset_minutes > 59) {
      return std::nullopt;
    }
    offset = hours(offset_hours) + minutes(offset_minutes);
    if (!east) offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  // In whole seconds first: int64 seconds hold any 4-digit year, a nanosecond clock does not.
  const sys_seconds utc = sys_days(date) + hours(hour) + minutes(minute) + seconds(second) - offset;
  using Duration = system_clock::duration;
  const seconds earliest = duration_cast<seconds>(Duration::min()) + seconds(1);
  const seconds latest = duration_cast<seconds>(Duration::max()) - seconds(1);
  if (utc.time_since_epoch() < earliest || utc.time_since_epoch() > latest) return std::nullopt;
  return system_clock::time_point(duration_cast<Duration>(utc.time_since_epoch()) +
                                  duration_cast<Duration>(fraction));
}

}  // namespace warren

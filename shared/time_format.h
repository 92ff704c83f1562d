// Times as the API writes and reads them (API.md: "Times are RFC 3339 UTC with millisecond
// precision", e.g. "2026-11-23T10:15:30.123Z"): every time in a response body goes through
// format_rfc3339_ms, and every time a client sends (run_at, created_after, since, ...) through
// parse_rfc3339. Also used for message headers such as x-warren-failed-at.
//
// Both are pure calendar arithmetic on std::chrono (sys_days, year_month_day): no locale, no
// time zone database, no gmtime/strptime (not thread-safe or locale-dependent), so the same
// text comes out on every machine.

#ifndef WARREN_SHARED_TIME_FORMAT_H_
#define WARREN_SHARED_TIME_FORMAT_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace warren {

// "YYYY-MM-DDTHH:MM:SS.mmmZ", always UTC and exactly three fraction digits; sub-millisecond
// parts are truncated toward the past (so formatting never yields a time later than `t`).
std::string format_rfc3339_ms(std::chrono::system_clock::time_point t);

// Any RFC 3339 date-time (section 5.6):
//   YYYY-MM-DD ('T' | 't') HH:MM:SS [ '.' 1*DIGIT ] ( 'Z' | 'z' | ('+' | '-') HH:MM )
// converted to UTC. Fraction digits beyond the clock's precision are dropped (truncated).
// nullopt for anything else: invalid calendar dates (2027-02-29, month 13), hour 24, minute or
// second 60 (leap seconds: system_clock cannot represent them), offsets beyond 23:59, a space
// instead of 'T', missing seconds or offset, surrounding whitespace, and times outside what
// system_clock::time_point can hold (with libstdc++'s nanosecond clock, about 1677-09-21 to
// 2262-04-11; API limits such as run_at's are checked by the caller).
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace warren

#endif  // WARREN_SHARED_TIME_FORMAT_H_

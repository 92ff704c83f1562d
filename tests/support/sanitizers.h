// What the test binary was built with (scripts/test.sh WARREN_SANITIZE=...; the services under
// test come from the same build). A few integration tests measure speed or memory as well as
// behaviour: under a sanitizer the code runs several times slower and the allocator keeps freed
// memory in quarantine, so those limits are scaled or left out, and the tests say so.
#pragma once

namespace warren::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr const char* kSanitizer = "address";
#elif defined(__SANITIZE_THREAD__)
inline constexpr const char* kSanitizer = "thread";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr const char* kSanitizer = "address";
#elif __has_feature(thread_sanitizer)
inline constexpr const char* kSanitizer = "thread";
#else
inline constexpr const char* kSanitizer = "";
#endif
#else
inline constexpr const char* kSanitizer = "";
#endif

inline constexpr bool kSanitized = kSanitizer[0] != '\0';

// Multiplies a latency limit: ASan slows this code about 2x, TSan 5-15x (their documentation's
// figures), and on 2 cores the broker and database compete with the slowed services.
inline constexpr double kTimingSlack = !kSanitized ? 1.0 : kSanitizer[0] == 'a' ? 3.0 : 8.0;

}  // namespace warren::test

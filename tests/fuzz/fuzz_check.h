// FUZZ_CHECK(condition, what): the invariant checks of the fuzz targets. A violation prints what
// was expected, where, and aborts: libFuzzer then saves the input as a crash reproducer, and the
// replay tests of the normal build (replay_main.cpp) fail on it. Active in every build type
// (unlike assert, which NDEBUG removes).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition, what)                                                          \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant violated: %s (%s)\n", __FILE__, __LINE__, what, \
                   #condition);                                                              \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)

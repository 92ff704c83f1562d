// The version of this build, from project(VERSION) in the top CMakeLists.txt (passed to every
// target through warren_shared as WARREN_VERSION). Consumers report it in their workers row, so
// GET /v1/workers shows which build each replica runs during a rolling upgrade.
#pragma once

#ifndef WARREN_VERSION
#error "WARREN_VERSION must be defined by the build (shared/CMakeLists.txt)"
#endif

namespace warren {

inline constexpr char kVersion[] = WARREN_VERSION;

}  // namespace warren

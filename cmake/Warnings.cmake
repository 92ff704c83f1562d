# Warnings are on for all of Warren's own targets (warren_options); CI adds -Werror.
add_library(warren_options INTERFACE)
target_compile_options(warren_options INTERFACE -Wall -Wextra -Wpedantic)
if(WARREN_WERROR)
  target_compile_options(warren_options INTERFACE -Werror)
endif()
if(WARREN_SANITIZE)
  # -O1 -g1 (after the build type's -O2 -g, so they win): the sanitizers' documentation advises
  # -O1 for usable stack traces at a reasonable speed, and reports need line numbers, not full
  # debug info; both cut the compile time of the instrumented build (measured in the README).
  # -Wno-maybe-uninitialized: instrumented code makes gcc 12 warn inside libstdc++'s <regex>
  # (std::function in _State's move constructor), a false positive; the GCC manual warns that
  # sanitizers raise the rate of exactly this warning. The plain build keeps it on.
  target_compile_options(warren_options INTERFACE -fsanitize=${WARREN_SANITIZE} -fno-omit-frame-pointer
                                                  -O1 -g1 -Wno-maybe-uninitialized)
  target_link_options(warren_options INTERFACE -fsanitize=${WARREN_SANITIZE})
endif()

# Precompiled headers: nlohmann/json, libpqxx, httplib and spdlog are most of the compile time
# of every file on a 2-core machine; compiling them once per target more than halves a build.
set(WARREN_PRECOMPILED_HEADERS <nlohmann/json.hpp> <pqxx/pqxx> <httplib.h> <spdlog/spdlog.h>
    <string> <vector> <map> <optional> <chrono> <functional> <memory>)

# Warnings are on for all of Warren's own targets (warren_options); CI adds -Werror.
add_library(warren_options INTERFACE)
target_compile_options(warren_options INTERFACE -Wall -Wextra -Wpedantic)
if(WARREN_WERROR)
  target_compile_options(warren_options INTERFACE -Werror)
endif()
if(WARREN_SANITIZE)
  target_compile_options(warren_options INTERFACE -fsanitize=${WARREN_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(warren_options INTERFACE -fsanitize=${WARREN_SANITIZE})
endif()

# Precompiled headers: nlohmann/json, libpqxx, httplib and spdlog are most of the compile time
# of every file on a 2-core machine; compiling them once per target more than halves a build.
set(WARREN_PRECOMPILED_HEADERS <nlohmann/json.hpp> <pqxx/pqxx> <httplib.h> <spdlog/spdlog.h>
    <string> <vector> <map> <optional> <chrono> <functional> <memory>)

# Every dependency is a Debian 12 package found through CMake config or pkg-config;
# nothing is vendored or downloaded. scripts/install-deps.sh installs them.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(rabbitmq-c REQUIRED)          # librabbitmq-dev -> rabbitmq::rabbitmq
find_package(spdlog REQUIRED)              # libspdlog-dev (external fmt 9)
find_package(nlohmann_json 3.11 REQUIRED)  # nlohmann-json3-dev

# libpqxx 6.4 ships no CMake config; it needs PQXX_HAVE_OPTIONAL to use std::optional.
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
# cpp-httplib 0.11 is a compiled library in Debian; its CPPHTTPLIB_* defines come from
# pkg-config and must match how the library was built (without them it crashes).
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)

if(WARREN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

// shared/db/worker_registry.h without a database: what a consumer gets by default. The SQL is
// tested against a real Postgres in tests/integration/workers_test.cpp.
#include <gtest/gtest.h>

#include "shared/db/worker_registry.h"

namespace warren::db {
namespace {

using namespace std::chrono_literals;

TEST(WorkerRegistry, WorkerInfoCarriesThisBuildsVersionUnlessTold) {
  const WorkerInfo info{.id = "w-1",
                        .host = "h",
                        .queues = {"default"},
                        .concurrency = 4,
                        .heartbeat_interval = 5000ms};
  EXPECT_EQ(info.version, WARREN_VERSION);
  EXPECT_FALSE(info.version.empty());
  EXPECT_EQ(std::string(kVersion), WARREN_VERSION);
}

}  // namespace
}  // namespace warren::db

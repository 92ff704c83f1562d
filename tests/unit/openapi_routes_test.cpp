// GET /openapi.json must describe exactly what the server does (API.md): every route of the
// producer's route table is a documented path and method, and every documented one is a route.
#include <gtest/gtest.h>

#include <set>

#include "producer/dead_letters_api.h"
#include "producer/health_api.h"
#include "producer/jobs_api.h"
#include "producer/operations_api.h"
#include "producer/workers_api.h"

namespace warren {
namespace {

TEST(OpenApi, DocumentAndRouteTableAgree) {
  Config config;
  metrics::MetricsRegistry registry;
  ProducerMetrics metrics(registry);
  ApiAuthenticator auth({});
  ApiRouter router(auth, metrics, 1024);
  // Nothing below connects anywhere: the pool and the batcher connect on first use.
  db::ConnectionPool pool("postgresql://127.0.0.1:1/none", 1);
  SubmitBatcher batcher({"postgresql://127.0.0.1:1/none", 1, 10}, [] {});
  OutboxRelay relay(config, metrics);
  JobsApi jobs(config, batcher, pool, metrics);
  jobs.add_routes(router);
  DeadLettersApi dead_letters(config, pool, metrics, {[] {}, [] {}});
  dead_letters.add_routes(router);
  add_operation_routes(router, pool);
  add_worker_routes(router, pool);
  add_health_routes(router, pool, relay, registry);

  std::set<std::string> served;
  for (const auto& route : router.routes()) served.insert(route.label);  // "GET /v1/jobs/{id}"

  const auto document = nlohmann::json::parse(openapi_document());
  EXPECT_EQ(document["openapi"], "3.1.0");
  std::set<std::string> documented;
  for (const auto& [path, operations] : document["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      if (method == "parameters") continue;
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      documented.insert(upper + " " + path);
    }
  }
  EXPECT_EQ(served, documented);
}

}  // namespace
}  // namespace warren

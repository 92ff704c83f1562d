// See health_api.h.
#include "producer/health_api.h"

namespace warren {

void add_health_routes(ApiRouter& router, db::ConnectionPool& pool, const OutboxRelay& relay,
                       const metrics::MetricsRegistry& registry) {
  router.add({"GET", "/healthz", "GET /healthz", std::nullopt, [](RequestContext& context) {
                context.json(200, {{"status", "ok"}});
              }});
  router.add({"GET", "/readyz", "GET /readyz", std::nullopt, [&](RequestContext& context) {
                const bool database = pool.ping();
                const bool broker = relay.broker_connected();
                nlohmann::json body = {{"database", database ? "up" : "down"},
                                       {"broker", broker ? "up" : "down"}};
                if (database && broker) {
                  body["status"] = "ready";
                  context.json(200, body);
                  return;
                }
                std::string down = !database && !broker ? "database and broker are"
                                   : !database          ? "database is"
                                                        : "broker is";
                Problem problem;
                problem.status = 503;
                problem.slug = "not-ready";
                problem.title = "Not ready";
                problem.detail = down + " unreachable";
                auto json = problem.to_json();
                json.update(body);
                context.response.status = 503;
                context.response.set_content(json.dump(), "application/problem+json");
              }});
  router.add(
      {"GET", "/openapi.json", "GET /openapi.json", std::nullopt, [](RequestContext& context) {
         context.response.set_content(std::string(openapi_document()),
                                      "application/json; charset=utf-8");
       }});
  router.add({"GET", "/metrics", "GET /metrics", std::nullopt, [&](RequestContext& context) {
                context.response.set_content(registry.render(),
                                             "text/plain; version=0.0.4; charset=utf-8");
              }});
}

}  // namespace warren

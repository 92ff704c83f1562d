// The unauthenticated routes: /healthz (the process serves), /readyz (Postgres and the broker
// are reachable, else 503 naming which is down), /metrics (Prometheus text 0.0.4), and
// /openapi.json (the document describing every route, producer/openapi.json).
#pragma once

#include "producer/api_router.h"
#include "producer/outbox_relay.h"
#include "shared/db/connection_pool.h"
#include "shared/metrics/metrics_registry.h"

namespace warren {

void add_health_routes(ApiRouter& router, db::ConnectionPool& pool, const OutboxRelay& relay,
                       const metrics::MetricsRegistry& registry);

// producer/openapi.json as compiled into the binary.
std::string_view openapi_document();

}  // namespace warren

// GET /v1/workers (API.md "Operations and health", scope read): the consumers' heartbeat rows
// (shared/db/worker_registry.h), each with its state: running, stopped, or gone.
#pragma once

#include "producer/api_router.h"
#include "shared/db/connection_pool.h"

namespace warren {

void add_worker_routes(ApiRouter& router, db::ConnectionPool& pool);

}  // namespace warren

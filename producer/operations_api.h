// GET /v1/operations/{id} and GET /v1/operations (scope read): the progress of bulk dead-letter
// operations (shared/db/bulk_operation_store.h): state, matched, done, failed, who asked, and
// the first failures with their reasons.
#pragma once

#include "producer/api_router.h"
#include "shared/db/connection_pool.h"

namespace warren {

void add_operation_routes(ApiRouter& router, db::ConnectionPool& pool);

}  // namespace warren

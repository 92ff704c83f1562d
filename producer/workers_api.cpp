// See workers_api.h.
#include "producer/workers_api.h"

#include "shared/db/worker_registry.h"

namespace warren {

void add_worker_routes(ApiRouter& router, db::ConnectionPool& pool) {
  router.add(
      {"GET", "/v1/workers", "GET /v1/workers", Scope::kRead, [&pool](RequestContext& context) {
         auto workers = pool.with_connection([](pqxx::connection& connection) {
           pqxx::read_transaction tx(connection);
           return db::list_workers(tx);
         });
         context.json(200, workers);
       }});
}

}  // namespace warren

// See operations_api.h.
#include "producer/operations_api.h"

#include "shared/db/bulk_operation_store.h"

namespace warren {
namespace {

constexpr int kRecentOperations = 50;

}  // namespace

void add_operation_routes(ApiRouter& router, db::ConnectionPool& pool) {
  router.add({"GET", "/v1/operations", "GET /v1/operations", Scope::kRead,
              [&pool](RequestContext& context) {
                auto operations = pool.with_connection([](pqxx::connection& connection) {
                  pqxx::read_transaction tx(connection);
                  return db::list_operations(tx, kRecentOperations);
                });
                context.json(200, operations);
              }});
  router.add({"GET", R"(/v1/operations/([^/]+))", "GET /v1/operations/{id}", Scope::kRead,
              [&pool](RequestContext& context) {
                const std::string id = context.request.matches[1].str();
                auto operation = pool.with_connection([&](pqxx::connection& connection) {
                  pqxx::read_transaction tx(connection);
                  return db::find_operation(tx, id);
                });
                if (!operation) throw ProblemError(not_found_problem("no operation " + id));
                context.json(200, *operation);
              }});
}

}  // namespace warren

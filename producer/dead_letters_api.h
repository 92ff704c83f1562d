// The operator routes of API.md "Dead letters": list, summary, one dead letter, requeue and
// discard one, and the bulk forms that start a durable operation (bulk_operation_runner.h runs
// it; GET /v1/operations/{id} shows its progress, operations_api.h).
//
// Reads need scope `read`, every change scope `admin`; the caller's token name is recorded as
// the actor of each change. The SQL is in shared/db/dead_letter_store.h and
// bulk_operation_store.h, shared with `warrenctl dlq`.
#pragma once

#include <functional>

#include "producer/api_router.h"
#include "shared/config.h"
#include "shared/db/connection_pool.h"

namespace warren {

class DeadLettersApi {
 public:
  struct Wakeups {
    std::function<void()> relay;   // a job was requeued: publish it now
    std::function<void()> runner;  // a bulk operation was created: start it now
  };

  DeadLettersApi(const Config& config, db::ConnectionPool& pool, ProducerMetrics& metrics,
                 Wakeups wakeups);

  void add_routes(ApiRouter& router);

 private:
  void list(RequestContext& context);
  void summary(RequestContext& context);
  void get(RequestContext& context);
  void requeue_one(RequestContext& context);
  void discard_one(RequestContext& context);
  void bulk(RequestContext& context, const std::string& kind);

  const Config& config_;
  db::ConnectionPool& pool_;
  ProducerMetrics& metrics_;
  Wakeups wakeups_;
};

}  // namespace warren

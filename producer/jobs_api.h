// The routes of API.md "Jobs": submit one, submit a batch, get, list, attempts, cancel.
// Submissions go through the SubmitBatcher (group commit); reads use the connection pool.
#pragma once

#include "producer/api_router.h"
#include "producer/submit_batcher.h"
#include "shared/config.h"
#include "shared/db/connection_pool.h"

namespace warren {

class JobsApi {
 public:
  JobsApi(const Config& config, SubmitBatcher& batcher, db::ConnectionPool& pool,
          ProducerMetrics& metrics);

  void add_routes(ApiRouter& router);

 private:
  void submit_one(RequestContext& context);
  void submit_batch(RequestContext& context);
  void get_job(RequestContext& context);
  void list_jobs(RequestContext& context);
  void get_attempts(RequestContext& context);
  void cancel_job(RequestContext& context);

  void count_submitted(const db::NewJob& job);
  // Hands jobs to the batcher and records how long the caller waited for the commit.
  std::vector<db::InsertOutcome> timed_submit(std::vector<db::NewJob> jobs);

  const Config& config_;
  SubmitBatcher& batcher_;
  db::ConnectionPool& pool_;
  ProducerMetrics& metrics_;
};

}  // namespace warren

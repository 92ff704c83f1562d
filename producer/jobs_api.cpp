// See jobs_api.h.
#include "producer/jobs_api.h"

#include "shared/logging.h"
#include "shared/strict_json.h"

namespace warren {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxBatchJobs = 1000;

json accepted_body(const std::string& id, const std::string& status) {
  const std::string url = "/v1/jobs/" + id;
  return {{"id", id}, {"status", status}, {"status_url", url}, {"attempts_url", url + "/attempts"}};
}

json parse_body(const httplib::Request& request) {
  require_json_content_type(request);
  auto parsed = parse_strict_json(request.body);
  if (!parsed.value) throw ProblemError(validation_problem(parsed.error));
  return std::move(*parsed.value);
}

std::optional<std::string> idempotency_header(const httplib::Request& request) {
  if (!request.has_header("Idempotency-Key")) return std::nullopt;
  return request.get_header_value("Idempotency-Key");
}

std::string path_id(const httplib::Request& request) {
  return request.matches[1].str();
}

std::vector<std::pair<std::string, std::string>> query_params(const httplib::Request& request) {
  return {request.params.begin(), request.params.end()};
}

}  // namespace

JobsApi::JobsApi(const Config& config, SubmitBatcher& batcher, db::ConnectionPool& pool,
                 ProducerMetrics& metrics)
    : config_(config), batcher_(batcher), pool_(pool), metrics_(metrics) {}

void JobsApi::add_routes(ApiRouter& router) {
  auto bind = [this](void (JobsApi::*method)(RequestContext&)) {
    return [this, method](RequestContext& context) { (this->*method)(context); };
  };
  router.add({"POST", R"(/v1/jobs)", "POST /v1/jobs", Scope::kSubmit, bind(&JobsApi::submit_one)});
  router.add({"GET", R"(/v1/jobs)", "GET /v1/jobs", Scope::kRead, bind(&JobsApi::list_jobs)});
  router.add({"POST", R"(/v1/jobs/batch)", "POST /v1/jobs/batch", Scope::kSubmit,
              bind(&JobsApi::submit_batch)});
  router.add(
      {"GET", R"(/v1/jobs/([^/]+))", "GET /v1/jobs/{id}", Scope::kRead, bind(&JobsApi::get_job)});
  router.add({"GET", R"(/v1/jobs/([^/]+)/attempts)", "GET /v1/jobs/{id}/attempts", Scope::kRead,
              bind(&JobsApi::get_attempts)});
  router.add({"POST", R"(/v1/jobs/([^/]+)/cancel)", "POST /v1/jobs/{id}/cancel", Scope::kSubmit,
              bind(&JobsApi::cancel_job)});
}

std::vector<db::InsertOutcome> JobsApi::timed_submit(std::vector<db::NewJob> jobs) {
  metrics::ScopedTimer timer(metrics_.submit_commit_seconds.with());
  return batcher_.submit(std::move(jobs));
}

void JobsApi::count_submitted(const db::NewJob& job) {
  metrics_.jobs_submitted.with({job.request.queue, job.request.type}).inc();
}

void JobsApi::submit_one(RequestContext& context) {
  const auto& request = context.request;
  json body = parse_body(request);
  JobRequest job_request =
      require_valid(validate_job_request(body, config_, "", idempotency_header(request)));
  db::NewJob job =
      db::make_new_job(std::move(job_request), request.get_header_value("traceparent"));
  const std::string queue = job.request.queue, type = job.request.type;

  const auto outcome = timed_submit({job}).at(0);
  switch (outcome.kind) {
    case db::InsertKind::kCreated:
      count_submitted(job);
      log::info("job accepted", {{"request_id", context.request_id},
                                 {"job_id", outcome.id},
                                 {"type", type},
                                 {"queue", queue},
                                 {"trace_id", job.traceparent.substr(3, 32)},
                                 {"caller", context.caller.name}});
      context.response.set_header("Location", "/v1/jobs/" + outcome.id);
      context.json(202, accepted_body(outcome.id, outcome.status));
      return;
    case db::InsertKind::kReplayed:
      metrics_.idempotent_replays.with().inc();
      context.response.set_header("Idempotent-Replayed", "true");
      context.response.set_header("Location", "/v1/jobs/" + outcome.id);
      context.json(200, accepted_body(outcome.id, outcome.status));
      return;
    case db::InsertKind::kConflict:
    case db::InsertKind::kNotWritten:
      throw ProblemError(conflict_problem("idempotency key '" +
                                          job.request.idempotency_key.value_or("") +
                                          "' was already used with a different request"));
  }
}

void JobsApi::submit_batch(RequestContext& context) {
  const auto& request = context.request;
  json body = parse_body(request);
  if (request.has_header("Idempotency-Key")) {
    throw ProblemError(
        validation_problem("a batch has no Idempotency-Key header: give idempotency_key per job",
                           {{"Idempotency-Key", "not accepted on /v1/jobs/batch"}}));
  }
  if (!body.is_object() || !body.contains("jobs") || !body["jobs"].is_array()) {
    throw ProblemError(validation_problem("body must be {\"jobs\": [...]}",
                                          {{"jobs", "must be an array of jobs"}}));
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "jobs")
      throw ProblemError(
          validation_problem(key + " is not a known field", {{key, "is not a known field"}}));
  }
  const auto& items = body["jobs"];
  if (items.empty() || items.size() > kMaxBatchJobs) {
    throw ProblemError(validation_problem("jobs must hold 1 to 1000 jobs",
                                          {{"jobs", "must hold 1 to 1000 jobs"}}));
  }

  // All-or-nothing validation: every job is checked and every error reported at once.
  JobValidation all;
  std::vector<db::NewJob> jobs;
  const std::string traceparent = request.get_header_value("traceparent");
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto one = validate_job_request(items[i], config_, "jobs[" + std::to_string(i) + "].");
    all.bad_request.insert(all.bad_request.end(), one.bad_request.begin(), one.bad_request.end());
    all.unprocessable.insert(all.unprocessable.end(), one.unprocessable.begin(),
                             one.unprocessable.end());
    if (one.job) jobs.push_back(db::make_new_job(std::move(*one.job), traceparent));
  }
  if (!all.bad_request.empty() || !all.unprocessable.empty()) require_valid(std::move(all));

  const auto outcomes = timed_submit(jobs);
  std::vector<FieldError> conflicts;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (outcomes[i].kind == db::InsertKind::kConflict) {
      conflicts.push_back({"jobs[" + std::to_string(i) + "].idempotency_key",
                           "was already used with a different request"});
    }
  }
  if (!conflicts.empty()) {
    throw ProblemError(conflict_problem(
        "idempotency keys were already used with different requests; no job of this batch was "
        "accepted",
        std::move(conflicts)));
  }
  json answer = {{"jobs", json::array()}};
  std::size_t created = 0;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    json entry = accepted_body(outcomes[i].id, outcomes[i].status);
    if (outcomes[i].kind == db::InsertKind::kReplayed) {
      entry["idempotent_replayed"] = true;
      metrics_.idempotent_replays.with().inc();
    } else {
      count_submitted(jobs[i]);
      ++created;
    }
    answer["jobs"].push_back(std::move(entry));
  }
  log::info("job batch accepted", {{"request_id", context.request_id},
                                   {"jobs", outcomes.size()},
                                   {"created", created},
                                   {"caller", context.caller.name}});
  context.json(202, answer);
}

void JobsApi::get_job(RequestContext& context) {
  const std::string id = path_id(context.request);
  auto job = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return db::find_job(tx, id);
  });
  if (!job) throw ProblemError(not_found_problem("no job " + id));
  context.json(200, *job);
}

void JobsApi::list_jobs(RequestContext& context) {
  const auto filter = db::parse_job_filter(query_params(context.request));
  auto page = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return db::list_jobs(tx, filter);
  });
  context.json(200, page);
}

void JobsApi::get_attempts(RequestContext& context) {
  const std::string id = path_id(context.request);
  auto attempts = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    return db::find_attempts(tx, id);
  });
  if (!attempts) throw ProblemError(not_found_problem("no job " + id));
  context.json(200, *attempts);
}

void JobsApi::cancel_job(RequestContext& context) {
  const std::string id = path_id(context.request);
  auto outcome = pool_.with_connection([&](pqxx::connection& c) {
    pqxx::work tx(c);
    auto result = db::cancel_job(tx, id);
    tx.commit();
    return result;
  });
  switch (outcome.kind) {
    case db::CancelKind::kNotFound:
      throw ProblemError(not_found_problem("no job " + id));
    case db::CancelKind::kAlreadyFinished:
      throw ProblemError(conflict_problem("job " + id + " is already " +
                                          outcome.job->value("status", std::string("finished"))));
    case db::CancelKind::kCancelled:
    case db::CancelKind::kCancelRequested:
      log::info("job cancel", {{"request_id", context.request_id},
                               {"job_id", id},
                               {"caller", context.caller.name},
                               {"running", outcome.kind == db::CancelKind::kCancelRequested}});
      context.json(200, *outcome.job);
      return;
  }
}

}  // namespace warren

// See workload.h.
#include "chaos/workload.h"

#include <httplib.h>

#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "chaos/warren_cluster.h"
#include "shared/amqp/amqp_connection.h"
#include "shared/topology.h"

namespace warren::chaos {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::milliseconds;

std::string_view kind_name(JobKind kind) {
  switch (kind) {
    case JobKind::kNoop:
      return "noop";
    case JobKind::kSleep:
      return "sleep";
    case JobKind::kFailThenSucceed:
      return "fail-then-succeed";
    case JobKind::kAlwaysFail:
      return "always-fail";
    case JobKind::kPermanent:
      return "permanent";
    case JobKind::kDelayed:
      return "delayed";
    case JobKind::kCancelQueued:
      return "cancel-queued";
    case JobKind::kCancelRunning:
      return "cancel-running";
    case JobKind::kDuplicate:
      return "idempotent-duplicate";
  }
  return "?";
}

// One thread's HTTP clients, one per producer. A request that is refused (5xx), times out or
// finds no server is retried on the next producer: what a client behind a load balancer sees.
class Workload::Client {
 public:
  Client(const Workload& owner, int first_producer) : owner_(owner), next_(first_producer) {}

  // The answer of the first producer that answers with a status below 500 (or nullopt after
  // give_up_after). Statuses 429 and 503 (overloaded, not ready) are retried too.
  std::optional<httplib::Response> post(const std::string& path, const std::string& body,
                                        WorkloadCounts& counts) {
    const auto deadline = Clock::now() + owner_.settings_.give_up_after;
    const int producers = owner_.cluster_.settings().producers;
    while (Clock::now() < deadline) {
      const int slot = next_;
      ++counts.requests;
      httplib::Client client("127.0.0.1", owner_.cluster_.producer_port(slot));
      client.set_connection_timeout(2);
      client.set_read_timeout(10);
      auto result = client.Post(path.c_str(), body, "application/json");
      if (result && result->status < 500 && result->status != 429) return *result;
      ++counts.failovers;
      next_ = (slot + 1) % producers;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return std::nullopt;
  }

  int producer() const { return next_; }
  void use_producer(int slot) { next_ = slot; }

 private:
  const Workload& owner_;
  int next_;
};

Workload::Workload(WorkloadSettings settings, const WarrenCluster& cluster)
    : settings_(std::move(settings)), cluster_(cluster) {}

namespace {

struct PendingCancel {
  Clock::time_point due;
  std::size_t job_index;  // into Workload::jobs_
};

// How often each kind is submitted (out of the sum); poison is separate (1 in 200).
constexpr int kKindWeights[kJobKinds] = {30, 15, 15, 8, 7, 10, 5, 4, 6};

JobKind pick_kind(std::mt19937_64& random) {
  std::discrete_distribution<int> distribution(std::begin(kKindWeights), std::end(kKindWeights));
  return static_cast<JobKind>(distribution(random));
}

int uniform(std::mt19937_64& random, int low, int high) {
  return std::uniform_int_distribution<int>(low, high)(random);
}

}  // namespace

void Workload::run(const std::atomic<bool>& stop) {
  std::vector<std::thread> threads;
  for (int i = 0; i < settings_.threads; ++i) {
    threads.emplace_back([this, i, &stop] { submit_loop(i, stop); });
  }
  for (auto& t : threads) t.join();
}

void Workload::submit_loop(int thread_index, const std::atomic<bool>& stop) {
  std::mt19937_64 random(settings_.seed * 1000003 + static_cast<std::uint64_t>(thread_index));
  Client client(*this, thread_index % cluster_.settings().producers);
  std::vector<PendingCancel> cancels;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(settings_.threads / settings_.jobs_per_second));
  auto next_submit = Clock::now();
  std::uint64_t sequence = 0;

  auto run_due_cancels = [&](bool all) {
    for (auto it = cancels.begin(); it != cancels.end();) {
      if (!all && it->due > Clock::now()) {
        ++it;
        continue;
      }
      std::this_thread::sleep_until(it->due);
      std::string id;
      {
        std::lock_guard lock(mutex_);
        id = jobs_[it->job_index].id;
      }
      auto answer = client.post("/v1/jobs/" + id + "/cancel", "", counts_);
      std::lock_guard lock(mutex_);
      auto& job = jobs_[it->job_index];
      job.cancel_status = answer ? answer->status : 0;
      if (answer && answer->status == 200) {
        job.status_at_cancel = json::parse(answer->body).value("status", "");
      }
      it = cancels.erase(it);
    }
  };

  while (!stop.load()) {
    run_due_cancels(false);
    std::this_thread::sleep_until(next_submit);
    next_submit += interval;
    ++sequence;
    if (uniform(random, 1, 200) == 1) {
      publish_poison(settings_.seed * 1000000 + thread_index * 100000 + sequence);
      continue;
    }

    SubmittedJob job;
    job.kind = pick_kind(random);
    job.idempotency_key = "chaos-" + std::to_string(settings_.seed) + "-" +
                          std::to_string(thread_index) + "-" + std::to_string(sequence);
    json payload = json::object();
    json request = {{"type", "ledger"},
                    {"queue", settings_.queue_names[uniform(random, 0, 1)]},
                    {"idempotency_key", job.idempotency_key},
                    {"backoff", {{"initial_ms", 500}, {"factor", 2}, {"max_ms", 2000}}}};
    job.max_attempts = 5;
    switch (job.kind) {
      case JobKind::kSleep:
        payload["sleep_ms"] = uniform(random, 200, 2500);
        break;
      case JobKind::kFailThenSucceed:
        job.fail_times = uniform(random, 1, 3);
        job.max_attempts = 8;
        break;
      case JobKind::kAlwaysFail:
        job.fail_times = 1000;
        job.max_attempts = 3;
        break;
      case JobKind::kPermanent:
        job.fail_times = 1000;
        job.permanent = true;
        break;
      case JobKind::kDelayed:
        request["delay_ms"] = uniform(random, 1000, 15000);
        break;
      case JobKind::kCancelQueued:
        request["delay_ms"] = 20000;
        break;
      case JobKind::kCancelRunning:
        payload["sleep_ms"] = 4000;
        break;
      case JobKind::kNoop:
      case JobKind::kDuplicate:
        break;
    }
    if (job.fail_times > 0) payload["fail_times"] = job.fail_times;
    if (job.permanent) payload["permanent"] = true;
    request["payload"] = payload;
    request["max_attempts"] = job.max_attempts;

    const auto body = request.dump();
    auto answer = client.post("/v1/jobs", body, counts_);
    if (!answer) {
      ++counts_.given_up;
      continue;
    }
    if (answer->status != 202 && answer->status != 200) {
      ++counts_.rejected;
      continue;
    }
    if (answer->status == 200) ++counts_.idempotent_replays;
    job.id = json::parse(answer->body).value("id", "");
    if (job.kind == JobKind::kDuplicate) {
      // The same request again, to the other producer: the key must make it the same job.
      client.use_producer((client.producer() + 1) % cluster_.settings().producers);
      auto again = client.post("/v1/jobs", body, counts_);
      if (again && again->status == 200)
        job.duplicate_id = json::parse(again->body).value("id", "");
    }

    std::lock_guard lock(mutex_);
    jobs_.push_back(job);
    if (job.kind == JobKind::kCancelQueued) {
      cancels.push_back(
          {Clock::now() + milliseconds(uniform(random, 1000, 3000)), jobs_.size() - 1});
    } else if (job.kind == JobKind::kCancelRunning) {
      cancels.push_back({Clock::now() + milliseconds(1500), jobs_.size() - 1});
    }
  }
  run_due_cancels(true);
}

// Bytes that are not a job, published persistent and confirmed to a work queue, retried (with
// a fresh connection) while the broker is away.
void Workload::publish_poison(std::uint64_t number) {
  PoisonMessage poison{"chaos poison #" + std::to_string(number) + ": not json", 0, false};
  amqp::OutgoingMessage message;
  message.routing_key = TopologyNames{settings_.prefix}.work_queue(settings_.queue_names[0]);
  message.body = poison.body;
  message.mandatory = true;
  const auto deadline = Clock::now() + settings_.give_up_after;
  while (!poison.confirmed && Clock::now() < deadline) {
    try {
      auto connection = amqp::AmqpConnection::open(settings_.amqp_url, "chaos poison");
      connection.enable_confirms();
      ++poison.publishes;
      connection.publish(message);
      poison.confirmed = connection.wait_for_confirms(std::chrono::seconds(5)).all_acked();
    } catch (const std::exception&) {
      // The broker is restarting: try again shortly.
    }
    if (!poison.confirmed) std::this_thread::sleep_for(milliseconds(500));
  }
  std::lock_guard lock(mutex_);
  poison_.push_back(poison);
}

std::vector<SubmittedJob> Workload::jobs() const {
  std::lock_guard lock(mutex_);
  return jobs_;
}

std::vector<PoisonMessage> Workload::poison() const {
  std::lock_guard lock(mutex_);
  return poison_;
}

}  // namespace warren::chaos

// See health_server.h.
#include "consumer/health_server.h"

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "shared/metrics/metrics_registry.h"
#include "shared/problem.h"

namespace warren::consumer {
namespace {

// The loop timer ticks every second; three missed ticks mean the loop is blocked.
constexpr std::int64_t kLoopStallMs = 3000;
// Probes are tiny and few; a handful of threads is plenty.
constexpr int kServerThreads = 4;

void answer_problem(httplib::Response& response, const std::string& slug, const std::string& title,
                    const std::string& detail, nlohmann::json extra) {
  Problem problem;
  problem.status = 503;
  problem.slug = slug;
  problem.title = title;
  problem.detail = detail;
  auto body = problem.to_json();
  body.update(extra);
  response.status = 503;
  response.set_content(body.dump(), "application/problem+json");
}

}  // namespace

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

HealthServer::HealthServer(const std::string& addr, const HealthState& state,
                           int max_stuck_handlers, const metrics::MetricsRegistry& registry)
    : state_(state), max_stuck_handlers_(max_stuck_handlers), registry_(registry) {
  const auto colon = addr.rfind(':');
  host_ = addr.substr(0, colon);
  port_ = std::stoi(addr.substr(colon + 1));
}

HealthServer::~HealthServer() {
  stop();
}

void HealthServer::start() {
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
    const std::int64_t since_tick = steady_now_ms() - state_.loop_tick_ms.load();
    const int stuck = state_.stuck_handlers.load();
    nlohmann::json facts = {{"loop_last_turn_ms_ago", since_tick},
                            {"stuck_handlers", stuck},
                            {"max_stuck_handlers", max_stuck_handlers_}};
    if (since_tick > kLoopStallMs) {
      answer_problem(response, "not-live", "Not live", "the event loop is not turning", facts);
    } else if (stuck > max_stuck_handlers_) {
      answer_problem(response, "not-live", "Not live",
                     "more handlers are stuck than WARREN_MAX_STUCK_HANDLERS allows", facts);
    } else {
      facts["status"] = "ok";
      response.set_content(facts.dump(), "application/json");
    }
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    const bool broker = state_.broker_connected.load();
    const bool database = state_.database_available.load();
    const bool consuming = state_.consuming.load();
    const bool stopping = state_.shutting_down.load();
    nlohmann::json facts = {{"broker", broker ? "up" : "down"},
                            {"database", database ? "up" : "down"},
                            {"consuming", consuming}};
    if (broker && database && consuming && !stopping) {
      facts["status"] = "ready";
      response.set_content(facts.dump(), "application/json");
      return;
    }
    std::string detail = stopping               ? "shutting down"
                         : !broker && !database ? "broker and database are unreachable"
                         : !broker              ? "broker is unreachable"
                         : !database            ? "database is unreachable"
                                                : "not consuming yet";
    answer_problem(response, "not-ready", "Not ready", detail, facts);
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry_.render(), std::string(metrics::kPrometheusContentType));
  });
  if (!server_->bind_to_port(host_.c_str(), port_)) {
    throw std::runtime_error("cannot listen on WARREN_HEALTH_ADDR " + host_ + ":" +
                             std::to_string(port_));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

void HealthServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace warren::consumer

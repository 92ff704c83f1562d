// See http_load.h.
#include "http_load.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace warren::bench {
namespace {

httplib::Client make_client(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  client.set_connection_timeout(5);
  client.set_read_timeout(60);
  return client;
}

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Runs `connections` client threads; each calls send(client, latencies) until it returns false.
// The first exception of any thread is rethrown here once all have stopped.
template <typename Send>
void run_clients(int port, int connections, LoadResult& result, Send send) {
  std::mutex mutex;
  std::exception_ptr failure;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      auto client = make_client(port);
      std::vector<double> latencies;
      try {
        while (!stop.load() && send(client, latencies)) {
        }
      } catch (...) {
        stop = true;
        std::lock_guard lock(mutex);
        if (!failure) failure = std::current_exception();
      }
      std::lock_guard lock(mutex);
      result.latencies_ms.insert(result.latencies_ms.end(), latencies.begin(), latencies.end());
    });
  }
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
}

void expect_accepted(const httplib::Result& response, const std::string& path) {
  if (!response) {
    throw std::runtime_error("POST " + path + " failed: " + httplib::to_string(response.error()));
  }
  if (response->status != 202) {
    throw std::runtime_error("POST " + path + " answered " + std::to_string(response->status) +
                             ": " + response->body.substr(0, 500));
  }
}

}  // namespace

namespace {

// Both load shapes: each connection takes the next unsent body; with a rate, body k also waits
// until it is due (start + k / rate), and its latency counts from then, so a client that fell
// behind shows it (no coordinated omission).
LoadResult post_bodies(int port, const std::string& path, const std::vector<std::string>& bodies,
                       int connections, std::size_t jobs_per_body, std::optional<double> rate) {
  LoadResult result;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> answered{0};
  result.started_at = std::chrono::system_clock::now();
  const auto start = Clock::now();
  run_clients(port, connections, result, [&](httplib::Client& client, std::vector<double>& lat) {
    const auto index = next.fetch_add(1);
    if (index >= bodies.size()) return false;
    auto sent = Clock::now();
    if (rate) {
      sent = start + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(static_cast<double>(index) / *rate));
      std::this_thread::sleep_until(sent);
    }
    auto response = client.Post(path.c_str(), bodies[index], "application/json");
    lat.push_back(ms_between(sent, Clock::now()));
    expect_accepted(response, path);
    answered.fetch_add(1);
    return true;
  });
  result.seconds = ms_between(start, Clock::now()) / 1000.0;
  result.requests = answered.load();
  result.accepted = result.requests * jobs_per_body;
  return result;
}

}  // namespace

LoadResult post_closed_loop(int port, const std::string& path,
                            const std::vector<std::string>& bodies, int connections,
                            std::size_t jobs_per_body) {
  return post_bodies(port, path, bodies, connections, jobs_per_body, std::nullopt);
}

LoadResult post_paced(int port, const std::vector<std::string>& bodies, double rate,
                      int connections) {
  return post_bodies(port, "/v1/jobs", bodies, connections, 1, rate);
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace warren::bench

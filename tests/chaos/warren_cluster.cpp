// See warren_cluster.h.
#include "chaos/warren_cluster.h"

#include <httplib.h>
#include <signal.h>

#include <stdexcept>

#include "support/test_stack.h"

namespace warren::chaos {

using std::chrono::milliseconds;

WarrenCluster::WarrenCluster(ClusterSettings settings) : settings_(std::move(settings)) {
  for (int i = 0; i < settings_.producers; ++i) producer_ports_.push_back(test::free_port());
  for (int i = 0; i < settings_.consumers; ++i) consumer_health_ports_.push_back(test::free_port());
  producers_.resize(settings_.producers);
  consumers_.resize(settings_.consumers);
  for (int i = 0; i < settings_.producers; ++i) start_producer(i);
  for (int i = 0; i < settings_.consumers; ++i) start_consumer(i);
}

WarrenCluster::~WarrenCluster() {
  try {
    stop_all();
  } catch (const std::exception&) {
    // ChildProcess destructors still SIGKILL whatever is left.
  }
}

std::map<std::string, std::string> WarrenCluster::common_env() const {
  std::string queues;
  for (const auto& q : settings_.queues) queues += (queues.empty() ? "" : ",") + q;
  const auto separator = settings_.amqp_url.find('?') == std::string::npos ? "?" : "&";
  return {{"WARREN_DATABASE_URL", settings_.database_url},
          {"WARREN_AMQP_URL", settings_.amqp_url + separator +
                                  "heartbeat=" + std::to_string(settings_.amqp_heartbeat_seconds)},
          {"WARREN_AMQP_PREFIX", settings_.prefix},
          {"WARREN_QUEUES", queues},
          {"WARREN_LOG_LEVEL", "info"},
          {"WARREN_OUTBOX_POLL_MS", "200"}};
}

std::unique_ptr<test::ChildProcess> WarrenCluster::launch(const std::string& program,
                                                          const std::string& name,
                                                          std::map<std::string, std::string> env) {
  const int incarnation = ++incarnations_[name];
  const auto full_name = name + "." + std::to_string(incarnation);
  env["WARREN_WORKER_ID"] = "chaos-" + full_name;
  return std::make_unique<test::ChildProcess>(test::binary(program), std::vector<std::string>{},
                                              env, settings_.log_dir + "/" + full_name + ".log");
}

void WarrenCluster::start_producer(int slot) {
  auto env = common_env();
  env["WARREN_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(producer_ports_.at(slot));
  producers_.at(slot) = launch("warren-producer", "producer-" + std::to_string(slot), env);
}

void WarrenCluster::start_consumer(int slot) {
  auto env = common_env();
  env["WARREN_HEALTH_ADDR"] = "127.0.0.1:" + std::to_string(consumer_health_ports_.at(slot));
  env["WARREN_CONCURRENCY"] = "8";
  env["WARREN_HEARTBEAT_MS"] = "1000";
  env["WARREN_SHUTDOWN_GRACE_MS"] = std::to_string(settings_.shutdown_grace.count());
  env["WARREN_TEST_LEDGER_DIR"] = settings_.ledger_dir;
  consumers_.at(slot) = launch("warren-consumer-test", "consumer-" + std::to_string(slot), env);
}

void WarrenCluster::kill_producer(int slot) {
  producers_.at(slot)->kill_now();
}

void WarrenCluster::kill_consumer(int slot) {
  consumers_.at(slot)->kill_now();
}

WarrenCluster::Termination WarrenCluster::terminate_consumer(int slot) {
  const auto start = std::chrono::steady_clock::now();
  const int status = consumers_.at(slot)->stop(settings_.shutdown_grace + std::chrono::seconds(10));
  return {status,
          std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start)};
}

void WarrenCluster::pause_consumer(int slot) {
  ::kill(consumers_.at(slot)->pid(), SIGSTOP);
}

void WarrenCluster::resume_consumer(int slot) {
  ::kill(consumers_.at(slot)->pid(), SIGCONT);
}

namespace {

bool answers_ready(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  client.set_read_timeout(2);
  auto response = client.Get("/readyz");
  return response && response->status == 200;
}

}  // namespace

bool WarrenCluster::all_ready() {
  for (int port : producer_ports_) {
    if (!answers_ready(port)) return false;
  }
  for (int port : consumer_health_ports_) {
    if (!answers_ready(port)) return false;
  }
  return true;
}

std::vector<std::string> WarrenCluster::stop_all() {
  std::vector<std::string> unclean;
  auto stop = [&](std::vector<std::unique_ptr<test::ChildProcess>>& slots, const char* kind) {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (!slots[i] || !slots[i]->running()) continue;
      ::kill(slots[i]->pid(), SIGCONT);  // a paused process cannot handle SIGTERM
      if (slots[i]->stop() != 0) unclean.push_back(std::string(kind) + "-" + std::to_string(i));
    }
  };
  stop(consumers_, "consumer");
  stop(producers_, "producer");
  return unclean;
}

}  // namespace warren::chaos

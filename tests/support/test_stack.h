// What integration tests share: the servers scripts/test.sh started (found through the
// WARREN_TEST_* variables), a fresh database and AMQP prefix per test so tests never see each
// other's jobs or queues, a producer started as a real process, and control over the servers
// for outage tests (stop/start by the stack script, by PID).
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "shared/amqp/amqp_connection.h"
#include "support/child_process.h"

namespace warren::test {

// A WARREN_TEST_* variable; fails the test loudly when missing (run through scripts/test.sh).
std::string test_env(const std::string& name);

std::string binary(const std::string& name);  // build/bin/<name>
int free_port();
std::string random_suffix();

// Stops and starts the test servers, as an outage would (scripts/stack.sh, by PID).
void stack_command(const std::string& action);

// Deletes the queues and exchanges of the topology Warren declares for `prefix` and `queues`
// (with the default 20 delay levels), so a test leaves nothing on the shared broker.
void delete_topology(amqp::AmqpConnection& broker, const std::string& prefix,
                     const std::vector<std::string>& queues);

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = std::chrono::milliseconds(50));

class TestDatabase {
 public:
  TestDatabase();   // CREATE DATABASE warren_t_<random>
  ~TestDatabase();  // DROP DATABASE, unless keep() was called (for a post-mortem)
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  void keep() { keep_ = true; }

 private:
  std::string name_, url_;
  bool keep_ = false;
};

class RunningProducer {
 public:
  RunningProducer(std::map<std::string, std::string> env, const std::string& log_name);
  ~RunningProducer();
  RunningProducer(const RunningProducer&) = delete;
  RunningProducer& operator=(const RunningProducer&) = delete;

  std::unique_ptr<httplib::Client> client() const;
  int port() const { return port_; }
  ChildProcess& process() { return *process_; }
  int stop() { return process_->stop(); }

 private:
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

// A consumer process (warren-consumer-test: the built-in handlers plus crash, stubborn, echo),
// with its health port. The constructor waits until /readyz says it is consuming.
class RunningConsumer {
 public:
  RunningConsumer(std::map<std::string, std::string> env, const std::string& log_name,
                  bool wait_ready = true);
  ~RunningConsumer();
  RunningConsumer(const RunningConsumer&) = delete;
  RunningConsumer& operator=(const RunningConsumer&) = delete;

  std::unique_ptr<httplib::Client> health_client() const;
  int health_port() const { return port_; }
  // GET /readyz answered 200.
  bool ready() const;
  ChildProcess& process() { return *process_; }
  const std::string& worker_id() const { return worker_id_; }
  int stop() { return process_->stop(); }

 private:
  int port_;
  std::string worker_id_;
  std::unique_ptr<ChildProcess> process_;
};

// Base fixture: a database, a prefix, the common environment, and helpers.
class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Environment for Warren processes of this test (database, broker, prefix, queues).
  std::map<std::string, std::string> warren_env() const;
  RunningProducer& start_producer(std::map<std::string, std::string> extra_env = {});
  // Starts one more consumer (kept in consumers_, stopped with SIGTERM at TearDown).
  RunningConsumer& start_consumer(std::map<std::string, std::string> extra_env = {},
                                  bool wait_ready = true);
  std::unique_ptr<httplib::Client> api() const { return producer_->client(); }

  amqp::AmqpConnection broker() const;
  // Waits for one message on a work queue (`queue` = "default" -> <prefix>.q.default).
  std::optional<amqp::Delivery> take_message(const std::string& queue,
                                             std::chrono::milliseconds timeout);
  std::size_t queue_depth(const std::string& queue);
  // Consumes (and acks) messages from <prefix>.dead-letters until `expected` arrived or the
  // timeout passed; only with dead_letter_recorder_ off. A consumer, not basic.get: the queue has a
  // single active consumer, which quorum queues only serve through basic.consume.
  std::vector<amqp::Delivery> take_dead_letters(std::size_t expected,
                                                std::chrono::milliseconds timeout);

  // SQL against this test's database.
  nlohmann::json query_json(const std::string& sql);  // every row, as [{"column": value}]
  // The first column of the first row (null when there is no row).
  nlohmann::json query_value(const std::string& sql);
  int64_t query_int(const std::string& sql);
  void execute(const std::string& sql);

  CommandResult warrenctl(const std::vector<std::string>& args,
                          std::map<std::string, std::string> extra_env = {});

  std::unique_ptr<TestDatabase> database_;
  std::string prefix_;
  std::vector<std::string> queues_{"default"};
  std::unique_ptr<RunningProducer> producer_;
  std::vector<std::unique_ptr<RunningConsumer>> consumers_;
  // Consumers record dead letters (WARREN_DEAD_LETTER_RECORDER), except in tests that read the
  // dead-letter queue themselves: the queue has a single active consumer.
  bool dead_letter_recorder_ = true;
};

// POST a JSON body with the usual headers.
httplib::Result post_json(httplib::Client& client, const std::string& path,
                          const nlohmann::json& body, const httplib::Headers& extra = {});

}  // namespace warren::test

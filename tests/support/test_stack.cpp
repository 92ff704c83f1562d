// See test_stack.h.
#include <gtest/gtest.h>

#include "support/test_stack.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <pqxx/pqxx>
#include <random>

#include "shared/topology.h"
#include "shared/uuid.h"

namespace warren::test {

std::string test_env(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(name + " is not set: run integration tests through scripts/test.sh");
  }
  return value;
}

std::string binary(const std::string& name) {
  return std::string(WARREN_BIN_DIR) + "/" + name;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t length = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string random_suffix() {
  std::random_device device;
  std::uniform_int_distribution<uint32_t> dist;
  char buffer[9];
  std::snprintf(buffer, sizeof(buffer), "%08x", dist(device));
  return buffer;
}

void delete_topology(amqp::AmqpConnection& broker, const std::string& prefix,
                     const std::vector<std::string>& queues) {
  const auto topology = build_topology(prefix, queues, 20);
  for (const auto& queue : topology.queues) broker.delete_queue(queue.name);
  for (const auto& exchange : topology.exchanges) broker.delete_exchange(exchange.name);
}

void stack_command(const std::string& action) {
  auto result = run_command(test_env("WARREN_TEST_STACK_SCRIPT"),
                            {action, test_env("WARREN_TEST_STACK_DIR")});
  if (result.exit_code != 0) {
    throw std::runtime_error("stack " + action + " failed: " + result.err + result.out);
  }
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

namespace {

std::string with_database(const std::string& url, const std::string& database) {
  auto slash = url.rfind('/');
  auto query = url.find('?', slash);
  return url.substr(0, slash + 1) + database +
         (query == std::string::npos ? "" : url.substr(query));
}

}  // namespace

TestDatabase::TestDatabase() : name_("warren_t_" + random_suffix()) {
  const auto admin = test_env("WARREN_TEST_DATABASE_URL");
  pqxx::connection connection(admin);
  pqxx::nontransaction tx(connection);
  tx.exec("CREATE DATABASE " + name_);
  url_ = with_database(admin, name_);
}

TestDatabase::~TestDatabase() {
  if (keep_) return;
  try {
    pqxx::connection connection(test_env("WARREN_TEST_DATABASE_URL"));
    pqxx::nontransaction tx(connection);
    tx.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // The server may be down at the end of an outage test that failed; the stack is wiped
    // at the next run anyway.
  }
}

RunningProducer::RunningProducer(std::map<std::string, std::string> env,
                                 const std::string& log_name)
    : port_(free_port()) {
  env["WARREN_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(port_);
  const std::string log_path = test_env("WARREN_TEST_STACK_DIR") + "/" + log_name + ".log";
  process_ = std::make_unique<ChildProcess>(binary("warren-producer"), std::vector<std::string>{},
                                            env, log_path);
  auto c = client();
  const bool healthy = wait_until(
      [&] {
        auto r = c->Get("/healthz");
        return r && r->status == 200;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(50));
  if (!healthy) {
    throw std::runtime_error("producer did not come up; log:\n" + process_->log());
  }
}

RunningProducer::~RunningProducer() {
  process_->stop();
}

std::unique_ptr<httplib::Client> RunningProducer::client() const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  c->set_connection_timeout(5);
  c->set_read_timeout(30);
  return c;
}

RunningConsumer::RunningConsumer(std::map<std::string, std::string> env,
                                 const std::string& log_name, bool wait_ready)
    : port_(free_port()), worker_id_(log_name) {
  env["WARREN_HEALTH_ADDR"] = "127.0.0.1:" + std::to_string(port_);
  env["WARREN_WORKER_ID"] = worker_id_;
  const std::string log_path = test_env("WARREN_TEST_STACK_DIR") + "/" + log_name + ".log";
  process_ = std::make_unique<ChildProcess>(binary("warren-consumer-test"),
                                            std::vector<std::string>{}, env, log_path);
  if (wait_ready && !wait_until([&] { return ready(); }, std::chrono::seconds(30))) {
    throw std::runtime_error("consumer did not become ready; log:\n" + process_->log());
  }
}

RunningConsumer::~RunningConsumer() {
  process_->stop();
}

std::unique_ptr<httplib::Client> RunningConsumer::health_client() const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  c->set_connection_timeout(2);
  c->set_read_timeout(5);
  return c;
}

bool RunningConsumer::ready() const {
  auto r = health_client()->Get("/readyz");
  return r && r->status == 200;
}

// A server may close a connection while a test is still writing to it (a 413 answered before
// the whole body was sent): that write must fail with EPIPE, not kill the test binary, as it
// once did in CI (ProducerApi.EveryErrorIsProblemJsonWithTheStatusOfTheTable).
[[maybe_unused]] static const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

// "Suite-Test", usable in a file name (parameterized tests have slashes in their names).
static std::string current_test_name() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "-" + info->name();
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

void IntegrationTest::SetUp() {
  database_ = std::make_unique<TestDatabase>();
  prefix_ = "t" + random_suffix();
}

void IntegrationTest::TearDown() {
  for (auto& consumer : consumers_) {
    if (!consumer->process().running()) continue;
    const int status = consumer->stop();
    EXPECT_EQ(status, 0) << "consumer " << consumer->worker_id()
                         << " failed its graceful shutdown; log:\n"
                         << consumer->process().log();
  }
  consumers_.clear();
  if (producer_) {
    const int status = producer_->stop();
    // A producer that did not exit 0 on SIGTERM failed its graceful shutdown.
    EXPECT_EQ(status, 0) << producer_->process().log();
    producer_.reset();
  }
  try {
    auto connection = broker();
    delete_topology(connection, prefix_, queues_);
  } catch (const std::exception&) {
    // Broker down after a failed outage test: its queues die with the wiped stack.
  }
  database_.reset();
}

std::map<std::string, std::string> IntegrationTest::warren_env() const {
  std::string queues;
  for (const auto& q : queues_) queues += (queues.empty() ? "" : ",") + q;
  return {{"WARREN_DATABASE_URL", database_->url()},
          {"WARREN_AMQP_URL", test_env("WARREN_TEST_AMQP_URL")},
          {"WARREN_AMQP_PREFIX", prefix_},
          {"WARREN_QUEUES", queues},
          {"WARREN_LOG_LEVEL", "debug"},
          {"WARREN_OUTBOX_POLL_MS", "200"}};
}

RunningProducer& IntegrationTest::start_producer(std::map<std::string, std::string> extra_env) {
  auto env = warren_env();
  for (auto& [k, v] : extra_env) env[k] = v;
  producer_ = std::make_unique<RunningProducer>(env, "producer-" + current_test_name());
  return *producer_;
}

RunningConsumer& IntegrationTest::start_consumer(std::map<std::string, std::string> extra_env,
                                                 bool wait_ready) {
  auto env = warren_env();
  env["WARREN_CONCURRENCY"] = "8";
  env["WARREN_HEARTBEAT_MS"] = "1000";
  env["WARREN_SHUTDOWN_GRACE_MS"] = "10000";
  env["WARREN_DEAD_LETTER_RECORDER"] = dead_letter_recorder_ ? "1" : "0";
  for (auto& [k, v] : extra_env) env[k] = v;
  const std::string name =
      "consumer-" + current_test_name() + "-" + std::to_string(consumers_.size() + 1);
  consumers_.push_back(std::make_unique<RunningConsumer>(env, name, wait_ready));
  return *consumers_.back();
}

amqp::AmqpConnection IntegrationTest::broker() const {
  return amqp::AmqpConnection::open(test_env("WARREN_TEST_AMQP_URL"), "warren integration test");
}

std::optional<amqp::Delivery> IntegrationTest::take_message(const std::string& queue,
                                                            std::chrono::milliseconds timeout) {
  auto connection = broker();
  std::optional<amqp::Delivery> delivery;
  wait_until(
      [&] {
        // The producer's relay declares the topology when it connects, which may be after the
        // test's first look: a queue not there yet is "nothing yet", not an error.
        const auto name = TopologyNames{prefix_}.work_queue(queue);
        if (!connection.check_queue(name)) return false;
        delivery = connection.basic_get(name, true);
        return delivery.has_value();
      },
      timeout, std::chrono::milliseconds(20));
  return delivery;
}

std::size_t IntegrationTest::queue_depth(const std::string& queue) {
  auto connection = broker();
  auto counts = connection.inspect_queue(TopologyNames{prefix_}.work_queue(queue));
  return counts ? counts->message_count : 0;
}

nlohmann::json IntegrationTest::query_json(const std::string& sql) {
  pqxx::connection connection(database_->url());
  pqxx::nontransaction tx(connection);
  auto row = tx.exec1("SELECT coalesce(json_agg(q), '[]'::json) FROM (" + sql + ") q");
  return nlohmann::json::parse(row[0].c_str());
}

std::vector<amqp::Delivery> IntegrationTest::take_dead_letters(std::size_t expected,
                                                               std::chrono::milliseconds timeout) {
  EXPECT_FALSE(dead_letter_recorder_) << "a consumer's dead-letter recorder is draining the queue";
  auto connection = broker();
  connection.basic_consume(TopologyNames{prefix_}.dead_letters_queue());
  std::vector<amqp::Delivery> messages;
  wait_until(
      [&] {
        while (auto delivery = connection.consume_one(std::chrono::milliseconds(50))) {
          connection.ack(delivery->delivery_tag);
          messages.push_back(std::move(*delivery));
        }
        return messages.size() >= expected;
      },
      timeout, std::chrono::milliseconds(10));
  return messages;
}

nlohmann::json IntegrationTest::query_value(const std::string& sql) {
  const auto rows = query_json(sql);
  if (rows.empty() || rows[0].empty()) return nullptr;
  return rows[0].begin().value();
}

int64_t IntegrationTest::query_int(const std::string& sql) {
  pqxx::connection connection(database_->url());
  pqxx::nontransaction tx(connection);
  return tx.exec1(sql)[0].as<int64_t>();
}

void IntegrationTest::execute(const std::string& sql) {
  pqxx::connection connection(database_->url());
  pqxx::nontransaction tx(connection);
  tx.exec(sql);
}

CommandResult IntegrationTest::warrenctl(const std::vector<std::string>& args,
                                         std::map<std::string, std::string> extra_env) {
  auto env = warren_env();
  for (auto& [k, v] : extra_env) env[k] = v;
  return run_command(binary("warrenctl"), args, env);
}

httplib::Result post_json(httplib::Client& client, const std::string& path,
                          const nlohmann::json& body, const httplib::Headers& extra) {
  return client.Post(path.c_str(), extra, body.dump(), "application/json");
}

}  // namespace warren::test

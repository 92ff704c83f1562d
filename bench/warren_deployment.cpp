// See warren_deployment.h.
#include "warren_deployment.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "shared/amqp/amqp_connection.h"

namespace warren::bench {
namespace {

using namespace std::chrono_literals;

bool answers_200(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  client.set_read_timeout(2);
  auto response = client.Get(path.c_str());
  return response && response->status == 200;
}

// Sums the samples called exactly `sample` (name and labels) in Prometheus text from `port`.
double scrape_sample(int port, const std::string& sample) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(5);
  auto response = client.Get("/metrics");
  if (!response || response->status != 200) {
    throw std::runtime_error("GET /metrics on port " + std::to_string(port) + " failed");
  }
  std::istringstream lines(response->body);
  double total = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 &&
        line[sample.size()] == ' ') {
      total += std::stod(line.substr(sample.size() + 1));
    }
  }
  return total;
}

}  // namespace

ProcessUsage process_usage(pid_t pid) {
  ProcessUsage usage;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) usage.peak_rss_mib = std::stod(line.substr(6)) / 1024.0;
  }
  // /proc/PID/stat: fields 14 and 15 are utime and stime in clock ticks; field 2 (the command)
  // is in parentheses and may contain spaces, so count from the closing one.
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const auto after_command = stat.rfind(')');
  if (after_command != std::string::npos) {
    std::istringstream fields(stat.substr(after_command + 2));
    std::string field;
    long long utime = 0, stime = 0;
    for (int index = 3; fields >> field; ++index) {
      if (index == 14) utime = std::stoll(field);
      if (index == 15) {
        stime = std::stoll(field);
        break;
      }
    }
    usage.cpu_seconds =
        static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return usage;
}

MachineCpu machine_cpu() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  // cpu  user nice system idle iowait irq softirq steal ...
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double busy = user + nice + system + irq + softirq + steal;
  return {busy / ticks, (busy + idle + iowait) / ticks};
}

double busy_percent(const MachineCpu& before, const MachineCpu& after) {
  return 100 * (after.busy_seconds - before.busy_seconds) /
         (after.total_seconds - before.total_seconds);
}

WarrenDeployment::WarrenDeployment(const BenchContext& context, DeploymentShape shape)
    : context_(context), shape_(std::move(shape)), prefix_("bench" + test::random_suffix()) {
  sql_ = std::make_unique<pqxx::connection>(database_.url());
  // The schema first, as a deployment's migration job does, so no process waits for it.
  const auto migrated = test::run_command(test::binary("warrenctl"), {"migrate"}, common_env());
  if (migrated.exit_code != 0) {
    throw std::runtime_error("warrenctl migrate failed: " + migrated.err + migrated.out);
  }
  // Consumers first (they declare the topology and wait for work), so a drain measures
  // processing, not start-up.
  start_consumers(shape_.consumers);
  for (int i = 0; i < shape_.producers; ++i) {
    const int port = test::free_port();
    auto env = common_env();
    env["WARREN_HTTP_ADDR"] = "127.0.0.1:" + std::to_string(port);
    producer_ports_.push_back(port);
    producers_.push_back(launch("warren-producer", "producer", i, env));
    if (!test::wait_until([&] { return answers_200(port, "/readyz"); }, 60s, 50ms)) {
      throw std::runtime_error("producer " + std::to_string(i) + " did not become ready; log:\n" +
                               producers_.back()->log());
    }
  }
}

WarrenDeployment::~WarrenDeployment() {
  try {
    if (!stopped_) stop();
  } catch (const std::exception&) {
    // Already reported by stop() when the scenario called it; the processes are gone either way.
  }
  try {
    auto broker = amqp::AmqpConnection::open(context_.amqp_url, "warren bench cleanup");
    test::delete_topology(broker, prefix_, {"default"});
  } catch (const std::exception&) {
    // The broker's data directory is wiped at the next run of scripts/bench.sh anyway.
  }
}

std::map<std::string, std::string> WarrenDeployment::common_env() const {
  std::map<std::string, std::string> env = {{"WARREN_DATABASE_URL", database_.url()},
                                            {"WARREN_AMQP_URL", context_.amqp_url},
                                            {"WARREN_AMQP_PREFIX", prefix_},
                                            {"WARREN_QUEUES", "default"},
                                            {"WARREN_LOG_LEVEL", context_.log_level}};
  for (const auto& [name, value] : context_.extra_env) env[name] = value;
  return env;
}

std::unique_ptr<test::ChildProcess> WarrenDeployment::launch(
    const std::string& binary, const std::string& role, int index,
    std::map<std::string, std::string> env) {
  const auto name = shape_.name + "-" + role + "-" + std::to_string(index);
  env["WARREN_WORKER_ID"] = prefix_ + "-" + name;
  return std::make_unique<test::ChildProcess>(test::binary(binary), std::vector<std::string>{}, env,
                                              context_.log_dir + "/" + name + ".log");
}

void WarrenDeployment::start_consumers(int count) {
  for (int i = 0; i < count; ++i) {
    const int port = test::free_port();
    auto env = common_env();
    env["WARREN_HEALTH_ADDR"] = "127.0.0.1:" + std::to_string(port);
    consumer_health_ports_.push_back(port);
    consumers_.push_back(
        launch("warren-consumer", "consumer", static_cast<int>(consumers_.size()), env));
    if (!test::wait_until([&] { return answers_200(port, "/readyz"); }, 60s, 50ms)) {
      throw std::runtime_error("a consumer did not become ready; log:\n" +
                               consumers_.back()->log());
    }
  }
}

std::vector<pid_t> WarrenDeployment::producer_pids() const {
  std::vector<pid_t> pids;
  for (const auto& p : producers_) pids.push_back(p->pid());
  return pids;
}

std::vector<pid_t> WarrenDeployment::consumer_pids() const {
  std::vector<pid_t> pids;
  for (const auto& c : consumers_) pids.push_back(c->pid());
  return pids;
}

double WarrenDeployment::consumer_metric(const std::string& sample) const {
  double total = 0;
  for (int port : consumer_health_ports_) total += scrape_sample(port, sample);
  return total;
}

double WarrenDeployment::producer_metric(const std::string& sample) const {
  double total = 0;
  for (int port : producer_ports_) total += scrape_sample(port, sample);
  return total;
}

double WarrenDeployment::query_number(const std::string& sql) {
  pqxx::nontransaction tx(*sql_);
  auto row = tx.exec1(sql);
  return row[0].is_null() ? 0.0 : row[0].as<double>();
}

void WarrenDeployment::wait_until_succeeded(int jobs, std::chrono::seconds timeout) {
  const char* succeeded = "SELECT count(*) FROM jobs WHERE status = 'succeeded'";
  // Not more often: each count reads the jobs table, work the measured system pays for too.
  if (!test::wait_until([&] { return query_number(succeeded) >= jobs; }, timeout, 250ms)) {
    throw std::runtime_error(shape_.name + ": only " +
                             std::to_string(static_cast<long long>(query_number(succeeded))) +
                             " of " + std::to_string(jobs) + " jobs succeeded within " +
                             std::to_string(timeout.count()) + " s");
  }
}

double WarrenDeployment::seconds_to_last_finish(std::chrono::system_clock::time_point start) {
  return query_number("SELECT extract(epoch FROM max(finished_at)) FROM jobs") -
         std::chrono::duration<double>(start.time_since_epoch()).count();
}

void WarrenDeployment::stop() {
  stopped_ = true;
  std::string failures;
  auto stop_all = [&](auto& processes, const std::string& role) {
    for (std::size_t i = 0; i < processes.size(); ++i) {
      const int status = processes[i]->stop();
      if (status != 0) {
        failures += role + " " + std::to_string(i) + " exited " + std::to_string(status) +
                    " (log " + processes[i]->log_path() + ")\n";
      }
    }
  };
  // Producers first: nothing new arrives while the consumers finish their in-flight work.
  stop_all(producers_, "producer");
  stop_all(consumers_, "consumer");
  if (!failures.empty()) throw std::runtime_error("a Warren process failed to stop:\n" + failures);
}

}  // namespace warren::bench

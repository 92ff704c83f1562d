// Process configuration: every setting of RUNNING.md, read from WARREN_* environment variables
// (12-factor, as Kubernetes passes them), overridable by `--name=value` flags, listed with
// defaults by `--help`. A bad value stops the process at start with a one-line error naming
// the variable (exit 2): a misconfigured pod should crash-loop loudly, not run half-right.
//
// The config is the only process-wide state Warren has; it is built once in main() and passed
// down by const reference.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "shared/retry_policy.h"

namespace warren {

// Thrown for a setting that cannot be used; main() prints what() and exits 2.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Which binary is asking: each has its own settings on top of the common ones.
enum class Component { kProducer, kConsumer, kCtl };

struct RetentionSettings {
  // How long finished jobs (with their attempts) are kept. 0 keeps them forever.
  std::chrono::seconds succeeded{std::chrono::hours(24 * 7)};
  std::chrono::seconds failed{std::chrono::hours(24 * 30)};
  std::chrono::seconds cancelled{std::chrono::hours(24 * 7)};
  std::chrono::seconds discarded_dead_letters{std::chrono::hours(24 * 30)};
  // How long the row of a stopped or gone consumer stays visible in GET /v1/workers after its
  // last heartbeat: a day, long enough to see what ran before a crash or an upgrade. Not an
  // environment setting (RUNNING.md has none): replicas are few, and every restart under a new
  // pod name adds a row, so this only keeps the list short.
  std::chrono::seconds departed_workers{std::chrono::hours(24)};
  int batch_size = 1000;  // rows deleted per transaction, so retention never holds long locks
  std::chrono::milliseconds interval{std::chrono::minutes(1)};
};

struct Config {
  // Common.
  std::string amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2f";
  std::string database_url = "postgresql://warren@127.0.0.1:5432/warren";
  std::string amqp_prefix = "warren";
  std::vector<std::string> queues{"default"};
  std::string log_level = "info";
  std::string log_format = "json";
  int default_max_attempts = 5;
  Backoff default_backoff;
  int delivery_limit = 20;
  std::vector<std::string> job_types;  // empty: any type accepted
  RetentionSettings retention;
  int database_pool_size = 8;
  // How long a starting process waits for the database (and, without auto-migration, for the
  // schema) before giving up with exit 1.
  std::chrono::milliseconds startup_wait{60000};

  // Producer.
  std::string http_addr = "0.0.0.0:8080";
  std::string api_tokens_file;
  std::size_t max_body_bytes = 1048576;
  bool auto_migrate = true;
  std::string rabbitmq_management_url;
  int http_threads = 64;
  int submit_batch_max = 1000;
  std::chrono::milliseconds outbox_poll_interval{1000};
  int outbox_batch_size = 500;
  int replay_rate = 500;  // dead letters a bulk requeue puts back per second, deployment-wide

  // Consumer.
  int concurrency = 16;
  int prefetch = 0;  // 0: 2 x concurrency
  std::string health_addr = "0.0.0.0:9090";
  std::chrono::milliseconds shutdown_grace{25000};
  std::chrono::milliseconds heartbeat{5000};
  std::string worker_id;
  int max_stuck_handlers = 4;
  bool dead_letter_recorder = true;

  bool accepts_queue(const std::string& queue) const;
  bool accepts_type(const std::string& type) const;
};

// Result of reading the command line and environment.
struct LoadedConfig {
  Config config;
  bool help_requested = false;
  std::vector<std::string> positional;  // arguments that are not --name=value (warrenctl verbs)
};

// Reads WARREN_* from `env` (normally the process environment), then applies --name=value
// overrides from argv. Throws ConfigError on the first bad value.
LoadedConfig load_config(Component component, const std::vector<std::string>& args,
                         const std::function<std::optional<std::string>(const std::string&)>& env);

// Same, from the real environment and argv.
LoadedConfig load_config(Component component, int argc, char** argv);

// The `--help` text: every variable this component reads, with its default and meaning.
std::string config_help(Component component, const std::string& program);

// Prints the error and exits 2 on ConfigError; the entry point of every binary.
LoadedConfig load_config_or_exit(Component component, int argc, char** argv);

// A URL with its password replaced by "***", safe for logs and error messages.
std::string redact_url(const std::string& url);

}  // namespace warren

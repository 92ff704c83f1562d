// Reading the configuration: one table of settings (name, which binaries read it, default,
// meaning, how to parse it). --help, the environment and the --name=value flags all come from
// that table, so a setting cannot be documented one way and parsed another.
#include "shared/config.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <sstream>

extern char** environ;

namespace warren {
namespace {

using Setter = std::function<void(Config&, const std::string&)>;

struct Setting {
  std::string variable;  // WARREN_...
  std::vector<Component> components;
  std::string default_text;
  std::string help;
  Setter set;
};

const std::vector<Component> kAll{Component::kProducer, Component::kConsumer, Component::kCtl};
const std::vector<Component> kProducer{Component::kProducer};
const std::vector<Component> kConsumer{Component::kConsumer};
const std::vector<Component> kProducerCtl{Component::kProducer, Component::kCtl};

int64_t parse_integer(const std::string& value, int64_t min, int64_t max) {
  int64_t out = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size()) {
    throw ConfigError("must be an integer, got '" + value + "'");
  }
  if (out < min || out > max) {
    throw ConfigError("must be between " + std::to_string(min) + " and " + std::to_string(max) +
                      ", got " + value);
  }
  return out;
}

double parse_double(const std::string& value, double min, double max) {
  std::size_t used = 0;
  double out = 0;
  try {
    out = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != value.size() || !(out >= min && out <= max)) {
    throw ConfigError("must be a number between " + std::to_string(min) + " and " +
                      std::to_string(max) + ", got '" + value + "'");
  }
  return out;
}

bool parse_bool(const std::string& value) {
  if (value == "1" || value == "true" || value == "yes") return true;
  if (value == "0" || value == "false" || value == "no") return false;
  throw ConfigError("must be 1/0 (or true/false), got '" + value + "'");
}

// "host:port" with a port that is a number; the host may be empty only as "0.0.0.0".
std::string parse_listen_addr(const std::string& value) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw ConfigError("must be host:port, got '" + value + "'");
  }
  parse_integer(value.substr(colon + 1), 0, 65535);
  return value;
}

std::vector<std::string> parse_name_list(const std::string& value, const std::regex& pattern,
                                         bool allow_empty) {
  std::vector<std::string> names;
  std::stringstream in(value);
  std::string item;
  while (std::getline(in, item, ',')) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    if (!std::regex_match(item, pattern)) throw ConfigError("'" + item + "' is not a valid name");
    if (std::find(names.begin(), names.end(), item) == names.end()) names.push_back(item);
  }
  if (names.empty() && !allow_empty) throw ConfigError("must name at least one entry");
  return names;
}

std::string parse_url(const std::string& value, const std::vector<std::string>& schemes) {
  for (const auto& scheme : schemes) {
    if (value.rfind(scheme + "://", 0) == 0) return value;
  }
  std::string list;
  for (const auto& scheme : schemes) list += (list.empty() ? "" : ", ") + scheme + "://";
  throw ConfigError("must start with one of " + list);
}

std::chrono::seconds parse_retention(const std::string& value) {
  // Accepts "7d", "12h", "30m", "90s" or a plain number of seconds; 0 keeps forever.
  if (value.empty()) throw ConfigError("must be a duration like 7d, 12h, 30m or 0");
  char unit = value.back();
  int64_t scale = 1;
  std::string number = value;
  if (unit == 'd' || unit == 'h' || unit == 'm' || unit == 's') {
    number.pop_back();
    scale = unit == 'd' ? 86400 : unit == 'h' ? 3600 : unit == 'm' ? 60 : 1;
  }
  return std::chrono::seconds(parse_integer(number, 0, int64_t{1} << 40) * scale);
}

const std::regex& queue_pattern() {
  static const std::regex pattern("^[a-z0-9][a-z0-9_-]{0,63}$");
  return pattern;
}
const std::regex& type_pattern() {
  static const std::regex pattern("^[a-z0-9][a-z0-9._-]{0,63}$");
  return pattern;
}

std::vector<Setting> build_settings() {
  return {
      {"WARREN_AMQP_URL", kAll, "amqp://guest:guest@127.0.0.1:5672/%2f",
       "broker URL (amqps:// for TLS)",
       [](Config& c, const std::string& v) {
         c.amqp_url = parse_url(v, {"amqp", "amqps"});
       }},
      {"WARREN_DATABASE_URL", kAll, "postgresql://warren@127.0.0.1:5432/warren",
       "Postgres URL (libpq; sslmode honoured)",
       [](Config& c, const std::string& v) {
         c.database_url = parse_url(v, {"postgresql", "postgres"});
       }},
      {"WARREN_AMQP_PREFIX", kAll, "warren", "prefix of every exchange and queue",
       [](Config& c, const std::string& v) {
         static const std::regex prefix("^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$");
         if (!std::regex_match(v, prefix)) throw ConfigError("must match [a-zA-Z0-9_-]{1,64}");
         c.amqp_prefix = v;
       }},
      {"WARREN_QUEUES", kAll, "default",
       "comma list of queue names (producer: accepted; consumer: consumed)",
       [](Config& c, const std::string& v) {
         c.queues = parse_name_list(v, queue_pattern(), false);
       }},
      {"WARREN_LOG_LEVEL", kAll, "info", "trace, debug, info, warn, error or critical",
       [](Config& c, const std::string& v) {
         static const std::vector<std::string> levels{"trace", "debug", "info",
                                                      "warn",  "error", "critical"};
         if (std::find(levels.begin(), levels.end(), v) == levels.end()) {
           throw ConfigError("must be one of trace, debug, info, warn, error, critical");
         }
         c.log_level = v;
       }},
      {"WARREN_LOG_FORMAT", kAll, "json", "json (one object a line) or text",
       [](Config& c, const std::string& v) {
         if (v != "json" && v != "text") throw ConfigError("must be json or text");
         c.log_format = v;
       }},
      {"WARREN_DEFAULT_MAX_ATTEMPTS", kAll, "5", "attempts of a job that does not say",
       [](Config& c, const std::string& v) {
         c.default_max_attempts = static_cast<int>(parse_integer(v, 1, 100));
       }},
      {"WARREN_RETRY_INITIAL_MS", kAll, "5000", "default backoff: first retry delay",
       [](Config& c, const std::string& v) {
         c.default_backoff.initial_ms = parse_integer(v, 1, 86400000);
       }},
      {"WARREN_RETRY_FACTOR", kAll, "3", "default backoff: growth factor per attempt",
       [](Config& c, const std::string& v) { c.default_backoff.factor = parse_double(v, 1, 100); }},
      {"WARREN_RETRY_MAX_MS", kAll, "3600000", "default backoff: longest delay",
       [](Config& c, const std::string& v) {
         c.default_backoff.max_ms = parse_integer(v, 1, 2147483647);
       }},
      {"WARREN_DELIVERY_LIMIT", kAll, "20", "quorum queue x-delivery-limit",
       [](Config& c, const std::string& v) {
         c.delivery_limit = static_cast<int>(parse_integer(v, 1, 1000));
       }},
      {"WARREN_JOB_TYPES", kAll, "(empty: any)",
       "comma list of accepted job types (producer answers 422 to others)",
       [](Config& c, const std::string& v) {
         c.job_types = parse_name_list(v, type_pattern(), true);
       }},
      {"WARREN_DATABASE_POOL_SIZE", kAll, "8", "Postgres connections per process",
       [](Config& c, const std::string& v) {
         c.database_pool_size = static_cast<int>(parse_integer(v, 1, 256));
       }},
      {"WARREN_STARTUP_WAIT_MS", kAll, "60000",
       "how long a starting process waits for the database and its schema",
       [](Config& c, const std::string& v) {
         c.startup_wait = std::chrono::milliseconds(parse_integer(v, 0, 3600000));
       }},
      {"WARREN_RETENTION_SUCCEEDED", kProducerCtl, "7d",
       "keep succeeded jobs and their attempts this long (0 = forever)",
       [](Config& c, const std::string& v) { c.retention.succeeded = parse_retention(v); }},
      {"WARREN_RETENTION_FAILED", kProducerCtl, "30d",
       "keep failed (dead-lettered) jobs this long once their dead letters are resolved",
       [](Config& c, const std::string& v) { c.retention.failed = parse_retention(v); }},
      {"WARREN_RETENTION_CANCELLED", kProducerCtl, "7d", "keep cancelled jobs this long",
       [](Config& c, const std::string& v) { c.retention.cancelled = parse_retention(v); }},
      {"WARREN_RETENTION_DISCARDED", kProducerCtl, "30d",
       "keep requeued and discarded dead letters (the audit trail) this long",
       [](Config& c, const std::string& v) {
         c.retention.discarded_dead_letters = parse_retention(v);
       }},
      {"WARREN_RETENTION_BATCH", kProducerCtl, "1000", "rows deleted per retention transaction",
       [](Config& c, const std::string& v) {
         c.retention.batch_size = static_cast<int>(parse_integer(v, 1, 100000));
       }},
      {"WARREN_RETENTION_INTERVAL_MS", kProducerCtl, "60000", "how often retention runs",
       [](Config& c, const std::string& v) {
         c.retention.interval = std::chrono::milliseconds(parse_integer(v, 100, 86400000));
       }},
      {"WARREN_HTTP_ADDR", kProducer, "0.0.0.0:8080", "HTTP API listen address",
       [](Config& c, const std::string& v) { c.http_addr = parse_listen_addr(v); }},
      {"WARREN_API_TOKENS_FILE", kProducer, "(empty: API open)",
       "file of `name token scopes` lines (API.md Authentication)",
       [](Config& c, const std::string& v) { c.api_tokens_file = v; }},
      {"WARREN_MAX_BODY_BYTES", kProducer, "1048576", "largest request body accepted (413 above)",
       [](Config& c, const std::string& v) {
         c.max_body_bytes = static_cast<std::size_t>(parse_integer(v, 1024, 64 << 20));
       }},
      {"WARREN_AUTO_MIGRATE", kProducer, "1", "apply pending schema migrations at start",
       [](Config& c, const std::string& v) { c.auto_migrate = parse_bool(v); }},
      {"WARREN_RABBITMQ_MANAGEMENT_URL", kProducer, "(empty)",
       "RabbitMQ management API, for broker numbers in GET /v1/queues",
       [](Config& c, const std::string& v) {
         c.rabbitmq_management_url = v.empty() ? v : parse_url(v, {"http", "https"});
       }},
      {"WARREN_HTTP_THREADS", kProducer, "64",
       "HTTP worker threads (one per open keep-alive connection)",
       [](Config& c, const std::string& v) {
         c.http_threads = static_cast<int>(parse_integer(v, 2, 4096));
       }},
      {"WARREN_SUBMIT_BATCH_MAX", kProducer, "1000", "most jobs written in one commit",
       [](Config& c, const std::string& v) {
         c.submit_batch_max = static_cast<int>(parse_integer(v, 1, 10000));
       }},
      {"WARREN_OUTBOX_POLL_MS", kProducer, "1000",
       "how often the outbox relay looks for work it was not told about",
       [](Config& c, const std::string& v) {
         // At most 10 s: the relay's pass is also what keeps its broker connection alive.
         c.outbox_poll_interval = std::chrono::milliseconds(parse_integer(v, 10, 10000));
       }},
      {"WARREN_OUTBOX_BATCH", kProducer, "500", "messages published per confirm wait",
       [](Config& c, const std::string& v) {
         c.outbox_batch_size = static_cast<int>(parse_integer(v, 1, 10000));
       }},
      {"WARREN_REPLAY_RATE", kProducer, "500",
       "dead letters a bulk requeue puts back per second (whole deployment)",
       [](Config& c, const std::string& v) {
         c.replay_rate = static_cast<int>(parse_integer(v, 1, 100000));
       }},
      {"WARREN_CONCURRENCY", kConsumer, "16", "handler threads",
       [](Config& c, const std::string& v) {
         c.concurrency = static_cast<int>(parse_integer(v, 1, 4096));
       }},
      {"WARREN_PREFETCH", kConsumer, "2 x concurrency", "unacked deliveries per consumer",
       [](Config& c, const std::string& v) {
         c.prefetch = static_cast<int>(parse_integer(v, 1, 65535));
       }},
      {"WARREN_HEALTH_ADDR", kConsumer, "0.0.0.0:9090", "/healthz, /readyz, /metrics",
       [](Config& c, const std::string& v) { c.health_addr = parse_listen_addr(v); }},
      {"WARREN_SHUTDOWN_GRACE_MS", kConsumer, "25000",
       "how long running handlers may finish after SIGTERM",
       [](Config& c, const std::string& v) {
         c.shutdown_grace = std::chrono::milliseconds(parse_integer(v, 0, 3600000));
       }},
      {"WARREN_HEARTBEAT_MS", kConsumer, "5000", "worker heartbeat row interval",
       [](Config& c, const std::string& v) {
         c.heartbeat = std::chrono::milliseconds(parse_integer(v, 100, 600000));
       }},
      {"WARREN_WORKER_ID", kConsumer, "host name + pid", "this worker's id (the pod name)",
       [](Config& c, const std::string& v) { c.worker_id = v; }},
      {"WARREN_MAX_STUCK_HANDLERS", kConsumer, "4",
       "stuck handlers tolerated before /healthz fails",
       [](Config& c, const std::string& v) {
         c.max_stuck_handlers = static_cast<int>(parse_integer(v, 0, 4096));
       }},
      {"WARREN_DEAD_LETTER_RECORDER", kConsumer, "1",
       "drain the dead-letter queue into Postgres (one replica at a time)",
       [](Config& c, const std::string& v) { c.dead_letter_recorder = parse_bool(v); }},
  };
}

bool applies_to(const Setting& setting, Component component) {
  return std::find(setting.components.begin(), setting.components.end(), component) !=
         setting.components.end();
}

// --http-addr, --http_addr and --WARREN_HTTP_ADDR all name WARREN_HTTP_ADDR.
std::string flag_to_variable(std::string flag) {
  std::transform(flag.begin(), flag.end(), flag.begin(), [](unsigned char ch) {
    return ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
  });
  return flag.rfind("WARREN_", 0) == 0 ? flag : "WARREN_" + flag;
}

void apply(const Setting& setting, Config& config, const std::string& value,
           const std::string& source) {
  try {
    setting.set(config, value);
  } catch (const ConfigError& error) {
    throw ConfigError(setting.variable + " (" + source + "): " + error.what());
  }
}

void validate_whole(Config& config) {
  if (config.default_backoff.max_ms < config.default_backoff.initial_ms) {
    throw ConfigError("WARREN_RETRY_MAX_MS: must not be below WARREN_RETRY_INITIAL_MS");
  }
  if (config.prefetch == 0) config.prefetch = 2 * config.concurrency;
  if (config.worker_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    config.worker_id = std::string(host) + "-" + std::to_string(getpid());
  }
}

}  // namespace

bool Config::accepts_queue(const std::string& queue) const {
  return std::find(queues.begin(), queues.end(), queue) != queues.end();
}

bool Config::accepts_type(const std::string& type) const {
  return job_types.empty() ||
         std::find(job_types.begin(), job_types.end(), type) != job_types.end();
}

LoadedConfig load_config(Component component, const std::vector<std::string>& args,
                         const std::function<std::optional<std::string>(const std::string&)>& env) {
  LoadedConfig loaded;
  const auto settings = build_settings();
  for (const auto& setting : settings) {
    if (!applies_to(setting, component)) continue;
    if (auto value = env(setting.variable)) apply(setting, loaded.config, *value, "environment");
  }
  for (const std::string& arg : args) {
    const std::string_view word(arg);
    if (word == "--help" || word == "-h") {
      loaded.help_requested = true;
      continue;
    }
    const auto eq = word.find('=');
    if (!word.starts_with("--") || eq == std::string_view::npos) {
      loaded.positional.push_back(arg);
      continue;
    }
    const std::string variable = flag_to_variable(std::string(word.substr(2, eq - 2)));
    auto it = std::find_if(settings.begin(), settings.end(), [&](const Setting& s) {
      return s.variable == variable && applies_to(s, component);
    });
    if (it == settings.end()) {
      // Not a configuration flag: a verb's own option (warrenctl submit --queue=...).
      loaded.positional.push_back(arg);
      continue;
    }
    apply(*it, loaded.config, std::string(word.substr(eq + 1)), "flag");
  }
  validate_whole(loaded.config);
  return loaded;
}

LoadedConfig load_config(Component component, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return load_config(component, args, [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

std::string config_help(Component component, const std::string& program) {
  std::ostringstream out;
  out << "Usage: " << program << " [--name=value ...]\n\n"
      << "Configuration comes from these environment variables; a flag --name=value (e.g.\n"
      << "--http-addr=127.0.0.1:8080) overrides the variable WARREN_NAME.\n\n";
  for (const auto& setting : build_settings()) {
    if (!applies_to(setting, component)) continue;
    out << "  " << setting.variable << "\n      " << setting.help
        << " (default: " << setting.default_text << ")\n";
  }
  return out.str();
}

LoadedConfig load_config_or_exit(Component component, int argc, char** argv) {
  try {
    return load_config(component, argc, argv);
  } catch (const ConfigError& error) {
    std::cerr << argv[0] << ": configuration error: " << error.what() << "\n";
    std::exit(2);
  }
}

std::string redact_url(const std::string& url) {
  // scheme://user:password@host -> scheme://user:***@host
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  auto at = url.find('@', scheme_end + 3);
  if (at == std::string::npos) return url;
  auto colon = url.find(':', scheme_end + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

}  // namespace warren

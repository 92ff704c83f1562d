// warrenctl: the operator and scripting CLI of Warren (RUNNING.md "warrenctl"). Same
// environment as the servers; exit 0 on success, 1 when the operation failed, 2 on bad usage.
#include <iostream>

#include "shared/amqp/amqp_error.h"
#include "shared/db/connection_pool.h"
#include "shared/logging.h"
#include "tools/warrenctl/commands.h"

namespace {

constexpr const char* kUsage = R"(Usage: warrenctl VERB [ARGS] [--name=value ...]

  migrate [--status]                 apply pending schema migrations (or list them)
  topology declare|check|export      declare / check the RabbitMQ topology, or print definitions
  submit TYPE [--payload JSON|@FILE] [--queue Q] [--max-attempts N] [--delay-ms N]
              [--idempotency-key K]  submit a job without HTTP; prints its id
  submit --from FILE.jsonl           one job (API.md shape) per line, in batches
  jobs get ID | attempts ID | cancel ID
  jobs list [--status S] [--type T] [--queue Q] [--metadata K=V] [--created-after T]
            [--created-before T] [--limit N] [--cursor C]
  dlq summary                        dead letters grouped by type, queue, reason and error
  dlq list [FILTERS] [--limit N] [--cursor C]
  dlq show ID                        one dead letter, its job's attempts and its audit trail
  dlq requeue ID [--payload JSON|@FILE] [--max-attempts N] [--comment WHY]
  dlq requeue (ID ID... | FILTERS) [--limit N] [--max-attempts N] [--comment WHY] [--no-wait]
  dlq discard (ID... | FILTERS) [--limit N] [--comment WHY] [--no-wait]
  dlq operation [ID [--wait]]        bulk operations: recent ones, or one (followed with --wait)
      FILTERS: --type T --queue Q --reason R --error-type E --q TEXT --since T --until T
               --state dead|requeued|discarded|all; changes are audited as --as NAME
               (default warrenctl:$USER)

Reading commands take --output json|table (table on a terminal, json when piped).
Configuration comes from WARREN_* environment variables; `warrenctl --help` lists them.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace warren;
  auto loaded = load_config_or_exit(Component::kCtl, argc, argv);
  if (loaded.help_requested) {
    std::cout << kUsage << "\n" << config_help(Component::kCtl, "warrenctl");
    return 0;
  }
  // warrenctl talks to people: plain text logs unless asked otherwise, warnings and up only.
  if (std::getenv("WARREN_LOG_FORMAT") == nullptr) loaded.config.log_format = "text";
  if (std::getenv("WARREN_LOG_LEVEL") == nullptr) loaded.config.log_level = "warn";
  log::init(loaded.config, "warrenctl");

  auto words = loaded.positional;
  if (words.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string verb = words.front();
  words.erase(words.begin());
  try {
    if (verb == "migrate") return ctl::run_migrate(loaded.config, words);
    if (verb == "topology") return ctl::run_topology(loaded.config, words);
    if (verb == "submit") return ctl::run_submit(loaded.config, words);
    if (verb == "jobs") return ctl::run_jobs(loaded.config, words);
    if (verb == "dlq") return ctl::run_dlq(loaded.config, words);
    throw ctl::UsageError("unknown verb '" + verb + "'");
  } catch (const ctl::UsageError& error) {
    std::cerr << "warrenctl: " << error.what() << "\n\n" << kUsage;
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "warrenctl " << verb << ": " << error.what() << "\n";
    return 1;
  }
}

// `warrenctl migrate` applies pending schema migrations; `--status` lists them.
#include <iostream>

#include "shared/db/connection_pool.h"
#include "shared/db/migrator.h"
#include "tools/warrenctl/commands.h"
#include "tools/warrenctl/output.h"

namespace warren::ctl {

int run_migrate(const Config& config, const std::vector<std::string>& words) {
  const auto args = CommandArgs::parse(words, {"status"}, {"output"});
  if (!args.positional.empty()) throw UsageError("migrate takes no arguments");
  auto connection = db::connect(config.database_url);
  if (args.has("status")) {
    std::vector<nlohmann::json> rows;
    for (const auto& m : db::migration_status(*connection)) {
      rows.push_back({{"version", m.version},
                      {"name", m.name},
                      {"state", m.applied ? "applied" : "pending"},
                      {"applied_at", m.applied_at}});
    }
    if (output_format(args.get("output")) == OutputFormat::kJson) {
      std::cout << nlohmann::json(rows).dump(2) << "\n";
    } else {
      print_table(rows, {{"VERSION", "version"},
                         {"NAME", "name"},
                         {"STATE", "state"},
                         {"APPLIED AT", "applied_at"}});
    }
    return 0;
  }
  const auto report = db::migrate(*connection);
  for (const auto& name : report.applied) std::cout << "applied " << name << "\n";
  std::cout << "schema is at version " << report.schema_version
            << (report.applied.empty() ? " (nothing to do)" : "") << "\n";
  return 0;
}

}  // namespace warren::ctl

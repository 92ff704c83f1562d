// `warrenctl topology declare|check|export`: the broker side of a deployment.
// declare creates what is missing (idempotent), check reports what is missing (exit 1 if any),
// export prints RabbitMQ definitions JSON (what rabbitmq/definitions.json is generated from).
#include <iostream>

#include "shared/amqp/amqp_connection.h"
#include "shared/topology.h"
#include "tools/warrenctl/commands.h"

namespace warren::ctl {

int run_topology(const Config& config, const std::vector<std::string>& words) {
  const auto args = CommandArgs::parse(words, {}, {"vhost"});
  if (args.positional.size() != 1) throw UsageError("topology declare|check|export");
  const std::string& action = args.positional[0];
  const auto topology = build_topology(config);
  if (action == "export") {
    std::cout << topology_definitions(topology, args.get("vhost").value_or("/")).dump(2) << "\n";
    return 0;
  }
  if (action != "declare" && action != "check") throw UsageError("topology declare|check|export");
  auto connection = amqp::AmqpConnection::open(config.amqp_url, "warrenctl topology");
  if (action == "declare") {
    declare_topology(connection, topology);
    std::cout << "declared " << topology.exchanges.size() << " exchanges, "
              << topology.queues.size() << " queues, " << topology.bindings.size()
              << " bindings (prefix " << config.amqp_prefix << ")\n";
    return 0;
  }
  const auto missing = check_topology(connection, topology);
  for (const auto& name : missing) std::cout << "missing " << name << "\n";
  if (!missing.empty()) return 1;
  std::cout << "ok: " << topology.exchanges.size() << " exchanges and " << topology.queues.size()
            << " queues present\n";
  return 0;
}

}  // namespace warren::ctl

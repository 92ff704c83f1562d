// Warren's RabbitMQ topology (MESSAGING.md "Topology") as data: every exchange, queue and
// binding a deployment needs, computed from the prefix, the queue names and the delivery limit.
// One description serves three uses, so they cannot drift apart:
//   - declare_topology(): what producers, consumers and `warrenctl topology declare` run;
//   - check_topology(): `warrenctl topology check` (what is missing);
//   - topology_definitions(): RabbitMQ definitions JSON (rabbitmq/definitions.json), for
//     operators who import topology instead of letting applications declare it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "shared/amqp/field_table.h"

namespace warren {

namespace amqp {
class AmqpConnection;
}

struct Config;

// Names of the fixed parts, for a given prefix (WARREN_AMQP_PREFIX).
struct TopologyNames {
  std::string prefix;

  std::string jobs_exchange() const { return prefix + ".jobs"; }
  std::string delivery_exchange() const { return prefix + ".delivery"; }
  std::string dead_exchange() const { return prefix + ".dead"; }
  std::string dead_letters_queue() const { return prefix + ".dead-letters"; }
  std::string work_queue(const std::string& queue) const { return prefix + ".q." + queue; }
};

struct ExchangeSpec {
  std::string name;
  std::string type;  // topic, fanout
};

struct QueueSpec {
  std::string name;
  amqp::FieldTable arguments;
};

struct BindingSpec {
  std::string source;
  std::string destination;
  bool destination_is_exchange;
  std::string routing_key;
};

struct Topology {
  std::vector<ExchangeSpec> exchanges;
  std::vector<QueueSpec> queues;
  std::vector<BindingSpec> bindings;
};

Topology build_topology(const std::string& prefix, const std::vector<std::string>& queues,
                        int delivery_limit);
Topology build_topology(const Config& config);

// Declares everything (idempotent: declaring what exists with the same arguments is a no-op).
void declare_topology(amqp::AmqpConnection& connection, const Topology& topology);

// Names of exchanges and queues that do not exist on the broker.
std::vector<std::string> check_topology(amqp::AmqpConnection& connection, const Topology& topology);

// RabbitMQ definitions format (exchanges, queues, bindings) for vhost `vhost`.
nlohmann::json topology_definitions(const Topology& topology, const std::string& vhost = "/");

}  // namespace warren

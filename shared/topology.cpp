// See topology.h. The delay levels' bindings come from delay_route.h, which explains the
// binary decomposition; this file only lays them out.
#include "shared/topology.h"

#include "shared/amqp/amqp_connection.h"
#include "shared/config.h"
#include "shared/delay_route.h"

namespace warren {
namespace {

// Arguments every quorum queue of Warren shares. at-least-once dead-lettering is what makes a
// dead-lettered (or delay-expired) message safe across broker failures, and RabbitMQ 3.10
// silently falls back to at-most-once unless overflow is reject-publish (RUNNING.md).
amqp::FieldTable quorum_arguments(const std::string& dead_letter_exchange) {
  amqp::FieldTable args;
  args.set("x-queue-type", std::string("quorum"));
  args.set("x-dead-letter-exchange", dead_letter_exchange);
  args.set("x-dead-letter-strategy", std::string("at-least-once"));
  args.set("x-overflow", std::string("reject-publish"));
  return args;
}

}  // namespace

Topology build_topology(const std::string& prefix, const std::vector<std::string>& queues,
                        int delivery_limit) {
  const TopologyNames names{prefix};
  Topology t;
  t.exchanges = {{names.jobs_exchange(), "topic"},
                 {names.delivery_exchange(), "topic"},
                 {names.dead_exchange(), "topic"}};

  for (const auto& queue : queues) {
    auto args = quorum_arguments(names.dead_exchange());
    args.set("x-delivery-limit", static_cast<std::int64_t>(delivery_limit));
    t.queues.push_back({names.work_queue(queue), args});
    t.bindings.push_back({names.jobs_exchange(), names.work_queue(queue), false, queue});
    t.bindings.push_back({names.delivery_exchange(), names.work_queue(queue), false,
                          delivery_binding_pattern(queue)});
  }

  // Level L holds a message 2^L seconds when bit L of its delay is set, else passes it on.
  for (int level = kTopDelayLevel; level >= 0; --level) {
    const std::string name = delay_exchange_name(prefix, level);
    const auto bindings = delay_level_bindings(prefix, level);
    t.exchanges.push_back({name, "topic"});
    auto args = quorum_arguments(bindings.next_exchange);
    args.set("x-message-ttl", static_cast<std::int64_t>(delay_level_ttl_ms(level)));
    t.queues.push_back({delay_queue_name(prefix, level), args});
    t.bindings.push_back({name, delay_queue_name(prefix, level), false, bindings.to_queue_pattern});
    t.bindings.push_back({name, bindings.next_exchange, true, bindings.to_next_pattern});
  }

  amqp::FieldTable dead_args;
  dead_args.set("x-queue-type", std::string("quorum"));
  dead_args.set("x-single-active-consumer", true);
  t.queues.push_back({names.dead_letters_queue(), dead_args});
  t.bindings.push_back({names.dead_exchange(), names.dead_letters_queue(), false, "#"});
  return t;
}

Topology build_topology(const Config& config) {
  return build_topology(config.amqp_prefix, config.queues, config.delivery_limit);
}

void declare_topology(amqp::AmqpConnection& connection, const Topology& topology) {
  for (const auto& exchange : topology.exchanges) {
    connection.declare_exchange(exchange.name, exchange.type);
  }
  for (const auto& queue : topology.queues) connection.declare_queue(queue.name, queue.arguments);
  for (const auto& binding : topology.bindings) {
    if (binding.destination_is_exchange) {
      connection.bind_exchange(binding.destination, binding.source, binding.routing_key);
    } else {
      connection.bind_queue(binding.destination, binding.source, binding.routing_key);
    }
  }
}

std::vector<std::string> check_topology(amqp::AmqpConnection& connection,
                                        const Topology& topology) {
  std::vector<std::string> missing;
  for (const auto& exchange : topology.exchanges) {
    if (!connection.check_exchange(exchange.name)) missing.push_back("exchange " + exchange.name);
  }
  for (const auto& queue : topology.queues) {
    if (!connection.check_queue(queue.name)) missing.push_back("queue " + queue.name);
  }
  return missing;
}

nlohmann::json topology_definitions(const Topology& topology, const std::string& vhost) {
  nlohmann::json out = {{"exchanges", nlohmann::json::array()},
                        {"queues", nlohmann::json::array()},
                        {"bindings", nlohmann::json::array()}};
  for (const auto& e : topology.exchanges) {
    out["exchanges"].push_back({{"name", e.name},
                                {"vhost", vhost},
                                {"type", e.type},
                                {"durable", true},
                                {"auto_delete", false},
                                {"internal", false},
                                {"arguments", nlohmann::json::object()}});
  }
  for (const auto& q : topology.queues) {
    out["queues"].push_back({{"name", q.name},
                             {"vhost", vhost},
                             {"durable", true},
                             {"auto_delete", false},
                             {"arguments", q.arguments}});
  }
  for (const auto& b : topology.bindings) {
    out["bindings"].push_back(
        {{"source", b.source},
         {"vhost", vhost},
         {"destination", b.destination},
         {"destination_type", b.destination_is_exchange ? "exchange" : "queue"},
         {"routing_key", b.routing_key},
         {"arguments", nlohmann::json::object()}});
  }
  return out;
}

}  // namespace warren

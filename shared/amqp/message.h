// The two message shapes of Warren's AMQP layer: what we publish (OutgoingMessage) and what the
// broker hands us (Delivery). Plain structs that own their data, so they can cross threads (the
// consumer's event loop hands deliveries to its worker pool) while AmqpConnection itself stays
// on its owner thread.
//
// Only the basic properties Warren uses are carried (MESSAGING.md, "Messages"): content_type,
// message_id, type, app_id, timestamp, delivery_mode and headers. An empty string or a zero
// timestamp means "property not sent".
#pragma once

#include <cstdint>
#include <string>

#include "shared/amqp/field_table.h"

namespace warren::amqp {

inline constexpr std::uint8_t kTransient = 1;
inline constexpr std::uint8_t kPersistent = 2;

struct OutgoingMessage {
  std::string exchange;  // "" is the default exchange (routing key = queue name)
  std::string routing_key;
  std::string body;  // bytes, not necessarily text
  std::string content_type;
  std::string message_id;
  std::string type;
  std::string app_id;
  std::int64_t timestamp = 0;  // Unix seconds; 0 = not sent
  std::uint8_t delivery_mode = kPersistent;
  FieldTable headers;
  // Ask the broker to return the message (basic.return) instead of dropping it when no queue
  // is bound for it; AmqpConnection::wait_for_confirms() then reports it as kReturned.
  bool mandatory = false;
};

struct Delivery {
  std::uint64_t delivery_tag = 0;  // for ack / nack / reject on the same connection only
  bool redelivered = false;
  std::string consumer_tag;         // empty for basic_get
  std::uint32_t message_count = 0;  // basic_get only: messages left in the queue
  std::string exchange;
  std::string routing_key;
  std::string body;
  std::string content_type;
  std::string message_id;
  std::string type;
  std::string app_id;
  std::int64_t timestamp = 0;
  std::uint8_t delivery_mode = 0;  // 0 = not sent
  FieldTable headers;
};

}  // namespace warren::amqp

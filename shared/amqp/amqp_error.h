// AmqpError: the single exception type thrown by Warren's AMQP client layer (shared/amqp/).
//
// Callers (the producer's outbox relay, the consumer's event loop, warrenctl) mostly need one
// decision from an error: is the connection still usable, or must it be thrown away and
// reopened? connection_lost() answers that. Channel-level errors (a 404 on a missing exchange,
// a 406 on a queue redeclared with other arguments) leave the connection usable: the wrapper has
// already reopened its channel when the exception reaches the caller.
//
// Messages never contain a broker password (URLs are redacted before they are quoted).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace warren::amqp {

class AmqpError : public std::runtime_error {
 public:
  // reply_code is the AMQP reply code the broker sent (e.g. 404 NOT_FOUND, 403 ACCESS_REFUSED,
  // 406 PRECONDITION_FAILED, 320 CONNECTION_FORCED), or 0 when the error came from the client
  // side (socket, timeout, bad URL).
  AmqpError(const std::string& message, bool connection_lost, std::uint16_t reply_code = 0)
      : std::runtime_error(message), connection_lost_(connection_lost), reply_code_(reply_code) {}

  // True when the connection is gone (or never came up): the owner should drop the
  // AmqpConnection and reconnect with backoff. False for errors confined to one operation.
  bool connection_lost() const noexcept { return connection_lost_; }

  std::uint16_t reply_code() const noexcept { return reply_code_; }

 private:
  bool connection_lost_;
  std::uint16_t reply_code_;
};

}  // namespace warren::amqp

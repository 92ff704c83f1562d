// AmqpConnection: one RabbitMQ connection with one channel, as a move-only RAII object over
// rabbitmq-c 0.11.
//
// Used by the producer's outbox relay (publish a batch, one confirm wait), warrenctl's topology
// command (declare / check), the consumer's libuv loop (consume_one driven by socket_fd()) and
// the tests. It adds to rabbitmq-c what Warren needs and the library lacks:
//   - errors as AmqpError, with "is the connection lost?" decided once, here;
//   - passive checks that answer false instead of leaving a dead channel behind;
//   - batched publisher confirms, including matching basic.return to its publish (a mandatory
//     message nobody could route is a failure even though the broker also acks it);
//   - frames that arrive while waiting for something else (a delivery during a confirm wait, an
//     ack during basic.get) are kept and handled in order, never dropped.
//
// THREADING: not thread-safe, like rabbitmq-c itself. One owner thread creates it and makes
// every call; other threads hand work to that thread (the consumer's event loop does this).
//
// HEARTBEATS: rabbitmq-c only services heartbeats inside its calls. An owner that may stay idle
// (no publish, no wait) longer than heartbeat/2 seconds must call poll() periodically, or the
// broker will close the connection after two missed heartbeats.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/amqp/amqp_error.h"
#include "shared/amqp/field_table.h"
#include "shared/amqp/message.h"

namespace warren::amqp {

// Header added to mandatory publishes while confirms are enabled, carrying the publish sequence
// number, so that a basic.return can be matched to its publish: the ack that follows a return
// may be a "multiple" ack covering other messages too, so order alone cannot tell.
inline constexpr char kPublishSequenceHeader[] = "x-warren-publish-seq";

struct QueueCounts {
  std::uint32_t message_count = 0;  // ready messages (not the unacknowledged ones)
  std::uint32_t consumer_count = 0;
};

enum class ConfirmStatus {
  kAcked,     // the broker took responsibility for the message
  kNacked,    // the broker refused it (e.g. reject-publish overflow), or the channel closed
  kReturned,  // mandatory and unroutable: acked by the broker but delivered to no queue
  kTimedOut,  // no answer before the wait's deadline: treat as not published
};

const char* to_string(ConfirmStatus status);

struct ConfirmOutcome {
  std::uint64_t sequence = 0;
  ConfirmStatus status = ConfirmStatus::kAcked;
  // kReturned: the basic.return's code and text (312 NO_ROUTE); kNacked because the channel
  // closed: the channel.close code and text. Otherwise 0 / empty.
  std::uint16_t reply_code = 0;
  std::string reply_text;
};

struct ConfirmBatch {
  std::vector<ConfirmOutcome> outcomes;  // ascending sequence, each sequence at most once

  bool all_acked() const;
  std::size_t count(ConfirmStatus status) const;
  // nullptr when the sequence is not part of this batch.
  const ConfirmOutcome* find(std::uint64_t sequence) const;
};

// Replaces the password of an amqp(s) URL by "***" so the URL can be logged or quoted in an
// error. Strings that do not look like URLs come back unchanged.
std::string redact_amqp_url(const std::string& url);

class AmqpConnection {
 public:
  // Connects, logs in (PLAIN) with connection_name as the client-provided connection name the
  // management UI shows, and opens channel 1.
  //
  // URL: amqp://user:password@host:port/vhost (percent-encoded; "%2f" is the vhost "/"; a
  // missing or empty vhost means "/"), or amqps:// for TLS, which verifies the broker's
  // certificate and host name against the system CAs by default. Optional query parameters,
  // RabbitMQ's URI spec names: cacertfile, certfile, keyfile (PEM paths), verify=verify_peer|
  // verify_none, heartbeat (seconds; overrides heartbeat_seconds), connection_timeout
  // (milliseconds, default 10000). An unknown parameter is an error rather than silently
  // ignored. The TLS server name (SNI) and the name checked are the URL's host.
  //
  // Throws AmqpError, whose message names the broker but never the password:
  // connection_lost() == true when the broker could not be reached or refused us (retry with
  // backoff; reply_code() is 403 for bad credentials, 530 for an unknown vhost), false for a
  // malformed URL or parameter (a configuration error: retrying will not help).
  static AmqpConnection open(const std::string& url, const std::string& connection_name,
                             int heartbeat_seconds = 30);

  AmqpConnection(AmqpConnection&&) noexcept;
  // Closes this connection (as the destructor does) before taking the other one.
  AmqpConnection& operator=(AmqpConnection&&) noexcept;
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;
  ~AmqpConnection();

  // False once the connection was lost or closed; every other call then throws AmqpError with
  // connection_lost() == true.
  bool is_open() const;
  // Polite connection.close, best effort, bounded by a 2 s wait. Idempotent.
  void close() noexcept;
  // Set by the broker's connection.blocked (memory or disk alarm): publishes will stall until it
  // clears. Updated whenever frames are read (poll(), waits, consume_one).
  bool blocked() const;
  // Bound on every synchronous broker round trip (declare, get, ...). Default 30 s. When it
  // expires rabbitmq-c closes the socket: the call throws with connection_lost() == true.
  void set_rpc_timeout(std::chrono::milliseconds timeout);

  // ---- Topology ---------------------------------------------------------------------------
  // Declarations are idempotent when repeated with the same parameters; different arguments for
  // an existing entity throw AmqpError 406 (the channel is reopened, the connection stays).
  void declare_exchange(const std::string& name, const std::string& type, bool durable = true);
  QueueCounts declare_queue(const std::string& name, const FieldTable& arguments = {},
                            bool durable = true);
  void bind_queue(const std::string& queue, const std::string& exchange,
                  const std::string& routing_key, const FieldTable& arguments = {});
  void bind_exchange(const std::string& destination, const std::string& source,
                     const std::string& routing_key, const FieldTable& arguments = {});
  // Returns how many messages were purged.
  std::uint32_t queue_purge(const std::string& queue);
  // Returns how many messages the queue held. Deleting a missing queue succeeds (RabbitMQ 3.10).
  std::uint32_t delete_queue(const std::string& queue, bool if_unused = false,
                             bool if_empty = false);
  void delete_exchange(const std::string& name, bool if_unused = false);

  // Passive declarations: false / nullopt when the entity does not exist. The broker answers a
  // missing entity by closing the channel (404); the channel is reopened transparently, but
  // publishes not yet confirmed die with it (reported kNacked), so check before publishing.
  bool check_exchange(const std::string& name);
  bool check_queue(const std::string& name);
  std::optional<QueueCounts> inspect_queue(const std::string& name);

  // ---- Publishing -------------------------------------------------------------------------
  // confirm.select on the channel. Idempotent.
  void enable_confirms();
  bool confirms_enabled() const;

  // Sends one message without waiting. Returns its publish sequence number when confirms are
  // enabled (1 for the first publish after enable_confirms(), +1 per publish, continuing across
  // a channel reopened after a channel error), 0 otherwise. Mandatory publishes get the
  // kPublishSequenceHeader header (replacing one copied from an earlier delivery).
  std::uint64_t publish(const OutgoingMessage& message);

  // Reads the broker's answers until every publish so far is settled or the timeout expires,
  // and returns the outcomes settled since the previous wait / take_settled() (those settled
  // during poll() or consume_one() included). On timeout the still unsettled publishes are
  // reported kTimedOut and forgotten (a late ack for them is ignored): the caller must treat
  // them as not published. Throws AmqpError if the channel or connection fails meanwhile;
  // outcomes settled before that stay available through take_settled(), and every publish that
  // was still unsettled is reported kNacked there (channel error) or unknown (connection lost:
  // assume not published).
  ConfirmBatch wait_for_confirms(std::chrono::milliseconds timeout);
  // Non-blocking: outcomes settled so far, without reading the socket (call poll() first to
  // read what has arrived). For an event loop that cannot block in wait_for_confirms().
  ConfirmBatch take_settled();
  // Publishes sent and not yet settled.
  std::size_t unconfirmed_count() const;

  // ---- Consuming --------------------------------------------------------------------------
  void basic_qos(std::uint16_t prefetch_count);
  // Starts a consumer (manual acks). An empty tag lets the broker choose one; returns the tag.
  std::string basic_consume(const std::string& queue, const std::string& consumer_tag = "",
                            const FieldTable& arguments = {});
  void basic_cancel(const std::string& consumer_tag);
  // Consumers the broker cancelled (queue deleted, ...) or that died with the channel, since the
  // last call. The owner should re-declare / re-consume or reconnect.
  std::vector<std::string> take_cancelled_consumers();

  // One message from the queue, or nullopt when it is empty.
  std::optional<Delivery> basic_get(const std::string& queue, bool no_ack = false);
  // The next delivery for this connection's consumers, waiting up to timeout (0 = only what has
  // already arrived, never blocks). Other frames read meanwhile (confirms, returns, cancels) are
  // processed. Returns nullopt on timeout.
  std::optional<Delivery> consume_one(std::chrono::milliseconds timeout);

  void ack(std::uint64_t delivery_tag, bool multiple = false);
  void nack(std::uint64_t delivery_tag, bool multiple = false, bool requeue = true);
  void reject(std::uint64_t delivery_tag, bool requeue);

  // ---- Event-loop integration -------------------------------------------------------------
  // Processes, without blocking, everything that has already arrived: confirms, returns,
  // deliveries (kept for consume_one), cancels, and answers heartbeats.
  void poll();
  // The TCP socket, for a readiness poll (libuv uv_poll_t). Read only through this class.
  int socket_fd() const;
  // True when data is already inside rabbitmq-c or this object (decoded frames, buffered
  // bytes, kept deliveries): the socket will NOT become readable for it, so an event loop must
  // keep calling consume_one(0) / poll() while this is true instead of waiting on socket_fd().
  bool has_buffered_data() const;

 private:
  class Impl;
  explicit AmqpConnection(std::unique_ptr<Impl> impl);
  Impl& impl() const;

  std::unique_ptr<Impl> impl_;
};

}  // namespace warren::amqp

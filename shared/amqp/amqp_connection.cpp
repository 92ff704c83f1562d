// AmqpConnection over rabbitmq-c 0.11 (see amqp_connection.h for the role and the rules).
//
// How frames flow: rabbitmq-c returns frames in arrival order from one place,
// amqp_simple_wait_frame_noblock(), which first drains its own queue of frames it put aside
// (frames that arrived during a library RPC, or that amqp_basic_publish() read while checking
// heartbeats) and then reads the socket. Everything here reads through that function and hands
// frames that nobody is specifically waiting for to Impl::dispatch(), which settles confirms,
// matches returns, keeps deliveries for consume_one() and turns closes into AmqpError.
//
// Library pitfalls this file works around (rabbitmq-c 0.11):
//   - Library RPCs (amqp_queue_declare, ...) read only the socket, never the queue of put-aside
//     frames, so a channel.close already queued would make the next RPC wait forever: every RPC
//     first drains that queue (drain_queued()).
//   - amqp_basic_get() followed by amqp_read_message() reads a put-aside ack instead of the
//     message's header when confirms are outstanding, so basic.get is sent and awaited here.
//   - Put-aside frames can include heartbeat frames: they are skipped.
//   - Memory of decoded frames is only valid until amqp_maybe_release_buffers(): everything is
//     copied into owning C++ types first, buffers are released after.
#include "shared/amqp/amqp_connection.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <map>
#include <new>
#include <utility>

namespace warren::amqp {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One channel is all Warren needs per connection; its number never changes (a channel closed
// by the broker is reopened under the same number after close-ok, which AMQP allows).
constexpr amqp_channel_t kChannel = 1;
constexpr milliseconds kDefaultRpcTimeout{30000};
constexpr milliseconds kDefaultConnectTimeout{10000};
constexpr milliseconds kCloseTimeout{2000};
// A long publish burst reads the socket this often, so acks do not pile up in the kernel
// buffers until the broker's writes block.
constexpr std::uint64_t kPublishesBetweenReads = 64;
// poll() stops after this many frames so a busy queue cannot keep it from returning; the caller
// sees has_buffered_data() and comes back.
constexpr int kMaxFramesPerPoll = 4096;

amqp_bytes_t bytes_of(const std::string& text) {
  amqp_bytes_t bytes;
  bytes.len = text.size();
  bytes.bytes = const_cast<char*>(text.data());
  return bytes;
}

std::string to_std_string(const amqp_bytes_t& bytes) {
  if (bytes.len == 0 || bytes.bytes == nullptr) return {};
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

timeval to_timeval(milliseconds duration) {
  if (duration.count() < 0) duration = milliseconds(0);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return tv;
}

timeval until(Clock::time_point deadline) {
  return to_timeval(std::chrono::ceil<milliseconds>(deadline - Clock::now()));
}

std::string in_quotes(const std::string& name) {
  return "'" + name + "'";
}

struct StateDeleter {
  void operator()(amqp_connection_state_t state) const noexcept {
    // Closes the socket without any AMQP exchange (close() does the polite part first).
    amqp_destroy_connection(state);
  }
};
using StatePtr = std::unique_ptr<amqp_connection_state_t_, StateDeleter>;

// Library status codes that leave the connection intact: the request was refused before
// anything reached the socket. Every other failure leaves the stream in an unknown state.
bool status_keeps_connection(int status) {
  return status == AMQP_STATUS_INVALID_PARAMETER || status == AMQP_STATUS_TABLE_TOO_BIG;
}

std::string describe_close(std::uint16_t code, const std::string& text) {
  return std::to_string(code) + " " + text;
}

// ---- URLs -----------------------------------------------------------------------------------

struct ParsedUrl {
  std::string user;
  std::string password;
  std::string host;
  std::string vhost;
  int port = 0;
  bool ssl = false;
  std::string cacertfile;
  std::string certfile;
  std::string keyfile;
  bool verify = true;
  std::optional<int> heartbeat;
  milliseconds connect_timeout = kDefaultConnectTimeout;

  // For messages: never contains the password.
  std::string display() const {
    return std::string(ssl ? "amqps" : "amqp") + "://" + user + "@" + host + ":" +
           std::to_string(port) + " vhost " + in_quotes(vhost);
  }
};

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= text.size()) return std::nullopt;
    auto [ptr, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || ptr != text.data() + i + 3) return std::nullopt;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

ParsedUrl parse_url(const std::string& url) {
  const auto invalid = [&](const std::string& why) {
    return AmqpError("invalid AMQP URL " + in_quotes(redact_amqp_url(url)) + ": " + why,
                     /*connection_lost=*/false);
  };

  std::string base = url.substr(0, url.find_first_of("?#"));
  std::string query;
  if (auto q = url.find('?'); q != std::string::npos) {
    query = url.substr(q + 1, url.find('#', q) == std::string::npos ? std::string::npos
                                                                    : url.find('#', q) - q - 1);
  }

  // amqp_parse_url() parses in place and points into the buffer: parse a copy, then copy out.
  std::vector<char> buffer(base.begin(), base.end());
  buffer.push_back('\0');
  amqp_connection_info info;
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) {
    throw invalid("expected amqp[s]://user:password@host:port/vhost");
  }
  ParsedUrl parsed;
  parsed.user = info.user;
  parsed.password = info.password;
  parsed.host = info.host;
  parsed.port = info.port;
  parsed.vhost = info.vhost;
  parsed.ssl = info.ssl != 0;
  // "amqp://host/" names the empty vhost in the AMQP URI spec, which no RabbitMQ setup uses;
  // what the writer meant is the default one.
  if (parsed.vhost.empty()) parsed.vhost = "/";
  if (parsed.host.empty()) throw invalid("missing host");
  std::fill(buffer.begin(), buffer.end(), '\0');

  std::size_t start = 0;
  while (start < query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    std::string_view item(query.data() + start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    std::size_t eq = item.find('=');
    std::string key(item.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? "" : item.substr(eq + 1));
    if (!value) throw invalid("bad percent-encoding in query parameter " + in_quotes(key));
    if (key == "cacertfile") {
      parsed.cacertfile = *value;
    } else if (key == "certfile") {
      parsed.certfile = *value;
    } else if (key == "keyfile") {
      parsed.keyfile = *value;
    } else if (key == "verify") {
      if (*value == "verify_peer") {
        parsed.verify = true;
      } else if (*value == "verify_none") {
        parsed.verify = false;
      } else {
        throw invalid("verify must be verify_peer or verify_none");
      }
    } else if (key == "heartbeat") {
      auto seconds = parse_int(*value);
      if (!seconds || *seconds < 0 || *seconds > 65535) {
        throw invalid("heartbeat must be 0..65535 seconds");
      }
      parsed.heartbeat = *seconds;
    } else if (key == "connection_timeout") {
      auto ms = parse_int(*value);
      if (!ms || *ms <= 0) throw invalid("connection_timeout must be a positive number of ms");
      parsed.connect_timeout = milliseconds(*ms);
    } else {
      throw invalid("unsupported query parameter " + in_quotes(key));
    }
  }
  if (!parsed.ssl && (!parsed.cacertfile.empty() || !parsed.certfile.empty() ||
                      !parsed.keyfile.empty() || !parsed.verify)) {
    throw invalid("TLS parameters given for a plain amqp:// URL");
  }
  if (parsed.certfile.empty() != parsed.keyfile.empty()) {
    throw invalid("certfile and keyfile go together");
  }
  return parsed;
}

// Why the last certificate verification on this thread failed (OpenSSL's words), for the
// error message: rabbitmq-c only says "SSL peer cert verification failed". Connections are
// opened synchronously on the calling thread, which is also where OpenSSL verifies.
thread_local std::string tls_verify_error;

int remember_verify_error(int ok, X509_STORE_CTX* store) {
  if (ok == 0 && tls_verify_error.empty()) {
    tls_verify_error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(store));
  }
  return ok;  // the verification's own verdict, unchanged
}

// Sets up certificate checks on an amqps socket. rabbitmq-c verifies the peer by default but
// loads no CA at all, so without a cacertfile we load the system's (OpenSSL's default paths,
// which also honour SSL_CERT_FILE / SSL_CERT_DIR).
void configure_tls(amqp_socket_t* socket, const ParsedUrl& url) {
  auto* context = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
  if (context == nullptr) throw AmqpError("no TLS context for " + url.display(), true);
  amqp_ssl_socket_set_verify_peer(socket, url.verify ? 1 : 0);
  // The host name is checked by OpenSSL while it verifies the chain, not by rabbitmq-c: 0.11
  // matches the URL's host against DNS names only, so "amqps://10.0.0.5/" (or 127.0.0.1) was
  // refused ("SSL hostname verification failed") even with a certificate made for that
  // address (subjectAltName IP:10.0.0.5). OpenSSL compares an IP address with the IP entries
  // and a name with the DNS ones (RFC 6125); a mismatch fails the verification, which
  // rabbitmq-c checks (SSL_get_verify_result) before any AMQP byte, credentials included, is
  // sent.
  amqp_ssl_socket_set_verify_hostname(socket, 0);
  if (url.verify) {
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(context);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const bool is_ip = X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str()) == 1;
    if (!is_ip && X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), 0) != 1) {
      throw AmqpError("cannot set up host name verification for " + url.display(), true);
    }
    // SSL_VERIFY_NONE is rabbitmq-c's mode (it checks the result after the handshake); the
    // callback only keeps the reason for the message.
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, remember_verify_error);
  }
  if (!url.cacertfile.empty()) {
    if (amqp_ssl_socket_set_cacert(socket, url.cacertfile.c_str()) != AMQP_STATUS_OK) {
      throw AmqpError(
          "cannot load CA certificates from " + in_quotes(url.cacertfile) + " for " + url.display(),
          true);
    }
  } else {
    if (SSL_CTX_set_default_verify_paths(context) != 1) {
      throw AmqpError("cannot load the system CA certificates for " + url.display(), true);
    }
  }
  if (!url.certfile.empty()) {
    if (amqp_ssl_socket_set_key(socket, url.certfile.c_str(), url.keyfile.c_str()) !=
        AMQP_STATUS_OK) {
      throw AmqpError("cannot load client certificate " + in_quotes(url.certfile) + " / key " +
                          in_quotes(url.keyfile) + " for " + url.display(),
                      true);
    }
  }
}

std::string describe_login_failure(const amqp_rpc_reply_t& reply, std::uint16_t* code) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* close = static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
        *code = close->reply_code;
        return describe_close(close->reply_code, to_std_string(close->reply_text));
      }
      return std::string("unexpected ") + amqp_method_name(reply.reply.id);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      // Brokers that do not announce authentication failures just drop the socket.
      if (reply.library_error == AMQP_STATUS_CONNECTION_CLOSED ||
          reply.library_error == AMQP_STATUS_SOCKET_CLOSED) {
        return std::string(amqp_error_string2(reply.library_error)) +
               " (wrong user, password or vhost?)";
      }
      return amqp_error_string2(reply.library_error);
    default:
      return "no reply";
  }
}

// Fills the message properties Warren uses from a received header frame.
void copy_properties(const amqp_basic_properties_t& properties, Delivery& out) {
  const amqp_flags_t flags = properties._flags;
  if (flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
    out.content_type = to_std_string(properties.content_type);
  if (flags & AMQP_BASIC_MESSAGE_ID_FLAG) out.message_id = to_std_string(properties.message_id);
  if (flags & AMQP_BASIC_TYPE_FLAG) out.type = to_std_string(properties.type);
  if (flags & AMQP_BASIC_APP_ID_FLAG) out.app_id = to_std_string(properties.app_id);
  if (flags & AMQP_BASIC_TIMESTAMP_FLAG) {
    out.timestamp = static_cast<std::int64_t>(properties.timestamp);
  }
  if (flags & AMQP_BASIC_DELIVERY_MODE_FLAG) out.delivery_mode = properties.delivery_mode;
  if (flags & AMQP_BASIC_HEADERS_FLAG) out.headers = decode_table(properties.headers);
}

}  // namespace

// ---- Public helpers ---------------------------------------------------------------------------

const char* to_string(ConfirmStatus status) {
  switch (status) {
    case ConfirmStatus::kAcked:
      return "acked";
    case ConfirmStatus::kNacked:
      return "nacked";
    case ConfirmStatus::kReturned:
      return "returned";
    case ConfirmStatus::kTimedOut:
      return "timed_out";
  }
  return "unknown";
}

bool ConfirmBatch::all_acked() const {
  return std::all_of(outcomes.begin(), outcomes.end(), [](const ConfirmOutcome& outcome) {
    return outcome.status == ConfirmStatus::kAcked;
  });
}

std::size_t ConfirmBatch::count(ConfirmStatus status) const {
  return static_cast<std::size_t>(
      std::count_if(outcomes.begin(), outcomes.end(),
                    [&](const ConfirmOutcome& outcome) { return outcome.status == status; }));
}

const ConfirmOutcome* ConfirmBatch::find(std::uint64_t sequence) const {
  auto it = std::lower_bound(
      outcomes.begin(), outcomes.end(), sequence,
      [](const ConfirmOutcome& outcome, std::uint64_t seq) { return outcome.sequence < seq; });
  if (it == outcomes.end() || it->sequence != sequence) return nullptr;
  return &*it;
}

std::string redact_amqp_url(const std::string& url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  const std::size_t user_start = scheme_end + 3;
  // The last '@' ends the user info even if the password holds an unencoded '@' or '/': better
  // to hide too much of a malformed URL than to print part of a password.
  const std::size_t at = url.rfind('@');
  if (at == std::string::npos || at < user_start) return url;
  const std::size_t colon = url.find(':', user_start);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

// ---- Impl -------------------------------------------------------------------------------------

class AmqpConnection::Impl {
 public:
  Impl(StatePtr state, std::string display)
      : state_(std::move(state)), display_(std::move(display)) {}

  // Polite close first; see close() for why errors there are ignored.
  ~Impl() { close(); }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  amqp_connection_state_t state() const { return state_.get(); }
  bool is_open() const { return open_; }
  bool blocked() const { return blocked_; }

  void close() noexcept {
    if (!state_ || !open_) return;
    open_ = false;
    // Best effort and bounded: the broker may be gone or stuck, and there is nothing useful to
    // do about a failed goodbye (unacked deliveries are requeued by the broker either way, and
    // a destructor must not throw). connection.close also closes the channel.
    timeval tv = to_timeval(kCloseTimeout);
    amqp_set_rpc_timeout(state(), &tv);
    (void)amqp_connection_close(state(), AMQP_REPLY_SUCCESS);
  }

  void set_rpc_timeout(milliseconds timeout) {
    rpc_timeout_ = timeout;
    timeval tv = to_timeval(timeout);
    amqp_set_rpc_timeout(state(), &tv);
  }

  // ---- Errors ----

  [[noreturn]] void lost(const std::string& what) {
    open_ = false;
    throw AmqpError("AMQP connection to " + display_ + " lost: " + what, true);
  }

  void ensure_open(const std::string& context) const {
    if (!open_) {
      throw AmqpError("AMQP " + context + " on a closed connection to " + display_, true);
    }
  }

  [[noreturn]] void fail_status(int status, const std::string& context) {
    if (status_keeps_connection(status)) {
      throw AmqpError("AMQP " + context + " failed: " + amqp_error_string2(status), false);
    }
    lost(context + ": " + amqp_error_string2(status));
  }

  // Turns a broker close (from an RPC reply or a frame) into AmqpError after doing what the
  // protocol requires: close-ok, and for a channel, reopening it so the connection stays usable.
  [[noreturn]] void on_close(const amqp_method_t& method, const std::string& context) {
    if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      const auto* close = static_cast<const amqp_connection_close_t*>(method.decoded);
      const std::uint16_t code = close->reply_code;
      const std::string text = to_std_string(close->reply_text);
      amqp_connection_close_ok_t ok{};
      // Ignored: we leave whether or not the broker hears it.
      (void)amqp_send_method(state(), 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      open_ = false;
      throw AmqpError("AMQP " + context + ": broker closed the connection to " + display_ + ": " +
                          describe_close(code, text),
                      true, code);
    }
    if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
      const auto* close = static_cast<const amqp_channel_close_t*>(method.decoded);
      const std::uint16_t code = close->reply_code;
      const std::string text = to_std_string(close->reply_text);
      recover_channel(code, text);
      throw AmqpError(
          "AMQP " + context + " failed: broker closed the channel: " + describe_close(code, text),
          false, code);
    }
    lost(context + ": unexpected " + amqp_method_name(method.id));
  }

  // Throws for anything but a normal reply.
  void check_reply(const amqp_rpc_reply_t& reply, const std::string& context) {
    switch (reply.reply_type) {
      case AMQP_RESPONSE_NORMAL:
        return;
      case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        fail_status(reply.library_error, context);
      case AMQP_RESPONSE_SERVER_EXCEPTION:
        on_close(reply.reply, context);
      case AMQP_RESPONSE_NONE:
        break;
    }
    lost(context + ": no reply from the broker");
  }

  // For the library's RPC helpers, which return the decoded reply or NULL.
  template <class Reply>
  Reply* rpc_result(Reply* reply, const std::string& context) {
    if (reply == nullptr) {
      check_reply(amqp_get_rpc_reply(state()), context);
      lost(context + ": empty reply");
    }
    return reply;
  }

  // ---- Channel ----

  // channel.open plus the channel-scoped settings a reopened channel must get back.
  void open_channel() {
    if (reopening_) lost("channel.open failed while recovering the channel");
    reopening_ = true;
    rpc_result(amqp_channel_open(state(), kChannel), "channel.open");
    if (confirms_) {
      seq_base_ += channel_seq_;
      channel_seq_ = 0;
      rpc_result(amqp_confirm_select(state(), kChannel), "confirm.select");
    }
    if (prefetch_) {
      rpc_result(amqp_basic_qos(state(), kChannel, 0, *prefetch_, 0), "basic.qos");
    }
    reopening_ = false;
    amqp_maybe_release_buffers(state());
  }

  // After the broker closed our channel: acknowledge, void what lived on it, reopen.
  void recover_channel(std::uint16_t code, const std::string& text) {
    amqp_channel_close_ok_t ok{};
    if (int status = amqp_send_method(state(), kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        status != AMQP_STATUS_OK) {
      fail_status(status, "channel.close-ok");
    }
    fail_unsettled(ConfirmStatus::kNacked, code, "channel closed by broker: " + text);
    // Their delivery tags died with the channel; the broker requeues the messages.
    pending_deliveries_.clear();
    for (auto& tag : consumers_) cancelled_.push_back(std::move(tag));
    consumers_.clear();
    amqp_maybe_release_buffers_on_channel(state(), kChannel);
    open_channel();
  }

  // ---- Frames ----

  // Next non-heartbeat frame, or false when the deadline passes first (a deadline in the past
  // still returns what has already arrived).
  bool next_frame(amqp_frame_t& frame, Clock::time_point deadline, const std::string& context) {
    for (;;) {
      timeval tv = until(deadline);
      const int status = amqp_simple_wait_frame_noblock(state(), &frame, &tv);
      if (status == AMQP_STATUS_TIMEOUT) return false;
      if (status != AMQP_STATUS_OK) fail_status(status, context);
      // amqp_basic_publish() puts heartbeats it reads aside with the other frames.
      if (frame.frame_type == AMQP_FRAME_HEARTBEAT) continue;
      return true;
    }
  }

  // Header and body frames that follow a basic.deliver / get-ok / return. The broker sends them
  // right behind the method, so waiting for them is bounded by the RPC timeout.
  void read_content(Delivery& out, const std::string& context) {
    const Clock::time_point deadline = Clock::now() + rpc_timeout_;
    amqp_frame_t frame;
    if (!next_frame(frame, deadline, context)) lost(context + ": message header never came");
    if (frame.frame_type == AMQP_FRAME_METHOD &&
        (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
         frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
      on_close(frame.payload.method, context);
    }
    if (frame.frame_type != AMQP_FRAME_HEADER || frame.channel != kChannel) {
      lost(context + ": expected a message header frame");
    }
    copy_properties(*static_cast<const amqp_basic_properties_t*>(frame.payload.properties.decoded),
                    out);
    const std::uint64_t size = frame.payload.properties.body_size;
    out.body.clear();
    out.body.reserve(static_cast<std::size_t>(size));
    while (out.body.size() < size) {
      if (!next_frame(frame, deadline, context)) lost(context + ": message body never came");
      if (frame.frame_type != AMQP_FRAME_BODY || frame.channel != kChannel) {
        lost(context + ": expected a message body frame");
      }
      const amqp_bytes_t& fragment = frame.payload.body_fragment;
      if (out.body.size() + fragment.len > size) lost(context + ": message body too long");
      out.body.append(static_cast<const char*>(fragment.bytes), fragment.len);
    }
  }

  // Handles a frame that arrived while no call was waiting for it specifically.
  void dispatch(const amqp_frame_t& frame, const std::string& context) {
    if (frame.frame_type == AMQP_FRAME_HEARTBEAT) return;
    if (frame.frame_type != AMQP_FRAME_METHOD) {
      // Content without its method: we lost track of the framing, nothing can be trusted.
      lost(context + ": unexpected content frame");
    }
    const amqp_method_t& method = frame.payload.method;
    if (frame.channel == 0) {
      switch (method.id) {
        case AMQP_CONNECTION_CLOSE_METHOD:
          on_close(method, context);
        case AMQP_CONNECTION_BLOCKED_METHOD:
          blocked_ = true;
          return;
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
          blocked_ = false;
          return;
        default:
          return;
      }
    }
    if (frame.channel != kChannel) return;
    switch (method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
        settle(ack->delivery_tag, ack->multiple != 0, ConfirmStatus::kAcked);
        return;
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* nack = static_cast<const amqp_basic_nack_t*>(method.decoded);
        settle(nack->delivery_tag, nack->multiple != 0, ConfirmStatus::kNacked);
        return;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        const auto* ret = static_cast<const amqp_basic_return_t*>(method.decoded);
        const std::uint16_t code = ret->reply_code;
        std::string text = to_std_string(ret->reply_text);
        Delivery returned;
        read_content(returned, context);
        on_return(returned.headers, code, std::move(text));
        return;
      }
      case AMQP_BASIC_DELIVER_METHOD: {
        const auto* deliver = static_cast<const amqp_basic_deliver_t*>(method.decoded);
        Delivery delivery;
        delivery.consumer_tag = to_std_string(deliver->consumer_tag);
        delivery.delivery_tag = deliver->delivery_tag;
        delivery.redelivered = deliver->redelivered != 0;
        delivery.exchange = to_std_string(deliver->exchange);
        delivery.routing_key = to_std_string(deliver->routing_key);
        read_content(delivery, context);
        pending_deliveries_.push_back(std::move(delivery));
        return;
      }
      case AMQP_BASIC_CANCEL_METHOD: {
        // Sent by the broker (consumer_cancel_notify) when the queue went away; no reply due.
        const auto* cancel = static_cast<const amqp_basic_cancel_t*>(method.decoded);
        forget_consumer(to_std_string(cancel->consumer_tag), /*cancelled_by_broker=*/true);
        return;
      }
      case AMQP_CHANNEL_CLOSE_METHOD:
        on_close(method, context);
      case AMQP_CHANNEL_FLOW_METHOD: {
        // RabbitMQ no longer sends it, but a peer that does expects an answer.
        const auto* flow = static_cast<const amqp_channel_flow_t*>(method.decoded);
        amqp_channel_flow_ok_t ok{};
        ok.active = flow->active;
        if (int status = amqp_send_method(state(), kChannel, AMQP_CHANNEL_FLOW_OK_METHOD, &ok);
            status != AMQP_STATUS_OK) {
          fail_status(status, "channel.flow-ok");
        }
        return;
      }
      default:
        // Nothing else arrives unsolicited on a channel; ignore rather than kill the connection.
        return;
    }
  }

  // Handles frames rabbitmq-c has put aside, so that a library RPC (which only reads the
  // socket) cannot miss a close that is already here.
  void drain_queued(const std::string& context) {
    amqp_frame_t frame;
    while (amqp_frames_enqueued(state())) {
      if (!next_frame(frame, Clock::now(), context)) break;
      dispatch(frame, context);
    }
    amqp_maybe_release_buffers(state());
  }

  void poll(const std::string& context) {
    ensure_open(context);
    amqp_frame_t frame;
    for (int i = 0; i < kMaxFramesPerPoll; ++i) {
      if (!next_frame(frame, Clock::now(), context)) break;
      dispatch(frame, context);
      amqp_maybe_release_buffers(state());
    }
    amqp_maybe_release_buffers(state());
  }

  // ---- Confirms ----

  struct Pending {
    bool returned = false;
    std::uint16_t reply_code = 0;
    std::string reply_text;
  };

  void settle(std::uint64_t delivery_tag, bool multiple, ConfirmStatus status) {
    if (!confirms_) return;
    const std::uint64_t sequence = seq_base_ + delivery_tag;
    const auto settle_one = [&](std::map<std::uint64_t, Pending>::iterator it) {
      ConfirmOutcome outcome;
      outcome.sequence = it->first;
      outcome.status = status;
      // The broker acks a returned message too: the return decides.
      if (status == ConfirmStatus::kAcked && it->second.returned) {
        outcome.status = ConfirmStatus::kReturned;
        outcome.reply_code = it->second.reply_code;
        outcome.reply_text = std::move(it->second.reply_text);
      }
      settled_.push_back(std::move(outcome));
      return unsettled_.erase(it);
    };
    if (multiple) {
      auto it = unsettled_.begin();
      while (it != unsettled_.end() && it->first <= sequence) it = settle_one(it);
    } else if (auto it = unsettled_.find(sequence); it != unsettled_.end()) {
      settle_one(it);
    }
    // Otherwise a late answer for a publish already reported kTimedOut: nothing to do.
  }

  void on_return(const FieldTable& headers, std::uint16_t code, std::string text) {
    // Without the sequence header (confirms off, or not mandatory) there is no publish to blame;
    // an unconfirmed publisher has chosen not to know, so the return is dropped.
    const std::optional<std::int64_t> sequence = headers.get_int(kPublishSequenceHeader);
    if (!sequence) return;
    auto it = unsettled_.find(static_cast<std::uint64_t>(*sequence));
    if (it == unsettled_.end()) return;
    it->second.returned = true;
    it->second.reply_code = code;
    it->second.reply_text = std::move(text);
  }

  void fail_unsettled(ConfirmStatus status, std::uint16_t code, const std::string& text) {
    for (auto& [sequence, pending] : unsettled_) {
      ConfirmOutcome outcome;
      outcome.sequence = sequence;
      outcome.status = status;
      outcome.reply_code = code;
      outcome.reply_text = text;
      settled_.push_back(std::move(outcome));
    }
    unsettled_.clear();
  }

  ConfirmBatch take_settled() {
    ConfirmBatch batch;
    batch.outcomes = std::move(settled_);
    settled_.clear();
    std::sort(
        batch.outcomes.begin(), batch.outcomes.end(),
        [](const ConfirmOutcome& a, const ConfirmOutcome& b) { return a.sequence < b.sequence; });
    return batch;
  }

  void forget_consumer(const std::string& tag, bool cancelled_by_broker) {
    auto it = std::find(consumers_.begin(), consumers_.end(), tag);
    if (it != consumers_.end()) consumers_.erase(it);
    if (cancelled_by_broker) cancelled_.push_back(tag);
  }

  // ---- State ----
  // Declared in the order they matter for destruction: state_ last to go.
  StatePtr state_;
  std::string display_;
  bool open_ = true;
  bool blocked_ = false;
  bool reopening_ = false;
  milliseconds rpc_timeout_ = kDefaultRpcTimeout;

  bool confirms_ = false;
  // Public sequence number = seq_base_ + the broker's delivery tag on the current channel; the
  // base moves on when the channel is reopened so numbers stay unique for the connection.
  std::uint64_t seq_base_ = 0;
  std::uint64_t channel_seq_ = 0;
  std::map<std::uint64_t, Pending> unsettled_;
  std::vector<ConfirmOutcome> settled_;
  std::uint64_t publishes_since_read_ = 0;

  std::optional<std::uint16_t> prefetch_;
  std::vector<std::string> consumers_;
  std::vector<std::string> cancelled_;
  std::deque<Delivery> pending_deliveries_;
};

// ---- AmqpConnection ---------------------------------------------------------------------------

AmqpConnection::AmqpConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AmqpConnection::AmqpConnection(AmqpConnection&&) noexcept = default;
AmqpConnection& AmqpConnection::operator=(AmqpConnection&&) noexcept = default;
AmqpConnection::~AmqpConnection() = default;

AmqpConnection::Impl& AmqpConnection::impl() const {
  if (!impl_) throw AmqpError("AMQP connection used after being moved from", true);
  return *impl_;
}

AmqpConnection AmqpConnection::open(const std::string& url, const std::string& connection_name,
                                    int heartbeat_seconds) {
  const ParsedUrl parsed = parse_url(url);
  const std::string display = parsed.display();
  const int heartbeat = parsed.heartbeat.value_or(heartbeat_seconds);
  if (heartbeat < 0 || heartbeat > 65535) {
    throw AmqpError("AMQP heartbeat must be 0..65535 seconds, got " + std::to_string(heartbeat),
                    false);
  }

  StatePtr state(amqp_new_connection());
  if (!state) throw std::bad_alloc();
  // The socket belongs to the state from here on (amqp_destroy_connection frees it).
  amqp_socket_t* socket =
      parsed.ssl ? amqp_ssl_socket_new(state.get()) : amqp_tcp_socket_new(state.get());
  if (socket == nullptr) throw AmqpError("cannot create a socket for " + display, true);
  if (parsed.ssl) configure_tls(socket, parsed);

  timeval connect_timeout = to_timeval(parsed.connect_timeout);
  tls_verify_error.clear();
  ERR_clear_error();
  if (int status =
          amqp_socket_open_noblock(socket, parsed.host.c_str(), parsed.port, &connect_timeout);
      status != AMQP_STATUS_OK) {
    std::string why = amqp_error_string2(status);
    // rabbitmq-c keeps the connect() error to itself (errno is just EINPROGRESS by then).
    if (status == AMQP_STATUS_SOCKET_ERROR) why += " (connection refused or host unreachable)";
    if (status == AMQP_STATUS_TIMEOUT) {
      why += " after " + std::to_string(parsed.connect_timeout.count()) + " ms";
    }
    if (status == AMQP_STATUS_SSL_PEER_VERIFY_FAILED) {
      // The broker's certificate is not trusted (or not for this host): say which check failed
      // and against which CAs, and never retry in plaintext.
      why = "TLS certificate verification failed: " +
            (tls_verify_error.empty() ? std::string("no certificate") : tls_verify_error) +
            " (trusting " +
            (parsed.cacertfile.empty() ? std::string("the system's CA certificates")
                                       : "cacertfile " + in_quotes(parsed.cacertfile)) +
            ")";
    } else if (status == AMQP_STATUS_SSL_CONNECTION_FAILED || status == AMQP_STATUS_SSL_ERROR) {
      // OpenSSL's reason, e.g. "wrong version number" for an amqps:// URL on a plain port.
      if (const unsigned long error = ERR_peek_last_error(); error != 0) {
        const char* reason = ERR_reason_error_string(error);
        if (reason != nullptr) why += std::string(": ") + reason;
      }
    }
    ERR_clear_error();
    throw AmqpError("cannot connect to " + display + ": " + why, true);
  }

  amqp_set_handshake_timeout(state.get(), &connect_timeout);
  const FieldTable properties{
      {"connection_name", connection_name},
      // Merged by rabbitmq-c with its own capabilities (authentication_failure_close, which
      // makes a wrong password a clear 403 instead of a dropped socket, among them).
      {"capabilities", FieldTable{{"consumer_cancel_notify", true}, {"connection.blocked", true}}},
  };
  const EncodedTable encoded(properties);
  const amqp_rpc_reply_t login = amqp_login_with_properties(
      state.get(), parsed.vhost.c_str(), AMQP_DEFAULT_MAX_CHANNELS, AMQP_DEFAULT_FRAME_SIZE,
      heartbeat, &encoded.get(), AMQP_SASL_METHOD_PLAIN, parsed.user.c_str(),
      parsed.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    std::uint16_t code = 0;
    const std::string why = describe_login_failure(login, &code);
    throw AmqpError("AMQP login to " + display + " failed: " + why, true, code);
  }

  auto impl = std::make_unique<Impl>(std::move(state), display);
  impl->set_rpc_timeout(kDefaultRpcTimeout);
  impl->open_channel();
  return AmqpConnection(std::move(impl));
}

bool AmqpConnection::is_open() const {
  return impl_ && impl_->is_open();
}
void AmqpConnection::close() noexcept {
  if (impl_) impl_->close();
}
bool AmqpConnection::blocked() const {
  return impl().blocked();
}
void AmqpConnection::set_rpc_timeout(std::chrono::milliseconds timeout) {
  impl().set_rpc_timeout(timeout);
}

// ---- Topology ----

void AmqpConnection::declare_exchange(const std::string& name, const std::string& type,
                                      bool durable) {
  Impl& c = impl();
  const std::string context = "exchange.declare " + in_quotes(name);
  c.ensure_open(context);
  c.drain_queued(context);
  c.rpc_result(amqp_exchange_declare(c.state(), kChannel, bytes_of(name), bytes_of(type), 0,
                                     durable ? 1 : 0, 0, 0, amqp_empty_table),
               context);
  amqp_maybe_release_buffers(c.state());
}

QueueCounts AmqpConnection::declare_queue(const std::string& name, const FieldTable& arguments,
                                          bool durable) {
  Impl& c = impl();
  const std::string context = "queue.declare " + in_quotes(name);
  c.ensure_open(context);
  c.drain_queued(context);
  const EncodedTable args(arguments);
  const auto* ok = c.rpc_result(
      amqp_queue_declare(c.state(), kChannel, bytes_of(name), 0, durable ? 1 : 0, 0, 0, args.get()),
      context);
  const QueueCounts counts{ok->message_count, ok->consumer_count};
  amqp_maybe_release_buffers(c.state());
  return counts;
}

void AmqpConnection::bind_queue(const std::string& queue, const std::string& exchange,
                                const std::string& routing_key, const FieldTable& arguments) {
  Impl& c = impl();
  const std::string context = "queue.bind " + in_quotes(queue) + " to " + in_quotes(exchange) +
                              " key " + in_quotes(routing_key);
  c.ensure_open(context);
  c.drain_queued(context);
  const EncodedTable args(arguments);
  c.rpc_result(amqp_queue_bind(c.state(), kChannel, bytes_of(queue), bytes_of(exchange),
                               bytes_of(routing_key), args.get()),
               context);
  amqp_maybe_release_buffers(c.state());
}

void AmqpConnection::bind_exchange(const std::string& destination, const std::string& source,
                                   const std::string& routing_key, const FieldTable& arguments) {
  Impl& c = impl();
  const std::string context = "exchange.bind " + in_quotes(destination) + " to " +
                              in_quotes(source) + " key " + in_quotes(routing_key);
  c.ensure_open(context);
  c.drain_queued(context);
  const EncodedTable args(arguments);
  c.rpc_result(amqp_exchange_bind(c.state(), kChannel, bytes_of(destination), bytes_of(source),
                                  bytes_of(routing_key), args.get()),
               context);
  amqp_maybe_release_buffers(c.state());
}

std::uint32_t AmqpConnection::queue_purge(const std::string& queue) {
  Impl& c = impl();
  const std::string context = "queue.purge " + in_quotes(queue);
  c.ensure_open(context);
  c.drain_queued(context);
  const auto* ok = c.rpc_result(amqp_queue_purge(c.state(), kChannel, bytes_of(queue)), context);
  const std::uint32_t count = ok->message_count;
  amqp_maybe_release_buffers(c.state());
  return count;
}

std::uint32_t AmqpConnection::delete_queue(const std::string& queue, bool if_unused,
                                           bool if_empty) {
  Impl& c = impl();
  const std::string context = "queue.delete " + in_quotes(queue);
  c.ensure_open(context);
  c.drain_queued(context);
  const auto* ok = c.rpc_result(
      amqp_queue_delete(c.state(), kChannel, bytes_of(queue), if_unused ? 1 : 0, if_empty ? 1 : 0),
      context);
  const std::uint32_t count = ok->message_count;
  amqp_maybe_release_buffers(c.state());
  return count;
}

void AmqpConnection::delete_exchange(const std::string& name, bool if_unused) {
  Impl& c = impl();
  const std::string context = "exchange.delete " + in_quotes(name);
  c.ensure_open(context);
  c.drain_queued(context);
  c.rpc_result(amqp_exchange_delete(c.state(), kChannel, bytes_of(name), if_unused ? 1 : 0),
               context);
  amqp_maybe_release_buffers(c.state());
}

bool AmqpConnection::check_exchange(const std::string& name) {
  Impl& c = impl();
  const std::string context = "exchange.declare (passive) " + in_quotes(name);
  c.ensure_open(context);
  c.drain_queued(context);
  if (amqp_exchange_declare(c.state(), kChannel, bytes_of(name), amqp_empty_bytes, 1, 0, 0, 0,
                            amqp_empty_table) != nullptr) {
    amqp_maybe_release_buffers(c.state());
    return true;
  }
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(c.state());
  if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
      reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
    if (close->reply_code == AMQP_NOT_FOUND) {
      c.recover_channel(close->reply_code, to_std_string(close->reply_text));
      return false;
    }
  }
  c.check_reply(reply, context);
  c.lost(context + ": empty reply");
}

std::optional<QueueCounts> AmqpConnection::inspect_queue(const std::string& name) {
  Impl& c = impl();
  const std::string context = "queue.declare (passive) " + in_quotes(name);
  c.ensure_open(context);
  c.drain_queued(context);
  if (const auto* ok =
          amqp_queue_declare(c.state(), kChannel, bytes_of(name), 1, 0, 0, 0, amqp_empty_table)) {
    const QueueCounts counts{ok->message_count, ok->consumer_count};
    amqp_maybe_release_buffers(c.state());
    return counts;
  }
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(c.state());
  if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
      reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const auto* close = static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
    if (close->reply_code == AMQP_NOT_FOUND) {
      c.recover_channel(close->reply_code, to_std_string(close->reply_text));
      return std::nullopt;
    }
  }
  c.check_reply(reply, context);
  c.lost(context + ": empty reply");
}

bool AmqpConnection::check_queue(const std::string& name) {
  return inspect_queue(name).has_value();
}

// ---- Publishing ----

void AmqpConnection::enable_confirms() {
  Impl& c = impl();
  if (c.confirms_) return;
  const std::string context = "confirm.select";
  c.ensure_open(context);
  c.drain_queued(context);
  c.rpc_result(amqp_confirm_select(c.state(), kChannel), context);
  c.confirms_ = true;
  c.channel_seq_ = 0;
  amqp_maybe_release_buffers(c.state());
}

bool AmqpConnection::confirms_enabled() const {
  return impl().confirms_;
}

std::uint64_t AmqpConnection::publish(const OutgoingMessage& message) {
  Impl& c = impl();
  const std::string context = "basic.publish to " + in_quotes(message.exchange);
  c.ensure_open(context);

  const std::uint64_t sequence = c.confirms_ ? c.seq_base_ + c.channel_seq_ + 1 : 0;
  const FieldTable* headers = &message.headers;
  FieldTable with_sequence;
  if (c.confirms_ && message.mandatory) {
    with_sequence = message.headers;
    with_sequence.set(kPublishSequenceHeader, static_cast<std::int64_t>(sequence));
    headers = &with_sequence;
  }

  amqp_basic_properties_t properties;
  std::memset(&properties, 0, sizeof(properties));
  if (!message.content_type.empty()) {
    properties._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    properties.content_type = bytes_of(message.content_type);
  }
  if (message.delivery_mode != 0) {
    properties._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
    properties.delivery_mode = message.delivery_mode;
  }
  if (!message.message_id.empty()) {
    properties._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    properties.message_id = bytes_of(message.message_id);
  }
  if (!message.type.empty()) {
    properties._flags |= AMQP_BASIC_TYPE_FLAG;
    properties.type = bytes_of(message.type);
  }
  if (!message.app_id.empty()) {
    properties._flags |= AMQP_BASIC_APP_ID_FLAG;
    properties.app_id = bytes_of(message.app_id);
  }
  if (message.timestamp != 0) {
    properties._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
    properties.timestamp = static_cast<std::uint64_t>(message.timestamp);
  }
  std::optional<EncodedTable> encoded;
  if (!headers->empty()) {
    encoded.emplace(*headers);
    properties._flags |= AMQP_BASIC_HEADERS_FLAG;
    properties.headers = encoded->get();
  }

  // Any failure is treated as fatal, even "table too big": rabbitmq-c may already have written
  // the method frame, and a method without its content breaks the stream.
  if (int status = amqp_basic_publish(c.state(), kChannel, bytes_of(message.exchange),
                                      bytes_of(message.routing_key), message.mandatory ? 1 : 0, 0,
                                      &properties, bytes_of(message.body));
      status != AMQP_STATUS_OK) {
    c.lost(context + ": " + amqp_error_string2(status));
  }
  if (c.confirms_) {
    ++c.channel_seq_;
    c.unsettled_.emplace(sequence, Impl::Pending{});
  }
  if (++c.publishes_since_read_ >= kPublishesBetweenReads) {
    c.publishes_since_read_ = 0;
    c.poll(context);
  }
  return sequence;
}

ConfirmBatch AmqpConnection::wait_for_confirms(std::chrono::milliseconds timeout) {
  Impl& c = impl();
  const std::string context = "wait for publisher confirms";
  c.ensure_open(context);
  if (!c.confirms_) {
    throw AmqpError("AMQP wait_for_confirms() called without enable_confirms()", false);
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  amqp_frame_t frame;
  while (!c.unsettled_.empty()) {
    if (!c.next_frame(frame, deadline, context)) break;
    c.dispatch(frame, context);
    amqp_maybe_release_buffers(c.state());
  }
  c.fail_unsettled(ConfirmStatus::kTimedOut, 0, "");
  return c.take_settled();
}

ConfirmBatch AmqpConnection::take_settled() {
  return impl().take_settled();
}

std::size_t AmqpConnection::unconfirmed_count() const {
  return impl().unsettled_.size();
}

// ---- Consuming ----

void AmqpConnection::basic_qos(std::uint16_t prefetch_count) {
  Impl& c = impl();
  const std::string context = "basic.qos";
  c.ensure_open(context);
  c.drain_queued(context);
  c.rpc_result(amqp_basic_qos(c.state(), kChannel, 0, prefetch_count, 0), context);
  c.prefetch_ = prefetch_count;
  amqp_maybe_release_buffers(c.state());
}

std::string AmqpConnection::basic_consume(const std::string& queue, const std::string& consumer_tag,
                                          const FieldTable& arguments) {
  Impl& c = impl();
  const std::string context = "basic.consume " + in_quotes(queue);
  c.ensure_open(context);
  c.drain_queued(context);
  const EncodedTable args(arguments);
  const auto* ok = c.rpc_result(
      amqp_basic_consume(c.state(), kChannel, bytes_of(queue),
                         consumer_tag.empty() ? amqp_empty_bytes : bytes_of(consumer_tag), 0, 0, 0,
                         args.get()),
      context);
  std::string tag = to_std_string(ok->consumer_tag);
  amqp_maybe_release_buffers(c.state());
  c.consumers_.push_back(tag);
  return tag;
}

void AmqpConnection::basic_cancel(const std::string& consumer_tag) {
  Impl& c = impl();
  const std::string context = "basic.cancel " + in_quotes(consumer_tag);
  c.ensure_open(context);
  c.drain_queued(context);
  c.rpc_result(amqp_basic_cancel(c.state(), kChannel, bytes_of(consumer_tag)), context);
  amqp_maybe_release_buffers(c.state());
  c.forget_consumer(consumer_tag, /*cancelled_by_broker=*/false);
}

std::vector<std::string> AmqpConnection::take_cancelled_consumers() {
  Impl& c = impl();
  std::vector<std::string> cancelled = std::move(c.cancelled_);
  c.cancelled_.clear();
  return cancelled;
}

std::optional<Delivery> AmqpConnection::basic_get(const std::string& queue, bool no_ack) {
  Impl& c = impl();
  const std::string context = "basic.get " + in_quotes(queue);
  c.ensure_open(context);
  c.drain_queued(context);

  amqp_basic_get_t request{};
  request.queue = bytes_of(queue);
  request.no_ack = no_ack ? 1 : 0;
  if (int status = amqp_send_method(c.state(), kChannel, AMQP_BASIC_GET_METHOD, &request);
      status != AMQP_STATUS_OK) {
    c.fail_status(status, context);
  }
  const Clock::time_point deadline = Clock::now() + c.rpc_timeout_;
  amqp_frame_t frame;
  for (;;) {
    if (!c.next_frame(frame, deadline, context)) c.lost(context + ": no reply in time");
    if (frame.frame_type == AMQP_FRAME_METHOD && frame.channel == kChannel) {
      if (frame.payload.method.id == AMQP_BASIC_GET_OK_METHOD) {
        const auto* ok = static_cast<const amqp_basic_get_ok_t*>(frame.payload.method.decoded);
        Delivery delivery;
        delivery.delivery_tag = ok->delivery_tag;
        delivery.redelivered = ok->redelivered != 0;
        delivery.exchange = to_std_string(ok->exchange);
        delivery.routing_key = to_std_string(ok->routing_key);
        delivery.message_count = ok->message_count;
        c.read_content(delivery, context);
        amqp_maybe_release_buffers(c.state());
        return delivery;
      }
      if (frame.payload.method.id == AMQP_BASIC_GET_EMPTY_METHOD) {
        amqp_maybe_release_buffers(c.state());
        return std::nullopt;
      }
    }
    // An ack, a delivery for a consumer, a close...: handled as if we were not waiting.
    c.dispatch(frame, context);
  }
}

std::optional<Delivery> AmqpConnection::consume_one(std::chrono::milliseconds timeout) {
  Impl& c = impl();
  const std::string context = "consume";
  c.ensure_open(context);
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    if (!c.pending_deliveries_.empty()) {
      Delivery delivery = std::move(c.pending_deliveries_.front());
      c.pending_deliveries_.pop_front();
      return delivery;
    }
    amqp_maybe_release_buffers(c.state());
    timeval tv = until(deadline);
    amqp_envelope_t envelope;
    const amqp_rpc_reply_t reply = amqp_consume_message(c.state(), &envelope, &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      Delivery delivery;
      delivery.consumer_tag = to_std_string(envelope.consumer_tag);
      delivery.delivery_tag = envelope.delivery_tag;
      delivery.redelivered = envelope.redelivered != 0;
      delivery.exchange = to_std_string(envelope.exchange);
      delivery.routing_key = to_std_string(envelope.routing_key);
      delivery.body = to_std_string(envelope.message.body);
      copy_properties(envelope.message.properties, delivery);
      amqp_destroy_envelope(&envelope);
      amqp_maybe_release_buffers(c.state());
      return delivery;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT) {
      return std::nullopt;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      // Something other than a delivery, put back by the library: read it and deal with it
      // (a confirm, a return, a cancel, a close), then look for deliveries again.
      amqp_frame_t frame;
      if (c.next_frame(frame, Clock::now(), context)) c.dispatch(frame, context);
      continue;
    }
    c.check_reply(reply, context);
    c.lost(context + ": unexpected reply");
  }
}

void AmqpConnection::ack(std::uint64_t delivery_tag, bool multiple) {
  Impl& c = impl();
  c.ensure_open("basic.ack");
  // Asynchronous in AMQP: an unknown tag comes back later as a channel close (406).
  if (int status = amqp_basic_ack(c.state(), kChannel, delivery_tag, multiple ? 1 : 0);
      status != AMQP_STATUS_OK) {
    c.fail_status(status, "basic.ack");
  }
}

void AmqpConnection::nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  Impl& c = impl();
  c.ensure_open("basic.nack");
  if (int status =
          amqp_basic_nack(c.state(), kChannel, delivery_tag, multiple ? 1 : 0, requeue ? 1 : 0);
      status != AMQP_STATUS_OK) {
    c.fail_status(status, "basic.nack");
  }
}

void AmqpConnection::reject(std::uint64_t delivery_tag, bool requeue) {
  Impl& c = impl();
  c.ensure_open("basic.reject");
  if (int status = amqp_basic_reject(c.state(), kChannel, delivery_tag, requeue ? 1 : 0);
      status != AMQP_STATUS_OK) {
    c.fail_status(status, "basic.reject");
  }
}

// ---- Event loop ----

void AmqpConnection::poll() {
  impl().poll("poll");
}

int AmqpConnection::socket_fd() const {
  return amqp_get_sockfd(impl().state());
}

bool AmqpConnection::has_buffered_data() const {
  const Impl& c = impl();
  return !c.pending_deliveries_.empty() || amqp_frames_enqueued(c.state()) ||
         amqp_data_in_buffer(c.state());
}

}  // namespace warren::amqp

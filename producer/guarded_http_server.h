// httplib::Server with the limits cpp-httplib 0.11 lacks while a request is still arriving.
//
// httplib gives each connection a pool thread and reads requests through a stream whose only
// limit is a per-read timeout, which found (issue 5, tests/integration/abuse_test.cpp):
//  - a client sending its head one byte every few seconds never trips the read timeout and keeps
//    its pool thread for as long as it likes: WARREN_HTTP_THREADS such clients (slowloris) stop
//    the API for everyone, indefinitely;
//  - a request line or header line is kept in memory until its newline, however long (64 MB
//    without a newline: 64+ MB of RSS), and the number of header lines has no limit at all;
//  - an answer with `Connection: close` (an early refusal, its body left unread) does not close
//    the connection: the unread body is then parsed as the next request, which both smuggles
//    requests past a proxy and reads the body the refusal meant to leave alone.
//
// This server reads every request through a stream that enforces RequestLimits: the request
// line and headers must arrive within `head_timeout` of the request's first byte and fit in
// `max_head_bytes` and `max_header_lines`; the whole request, body included, must arrive within
// `request_timeout`. A client breaking one is answered 408 (too slow), 414 (request line too
// long) or 431 (headers too large) as problem+json, and disconnected. Answers with
// `Connection: close`, and answers to requests httplib could not parse, close the connection. (Uses
// httplib's post-routing handler: do not set another one.)
//
// The limit that remains: a connection holds a pool thread while its request arrives, so
// WARREN_HTTP_THREADS clients that are slow on purpose still delay everyone else, by up to
// head_timeout (10 s) each time they connect. Behind a buffering reverse proxy (nginx, an
// ingress controller) that cannot happen; facing untrusted clients directly, size the pool well
// above the expected concurrent connections.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>

namespace warren {

struct RequestLimits {
  std::chrono::milliseconds head_timeout{10000};     // request line and headers, from byte one
  std::chrono::milliseconds request_timeout{60000};  // the whole request, body included
  std::size_t max_head_bytes = 64 * 1024;            // request line and headers together
  std::size_t max_header_lines = 100;                // as Apache's LimitRequestFields
};

class GuardedHttpServer : public httplib::Server {
 public:
  explicit GuardedHttpServer(RequestLimits limits);

 private:
  // httplib's connection loop (keep-alive, one request after another), with the guarded stream.
  bool process_and_close_socket(socket_t sock) override;

  RequestLimits limits_;
};

}  // namespace warren

// See guarded_http_server.h.
#include "producer/guarded_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "shared/logging.h"
#include "shared/problem.h"
#include "shared/uuid.h"

namespace warren {
namespace {

using Clock = std::chrono::steady_clock;

// Set by the post-routing hook when the answer being written says `Connection: close`; read by
// the connection loop on the same thread once the request is done.
thread_local bool close_after_answer = false;

int poll_socket(socket_t sock, short events, Clock::duration timeout) {
  const auto ms =
      std::max<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(timeout).count(), 0);
  pollfd p{sock, events, 0};
  int ready;
  do {
    ready = ::poll(&p, 1, static_cast<int>(ms));
  } while (ready < 0 && errno == EINTR);
  return ready;
}

void socket_address(socket_t sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  auto* generic = reinterpret_cast<sockaddr*>(&address);
  if ((peer ? ::getpeername(sock, generic, &length) : ::getsockname(sock, generic, &length)) != 0) {
    return;
  }
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    port = ntohs(in->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    port = ntohs(in6->sin6_port);
  }
  ip = text;
}

// httplib's SocketStream (buffered reads, timed writes) plus the limits of RequestLimits. One
// stream serves every request of a connection, so bytes a client sent ahead (pipelining) stay
// buffered for the next request instead of being dropped with a per-request stream.
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(socket_t sock, const RequestLimits& limits, Clock::duration read_timeout,
                Clock::duration write_timeout)
      : sock_(sock), limits_(limits), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

  // Waits for the first byte of the next request (or the client's close): false when the
  // connection stayed idle for `idle` or the server is stopping.
  bool wait_for_request(Clock::duration idle, const std::atomic<socket_t>& server_socket) {
    if (offset_ < filled_) return true;
    const auto deadline = Clock::now() + idle;
    while (server_socket != INVALID_SOCKET) {
      const auto now = Clock::now();
      if (now >= deadline) return false;
      const int ready =
          poll_socket(sock_, POLLIN, std::min<Clock::duration>(deadline - now, kStopCheck));
      if (ready != 0) return ready > 0;
    }
    return false;
  }

  // The clocks and counters of a new request.
  void begin_request() {
    const auto now = Clock::now();
    head_deadline_ = now + limits_.head_timeout;
    request_deadline_ = now + limits_.request_timeout;
    in_head_ = true;
    head_bytes_ = head_lines_ = 0;
    line_start_ = blank_cr_ = false;
  }

  // The stream answered the request itself (408/414/431) and the connection must end.
  bool refused() const { return refused_; }

  bool is_readable() const override {
    return offset_ < filled_ || poll_socket(sock_, POLLIN, read_timeout_) > 0;
  }

  bool is_writable() const override {
    return !refused_ && poll_socket(sock_, POLLOUT, write_timeout_) > 0;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (refused_) return -1;
    if (offset_ == filled_) {
      const auto deadline = in_head_ ? head_deadline_ : request_deadline_;
      const auto now = Clock::now();
      if (now >= deadline) return time_out();
      const int ready =
          poll_socket(sock_, POLLIN, std::min<Clock::duration>(deadline - now, read_timeout_));
      if (ready < 0) return -1;
      if (ready == 0) return Clock::now() >= deadline ? time_out() : -1;  // the read timeout
      ssize_t n;
      do {
        n = ::recv(sock_, buffer_.data(), buffer_.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      offset_ = 0;
      filled_ = static_cast<std::size_t>(n);
    }
    std::size_t count = std::min(size, filled_ - offset_);
    if (in_head_ && !follow_head(buffer_.data() + offset_, count)) {
      return refuse(head_lines_ == 0 ? 414 : 431,
                    head_lines_ == 0 ? "the request line is longer than " +
                                           std::to_string(limits_.max_head_bytes) + " bytes"
                                     : "the request headers are larger than " +
                                           std::to_string(limits_.max_head_bytes) + " bytes or " +
                                           std::to_string(limits_.max_header_lines) + " lines");
    }
    std::memcpy(ptr, buffer_.data() + offset_, count);
    offset_ += count;
    return static_cast<ssize_t>(count);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (refused_ || poll_socket(sock_, POLLOUT, write_timeout_) <= 0) return -1;
    ssize_t n;
    do {
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    socket_address(sock_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    socket_address(sock_, false, ip, port);
  }
  socket_t socket() const override { return sock_; }

 private:
  static constexpr Clock::duration kStopCheck = std::chrono::milliseconds(50);

  // Follows the head byte by byte as httplib consumes it: `count` is cut at the empty line that
  // ends it (what follows is body); false when a limit is passed.
  bool follow_head(const char* data, std::size_t& count) {
    for (std::size_t i = 0; i < count; ++i) {
      if (++head_bytes_ > limits_.max_head_bytes) return false;
      const char c = data[i];
      if (c == '\n') {
        if (blank_cr_) {
          in_head_ = false;
          count = i + 1;
          return true;
        }
        if (++head_lines_ > limits_.max_header_lines + 1) return false;  // + the request line
        line_start_ = true;
      } else if (c == '\r' && line_start_) {
        blank_cr_ = true;
        line_start_ = false;
      } else {
        line_start_ = blank_cr_ = false;
      }
    }
    return true;
  }

  ssize_t time_out() {
    return refuse(408, in_head_
                           ? "the request headers did not arrive within " +
                                 std::to_string(limits_.head_timeout.count() / 1000) + " s"
                           : "the request did not arrive within " +
                                 std::to_string(limits_.request_timeout.count() / 1000) + " s");
  }

  // Answers the request here (httplib has not read enough of it to answer) and ends the
  // connection: every later read and write fails. Best effort: never waits on the client.
  ssize_t refuse(int status, const std::string& detail) {
    refused_ = true;
    Problem problem;
    problem.status = status;
    const char* reason = "Request Timeout";
    if (status == 408) {
      problem.slug = "request-timeout";
      problem.title = "Request timeout";
    } else if (status == 414) {
      problem.slug = "uri-too-long";
      problem.title = "Request URI too long";
      reason = "URI Too Long";
    } else {
      problem.slug = "headers-too-large";
      problem.title = "Request headers too large";
      reason = "Request Header Fields Too Large";
    }
    problem.detail = detail;
    const std::string request_id = new_uuid_v7();
    const std::string body = problem.to_json().dump();
    const std::string answer = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                               "\r\nContent-Type: application/problem+json\r\nContent-Length: " +
                               std::to_string(body.size()) +
                               "\r\nConnection: close\r\nX-Request-Id: " + request_id + "\r\n\r\n" +
                               body;
    (void)::send(sock_, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    std::string ip;
    int port = 0;
    get_remote_ip_and_port(ip, port);
    log::info("request refused before it arrived",
              {{"request_id", request_id}, {"status", status}, {"detail", detail}, {"remote", ip}});
    return -1;
  }

  socket_t sock_;
  const RequestLimits& limits_;
  Clock::duration read_timeout_, write_timeout_;
  std::array<char, 4096> buffer_{};
  std::size_t offset_ = 0, filled_ = 0;
  Clock::time_point head_deadline_{}, request_deadline_{};
  bool in_head_ = true;
  std::size_t head_bytes_ = 0, head_lines_ = 0;
  bool line_start_ = false, blank_cr_ = false;  // where the empty line ending the head may be
  bool refused_ = false;
};

}  // namespace

GuardedHttpServer::GuardedHttpServer(RequestLimits limits) : limits_(limits) {
  // A handler that answers before reading the body (api_router.cpp) says `Connection: close`;
  // httplib 0.11 writes the header but keeps reading the connection, the unread body included.
  set_post_routing_handler([](const httplib::Request&, httplib::Response& response) {
    if (response.get_header_value("Connection") == "close") close_after_answer = true;
  });
}

bool GuardedHttpServer::process_and_close_socket(socket_t sock) {
  using std::chrono::microseconds;
  using std::chrono::seconds;
  GuardedStream stream(sock, limits_, seconds(read_timeout_sec_) + microseconds(read_timeout_usec_),
                       seconds(write_timeout_sec_) + microseconds(write_timeout_usec_));
  bool ret = false;
  for (auto left = keep_alive_max_count_; left > 0; --left) {
    if (!stream.wait_for_request(seconds(keep_alive_timeout_sec_), svr_sock_)) break;
    stream.begin_request();
    close_after_answer = false;
    bool connection_closed = false;
    // httplib calls this only for a request it could parse. One it could not (400 on a broken
    // request line or header, 414 on a request line over 8 KiB) leaves the connection at an
    // unknown point of the client's bytes: answering the rest as further requests would send
    // one client several answers (or answer bytes smuggled inside a header), so it closes.
    bool parsed = false;
    ret = process_request(stream, left == 1, connection_closed,
                          [&parsed](httplib::Request&) { parsed = true; });
    if (!ret || !parsed || connection_closed || close_after_answer || stream.refused()) break;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace warren

// See producer_app.h.
#include "producer/producer_app.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "producer/api_router.h"
#include "producer/bulk_operation_runner.h"
#include "producer/dead_letters_api.h"
#include "producer/guarded_http_server.h"
#include "producer/health_api.h"
#include "producer/jobs_api.h"
#include "producer/operations_api.h"
#include "producer/outbox_relay.h"
#include "producer/retention_cleaner.h"
#include "producer/submit_batcher.h"
#include "producer/workers_api.h"
#include "shared/db/connection_pool.h"
#include "shared/db/migrator.h"
#include "shared/logging.h"
#include "shared/metrics/metrics_registry.h"

namespace warren {
namespace {

constexpr int kListenBacklog = 1024;
constexpr int kReadTimeoutSeconds = 10;

std::pair<std::string, int> split_addr(const std::string& addr) {
  auto colon = addr.rfind(':');
  return {addr.substr(0, colon), std::stoi(addr.substr(colon + 1))};
}

}  // namespace

int run_producer(const Config& config) {
  // Signals are taken by one thread with sigwait; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  db::wait_for_schema(config.database_url, config.startup_wait, config.auto_migrate,
                      "this producer", "WARREN_AUTO_MIGRATE=0: run `warrenctl migrate`");
  auto auth = ApiAuthenticator::from_file(config.api_tokens_file);
  if (auth.open()) {
    log::warn(
        "no API tokens configured (WARREN_API_TOKENS_FILE): the API is open to anyone who "
        "can reach it");
  }

  metrics::MetricsRegistry registry;
  metrics::add_process_metrics(registry);
  ProducerMetrics metrics(registry);
  db::ConnectionPool pool(config.database_url, config.database_pool_size);

  OutboxRelay relay(config, metrics);
  SubmitBatcher batcher({config.database_url, 2, config.submit_batch_max}, [&] { relay.notify(); });
  batcher.set_batch_observer([&](std::size_t jobs) {
    metrics.submit_batch_jobs.with().observe(static_cast<double>(jobs));
  });
  relay.start();
  RetentionCleaner retention(config, metrics);
  BulkOperationRunner bulk_operations(config, metrics, [&] { relay.notify(); });
  bulk_operations.start();

  ApiRouter router(auth, metrics, config.max_body_bytes);
  JobsApi jobs(config, batcher, pool, metrics);
  jobs.add_routes(router);
  DeadLettersApi dead_letters(config, pool, metrics,
                              {[&] { relay.notify(); }, [&] { bulk_operations.notify(); }});
  dead_letters.add_routes(router);
  add_operation_routes(router, pool);
  add_worker_routes(router, pool);
  add_health_routes(router, pool, relay, registry);

  // httplib::Server plus limits on slow and oversized request heads (guarded_http_server.h): a
  // request's line and headers must arrive within the read timeout of its first byte.
  RequestLimits limits;
  limits.head_timeout = std::chrono::seconds(kReadTimeoutSeconds);
  GuardedHttpServer server(limits);
  // httplib takes ownership of the queue it is given (its API needs a raw pointer here). One
  // thread serves one keep-alive connection for as long as it stays open (RUNNING.md), so the
  // pool is sized for the concurrent clients expected.
  const int threads = config.http_threads;
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  // Debian's httplib is built without TCP_NODELAY; with Nagle on, a response written in two
  // pieces waits for the client's delayed ACK (~40 ms per request). Accepted sockets inherit
  // the option from the listening socket.
  socket_t listen_socket = INVALID_SOCKET;
  server.set_socket_options([&listen_socket](socket_t sock) {
    httplib::default_socket_options(sock);
    int on = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    listen_socket = sock;
  });
  // The limit itself is checked by the router. A body refused from its Content-Length is left
  // unread and the connection closed, which makes the kernel reset it: a client still sending
  // may see the reset and never the 413. Reading up to kBodyReadSlack more lets a body a little
  // too large (the common case: a payload that grew) be read whole and refused with a proper
  // 413; only far larger ones are refused unread (api_router.cpp).
  server.set_payload_max_length(config.max_body_bytes + kBodyReadSlack);
  server.set_keep_alive_max_count(1000);
  server.set_keep_alive_timeout(5);
  server.set_read_timeout(kReadTimeoutSeconds, 0);
  server.set_write_timeout(10, 0);
  router.install(server);

  const auto [host, port] = split_addr(config.http_addr);
  if (!server.bind_to_port(host, port)) {
    log::critical("cannot listen", {{"addr", config.http_addr}});
    return 1;
  }
  // The library listens with a backlog of 5 (a compile-time default of Debian's build): 64
  // clients connecting at once would see dropped SYNs and 1 s retransmits. Linux lets a second
  // listen() raise the backlog of the listening socket.
  if (listen_socket != INVALID_SOCKET) ::listen(listen_socket, kListenBacklog);
  // A SIGTERM can arrive before the server listens (it waits, blocked, since start-up); stop()
  // only acts on a running server, so the waiter repeats it until listening has ended.
  std::atomic<bool> listen_returned{false};
  std::thread signal_waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    if (listen_returned) return;  // woken by main after a failed listen
    log::info("shutting down", {{"signal", received}});
    while (!listen_returned) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  log::info("producer listening", {{"addr", config.http_addr},
                                   {"queues", config.queues},
                                   {"database_url", redact_url(config.database_url)},
                                   {"amqp_url", redact_url(config.amqp_url)}});
  const bool listened = server.listen_after_bind();
  listen_returned = true;
  pthread_kill(signal_waiter.native_handle(), SIGTERM);  // ends a sigwait still waiting
  signal_waiter.join();
  bulk_operations.stop();  // a chunk in progress commits or rolls back; the rest waits in Postgres
  relay.stop();
  log::info("producer stopped");
  return listened ? 0 : 1;
}

}  // namespace warren

// A fixed-size pool of Postgres connections (libpqxx 6.4), shared by the threads of a process.
// Connections are opened lazily and replaced when they break, so a database restart costs the
// requests in flight at that moment a 503, and nothing afterwards.
//
// Policy for errors: a connection-level failure (cannot connect, connection lost) surfaces as
// DatabaseUnavailable, which the HTTP layer answers with 503 + Retry-After and the relay and
// consumer treat as "wait and retry". SQL errors stay pqxx::sql_error: those are bugs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <stdexcept>
#include <string>
#include <vector>

namespace warren::db {

class DatabaseUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Opens one connection; throws DatabaseUnavailable (with the password redacted) on failure.
// Adds connect_timeout=5 when the URL does not set one, so a blackholed host fails fast.
std::unique_ptr<pqxx::connection> connect(const std::string& url);

class ConnectionPool {
 public:
  ConnectionPool(std::string url, int size);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Runs `work` with a connection of the pool, waiting for a free one. A broken connection is
  // dropped (the next user reconnects) and the failure rethrown as DatabaseUnavailable.
  // A pooled connection left broken by a database restart fails on first use; the work is run
  // once more on a fresh one (`work` must be safe to repeat: its transaction did not commit).
  template <typename Work>
  auto with_connection(Work&& work) -> decltype(work(std::declval<pqxx::connection&>())) {
    for (int attempt = 1;; ++attempt) {
      Lease lease(*this);
      try {
        return work(lease.connection());
      } catch (const pqxx::broken_connection& error) {
        lease.discard();
        if (attempt < 2) continue;
        throw DatabaseUnavailable(std::string("database connection lost: ") + error.what());
      }
    }
  }

  // True when a connection could be used right now (SELECT 1). For readiness.
  bool ping();

 private:
  class Lease {
   public:
    explicit Lease(ConnectionPool& pool);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    pqxx::connection& connection();
    void discard() { connection_.reset(); }

   private:
    ConnectionPool& pool_;
    std::unique_ptr<pqxx::connection> connection_;
  };

  std::unique_ptr<pqxx::connection> acquire();
  void release(std::unique_ptr<pqxx::connection> connection);

  const std::string url_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;  // null entries: not yet opened
  int free_slots_;
};

}  // namespace warren::db

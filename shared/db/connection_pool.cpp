// See connection_pool.h.
#include "shared/db/connection_pool.h"

#include "shared/config.h"

namespace warren::db {

std::unique_ptr<pqxx::connection> connect(const std::string& url) {
  // Without these, a database host that stops answering (not refusing) leaves requests hanging
  // for the kernel's TCP timeout (~15 min): fail in seconds instead. A URL that sets one of
  // them keeps its own value.
  std::string with_timeout = url;
  for (const char* option :
       {"connect_timeout=5", "keepalives=1", "keepalives_idle=10", "keepalives_interval=5",
        "keepalives_count=3", "tcp_user_timeout=30000"}) {
    const std::string name = std::string(option).substr(0, std::string(option).find('='));
    if (url.find(name + "=") != std::string::npos) continue;
    with_timeout += (with_timeout.find('?') == std::string::npos ? "?" : "&");
    with_timeout += option;
  }
  try {
    return std::make_unique<pqxx::connection>(with_timeout);
  } catch (const pqxx::broken_connection& error) {
    // libpq's message names host and port but never the password; the URL is redacted anyway.
    throw DatabaseUnavailable("cannot connect to " + redact_url(url) + ": " + error.what());
  }
}

ConnectionPool::ConnectionPool(std::string url, int size)
    : url_(std::move(url)), free_slots_(size) {
  idle_.resize(static_cast<std::size_t>(size));
}

std::unique_ptr<pqxx::connection> ConnectionPool::acquire() {
  std::unique_ptr<pqxx::connection> connection;
  {
    std::unique_lock lock(mutex_);
    available_.wait(lock, [&] { return free_slots_ > 0; });
    --free_slots_;
    connection = std::move(idle_.back());
    idle_.pop_back();
  }
  if (connection && connection->is_open()) return connection;
  try {
    return connect(url_);
  } catch (...) {
    release(nullptr);  // give the slot back, still empty
    throw;
  }
}

void ConnectionPool::release(std::unique_ptr<pqxx::connection> connection) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(connection));
    ++free_slots_;
  }
  available_.notify_one();
}

ConnectionPool::Lease::Lease(ConnectionPool& pool) : pool_(pool), connection_(pool.acquire()) {}

ConnectionPool::Lease::~Lease() {
  pool_.release(std::move(connection_));
}

pqxx::connection& ConnectionPool::Lease::connection() {
  return *connection_;
}

bool ConnectionPool::ping() {
  try {
    return with_connection([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec("SELECT 1");
      return true;
    });
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace warren::db

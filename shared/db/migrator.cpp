// See migrator.h.
#include "shared/db/migrator.h"

#include <stdexcept>
#include <thread>

#include "shared/db/connection_pool.h"
#include "shared/db/migrations.h"
#include "shared/logging.h"

namespace warren::db {
namespace {

// Arbitrary but fixed: every Warren process contends for the same lock ("warren" in ASCII).
constexpr int64_t kMigrationLockKey = 0x77617272656e;

void ensure_version_table(pqxx::connection& connection) {
  pqxx::work tx(connection);
  tx.exec(R"(CREATE TABLE IF NOT EXISTS warren_schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now()))");
  tx.commit();
}

int current_version(pqxx::connection& connection) {
  pqxx::work tx(connection);
  auto row = tx.exec1("SELECT coalesce(max(version), 0) FROM warren_schema_migrations");
  return row[0].as<int>();
}

// Holds the advisory lock for the life of the object; released even when a migration throws.
class MigrationLock {
 public:
  explicit MigrationLock(pqxx::connection& connection) : connection_(connection) {
    pqxx::nontransaction tx(connection_);
    tx.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
  }
  ~MigrationLock() {
    try {
      pqxx::nontransaction tx(connection_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
    } catch (const std::exception&) {
      // The connection is gone, and with it the session lock: nothing left to release.
    }
  }
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

 private:
  pqxx::connection& connection_;
};

}  // namespace

MigrationReport migrate(pqxx::connection& connection) {
  MigrationLock lock(connection);
  ensure_version_table(connection);
  MigrationReport report;
  int version = current_version(connection);
  const auto& all = embedded_migrations();
  const int newest_known = all.empty() ? 0 : all.back().version;
  if (version > newest_known) {
    throw std::runtime_error("database schema is at version " + std::to_string(version) +
                             " but this binary knows only up to " + std::to_string(newest_known) +
                             ": upgrade Warren instead of running an older version");
  }
  for (const auto& migration : all) {
    if (migration.version <= version) continue;
    pqxx::work tx(connection);
    tx.exec(migration.sql);
    tx.exec_params("INSERT INTO warren_schema_migrations (version, name) VALUES ($1, $2)",
                   migration.version, migration.name);
    tx.commit();
    log::info("schema migration applied",
              {{"version", migration.version}, {"name", migration.name}});
    report.applied.push_back(migration.name);
    version = migration.version;
  }
  report.schema_version = version;
  return report;
}

int schema_version(pqxx::connection& connection) {
  pqxx::work tx(connection);
  auto exists = tx.exec1("SELECT to_regclass('warren_schema_migrations') IS NOT NULL");
  if (!exists[0].as<bool>()) return 0;
  return tx.exec1("SELECT coalesce(max(version), 0) FROM warren_schema_migrations")[0].as<int>();
}

int newest_known_version() {
  const auto& all = embedded_migrations();
  return all.empty() ? 0 : all.back().version;
}

std::vector<MigrationStatus> migration_status(pqxx::connection& connection) {
  ensure_version_table(connection);
  pqxx::work tx(connection);
  auto rows = tx.exec(
      "SELECT version, to_char(applied_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM warren_schema_migrations");
  std::vector<MigrationStatus> out;
  for (const auto& migration : embedded_migrations()) {
    MigrationStatus status{migration.version, migration.name, false, ""};
    for (const auto& row : rows) {
      if (row[0].as<int>() == migration.version) {
        status.applied = true;
        status.applied_at = row[1].is_null() ? "" : row[1].as<std::string>();
      }
    }
    out.push_back(status);
  }
  return out;
}

void wait_for_schema(const std::string& url, std::chrono::milliseconds wait, bool auto_migrate,
                     const std::string& who, const std::string& hint) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    std::string waiting_for;
    try {
      auto connection = connect(url);
      if (auto_migrate) {
        const auto report = migrate(*connection);
        log::info("schema is current", {{"schema_version", report.schema_version},
                                        {"applied_now", report.applied.size()}});
        return;
      }
      const int version = schema_version(*connection);
      if (version >= newest_known_version()) return;
      waiting_for = "database schema is at version " + std::to_string(version) + ", " + who +
                    " needs " + std::to_string(newest_known_version()) + " (" + hint + ")";
    } catch (const DatabaseUnavailable& error) {
      waiting_for = error.what();
    }
    if (std::chrono::steady_clock::now() >= deadline) throw std::runtime_error(waiting_for);
    log::warn("waiting before start", {{"reason", waiting_for}});
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace warren::db

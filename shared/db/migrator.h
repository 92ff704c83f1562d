// Applies the embedded schema migrations (db/migrations.h) to a database. Safe to run from many
// pods at once: a session advisory lock serialises them and each migration commits together
// with its row in warren_schema_migrations, so a crash leaves either all of it or none.
#pragma once

#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace warren::db {

struct MigrationStatus {
  int version;
  std::string name;
  bool applied;
  std::string applied_at;  // RFC 3339, empty when pending
};

struct MigrationReport {
  std::vector<std::string> applied;  // names applied by this run
  int schema_version = 0;            // after the run
};

// Applies what is pending. Throws if the database has a version this binary does not know
// (a newer Warren migrated it: running older code against it would be a silent downgrade).
MigrationReport migrate(pqxx::connection& connection);

std::vector<MigrationStatus> migration_status(pqxx::connection& connection);

// The database's schema version (0 when never migrated) and the newest this binary knows.
int schema_version(pqxx::connection& connection);
int newest_known_version();

// At start the database may still be coming up, and the schema may still be on its way (a
// migration Job running): waits up to `wait` instead of crash-looping, applying migrations
// itself when `auto_migrate`, then throws std::runtime_error naming what it waited for.
// `who` and `hint` only shape that message ("this consumer needs 2 (run `warrenctl migrate`)").
void wait_for_schema(const std::string& url, std::chrono::milliseconds wait, bool auto_migrate,
                     const std::string& who, const std::string& hint);

}  // namespace warren::db

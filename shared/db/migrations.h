// The schema migrations compiled into every binary (generated from db/migrations/*.sql by
// cmake/EmbedMigrations.cmake), in version order.
#pragma once

#include <string>
#include <vector>

namespace warren::db {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

const std::vector<Migration>& embedded_migrations();

}  // namespace warren::db

// Postgres array literals ("{a,b,c}") for statement parameters, so that statements looking rows
// up by a list of keys can say `WHERE id = ANY($1::uuid[])`.
//
// Why not `id IN (SELECT json_array_elements_text($1::json)::uuid)`, which the code used
// before: the planner cannot see into the JSON and estimates every set-returning function at
// 100 rows, so below some tens of thousands of rows it hashed the list and read the whole table
// instead of probing the index for the dozen ids a consumer batch really holds: three scans of
// `jobs` per batch, measured by AttemptStore.BatchesReadTheirRowsByIndexNotByScanningTheTables.
// With an array parameter it plans with the array's real length and probes the index.
// libpqxx 6.4 parses arrays but cannot write them, hence these few lines.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace warren::db {

// Every element double-quoted, with `"` and `\` escaped: safe for any text (uuids, keys).
std::string sql_array(const std::vector<std::string>& values);
std::string sql_array(const std::set<std::string>& values);
std::string sql_array(const std::vector<std::int64_t>& values);

}  // namespace warren::db

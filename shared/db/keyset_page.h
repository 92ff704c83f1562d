// Keyset ("seek") pagination for the list routes of API.md (GET /v1/jobs, GET /v1/dead-letters):
// newest first over (a timestamp column, the id), with an opaque cursor naming the last row of
// the previous page. Unlike OFFSET, a page costs an index range scan however deep it is, and it
// stays stable while new rows arrive (they sort before the cursor, never into later pages).
//
// The cursor is base64url of "<timestamp in epoch microseconds>:<id>"; the query carries its two
// values in the statement's JSON parameter $1, like every filter of those lists.
#pragma once

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "shared/problem.h"

namespace warren::db {

// Appends "AND (time, id) < cursor" to `where` and the cursor's values to `args`. Throws
// ProblemError (400) for a cursor this server did not issue.
void add_cursor_condition(const std::string& cursor, const std::string& time_column,
                          const std::string& id_column, std::string& where, nlohmann::json& args);

// The two columns a page query selects after the row's JSON, for page_from() to build the next
// cursor: ", <epoch micros of time>, <id as text>".
std::string cursor_columns(const std::string& time_column, const std::string& id_column);

// ORDER BY and LIMIT of a page query: one row more than the page, to know whether another follows.
std::string page_order(const std::string& time_column, const std::string& id_column, int limit);

// {"<key>": [rows' JSON], "next_cursor": ...} from a page query's rows (JSON first, then the
// cursor_columns()).
nlohmann::json page_from(const pqxx::result& rows, int limit, const std::string& key);

// The `limit` query parameter: an integer from 1 to max_limit, else an error in `errors`.
int parse_page_limit(const std::string& value, int max_limit, std::vector<FieldError>& errors);

// Throws ProblemError (400) naming the first error and listing all, when there are any: how
// every list route answers bad query parameters.
void reject_invalid_query(std::vector<FieldError> errors);

}  // namespace warren::db

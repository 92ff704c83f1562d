// See keyset_page.h.
#include "shared/db/keyset_page.h"

#include <regex>

#include "shared/encoding.h"
#include "shared/uuid.h"

namespace warren::db {

void add_cursor_condition(const std::string& cursor, const std::string& time_column,
                          const std::string& id_column, std::string& where, nlohmann::json& args) {
  // Micros since 1970: 17 digits reach past the year 5000.
  static const std::regex shape("^(-?[0-9]{1,17}):([0-9a-f-]{36})$");
  auto decoded = base64url_decode(cursor);
  std::smatch match;
  if (!decoded || !std::regex_match(*decoded, match, shape) || !is_canonical_uuid(match[2].str())) {
    throw ProblemError(
        validation_problem("cursor is not one this server issued", {{"cursor", "is invalid"}}));
  }
  args["cursor_micros"] = match[1].str();
  args["cursor_id"] = match[2].str();
  where += " AND (" + time_column + ", " + id_column +
           ") < ('epoch'::timestamptz + ($1::jsonb->>'cursor_micros')::bigint * "
           "interval '1 microsecond', ($1::jsonb->>'cursor_id')::uuid)";
}

std::string cursor_columns(const std::string& time_column, const std::string& id_column) {
  return ", (extract(epoch FROM " + time_column + ") * 1000000)::bigint, " + id_column + "::text";
}

std::string page_order(const std::string& time_column, const std::string& id_column, int limit) {
  return " ORDER BY " + time_column + " DESC, " + id_column + " DESC LIMIT " +
         std::to_string(limit + 1);
}

nlohmann::json page_from(const pqxx::result& rows, int limit, const std::string& key) {
  nlohmann::json out = {{key, nlohmann::json::array()}, {"next_cursor", nullptr}};
  const auto page = std::min<std::size_t>(rows.size(), static_cast<std::size_t>(limit));
  for (std::size_t i = 0; i < page; ++i)
    out[key].push_back(nlohmann::json::parse(rows[i][0].c_str()));
  if (rows.size() > page) {
    const auto& last = rows[page - 1];
    out["next_cursor"] =
        base64url_encode(last[1].as<std::string>() + ":" + last[2].as<std::string>());
  }
  return out;
}

int parse_page_limit(const std::string& value, int max_limit, std::vector<FieldError>& errors) {
  int limit = 0;
  try {
    std::size_t used = 0;
    limit = std::stoi(value, &used);
    if (used != value.size()) limit = 0;
  } catch (const std::exception&) {
    limit = 0;
  }
  if (limit < 1 || limit > max_limit) {
    errors.push_back({"limit", "must be an integer from 1 to " + std::to_string(max_limit)});
  }
  return limit;
}

void reject_invalid_query(std::vector<FieldError> errors) {
  if (errors.empty()) return;
  std::string detail = errors.front().field + " " + errors.front().message;
  throw ProblemError(validation_problem(detail, std::move(errors)));
}

}  // namespace warren::db

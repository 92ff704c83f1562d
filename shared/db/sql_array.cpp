// See sql_array.h.
#include "shared/db/sql_array.h"

namespace warren::db {
namespace {

template <class Strings>
std::string quoted_array(const Strings& values) {
  std::string out = "{";
  for (const auto& value : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace

std::string sql_array(const std::vector<std::string>& values) {
  return quoted_array(values);
}

std::string sql_array(const std::set<std::string>& values) {
  return quoted_array(values);
}

std::string sql_array(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (auto value : values) {
    if (out.size() > 1) out += ',';
    out += std::to_string(value);
  }
  out += '}';
  return out;
}

}  // namespace warren::db

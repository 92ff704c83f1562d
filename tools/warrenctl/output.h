// How warrenctl prints what it read: `--output json` (one JSON document, for scripts and jq) or
// `--output table` (aligned columns for people). Without --output: a table on a terminal,
// JSON when piped, as RUNNING.md asks.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace warren::ctl {

enum class OutputFormat { kJson, kTable };

OutputFormat output_format(const std::optional<std::string>& requested);

struct Column {
  std::string title;
  std::string field;  // JSON pointer-ish: "status", "last_error/type"
};

// Rows are JSON objects; nested values are looked up with '/' in `field`.
void print_table(const std::vector<nlohmann::json>& rows, const std::vector<Column>& columns);

// A single object as "key  value" lines (nested objects printed as compact JSON).
void print_record(const nlohmann::json& record);

}  // namespace warren::ctl

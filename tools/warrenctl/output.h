// How warrenctl prints what it read: `--output json` (one JSON document, for scripts and jq) or
// `--output table` (aligned columns for people). Without --output: a table on a terminal,
// JSON when piped, as RUNNING.md asks.
#pragma once

#include <chrono>
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

// Progress of a long operation on stderr, redrawn in place: a bar, done/total, the rate and the
// time left. Only on a terminal: piped or redirected, update() prints nothing, so logs and
// scripts are not filled with carriage returns.
class ProgressBar {
 public:
  ProgressBar(std::string label, int total);
  ~ProgressBar();  // ends the line if one was drawn
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int done, int failed);

 private:
  std::string label_;
  int total_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point started_;
};

// A value shortened to at most `max_bytes` for a table cell, cut on a UTF-8 character boundary,
// with "…" when something was cut.
std::string shorten(const std::string& text, std::size_t max_bytes);

}  // namespace warren::ctl

// See output.h.
#include "tools/warrenctl/output.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "tools/warrenctl/command_args.h"

namespace warren::ctl {
namespace {

std::string cell(const nlohmann::json& row, const std::string& field) {
  const nlohmann::json* value = &row;
  std::size_t start = 0;
  while (start <= field.size()) {
    auto slash = field.find('/', start);
    const std::string key =
        field.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!value->is_object() || !value->contains(key)) return "";
    value = &(*value)[key];
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (value->is_null()) return "";
  if (value->is_string()) return value->get<std::string>();
  return value->dump();
}

}  // namespace

OutputFormat output_format(const std::optional<std::string>& requested) {
  if (!requested) return isatty(STDOUT_FILENO) ? OutputFormat::kTable : OutputFormat::kJson;
  if (*requested == "json") return OutputFormat::kJson;
  if (*requested == "table") return OutputFormat::kTable;
  throw UsageError("--output must be json or table");
}

void print_table(const std::vector<nlohmann::json>& rows, const std::vector<Column>& columns) {
  std::vector<std::size_t> widths;
  for (const auto& column : columns) widths.push_back(column.title.size());
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      line.push_back(cell(row, columns[i].field));
      widths[i] = std::max(widths[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto print_line = [&](const std::vector<std::string>& line) {
    for (std::size_t i = 0; i < line.size(); ++i) {
      std::cout << line[i];
      if (i + 1 < line.size()) std::cout << std::string(widths[i] - line[i].size() + 2, ' ');
    }
    std::cout << "\n";
  };
  std::vector<std::string> titles;
  for (const auto& column : columns) titles.push_back(column.title);
  print_line(titles);
  for (const auto& line : cells) print_line(line);
}

void print_record(const nlohmann::json& record) {
  std::size_t width = 0;
  for (const auto& [key, value] : record.items()) width = std::max(width, key.size());
  for (const auto& [key, value] : record.items()) {
    std::cout << key << std::string(width - key.size() + 2, ' ')
              << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
  }
}

}  // namespace warren::ctl

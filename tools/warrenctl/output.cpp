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

ProgressBar::ProgressBar(std::string label, int total)
    : label_(std::move(label)),
      total_(std::max(total, 0)),
      enabled_(isatty(STDERR_FILENO) != 0),
      started_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::cerr << "\n";
}

void ProgressBar::update(int done, int failed) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const int finished = done + failed;
  const double fraction = total_ == 0 ? 1.0 : std::min(1.0, double(finished) / total_);
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const double rate = seconds > 0.5 ? finished / seconds : 0.0;
  std::string eta = "";
  if (rate > 0 && finished < total_) {
    eta = "  " + std::to_string(static_cast<int>((total_ - finished) / rate + 0.5)) + "s left";
  }
  std::cerr << "\r" << label_ << " [" << std::string(filled, '#')
            << std::string(kWidth - filled, '.') << "] " << finished << "/" << total_ << "  "
            << static_cast<int>(fraction * 100) << "%  " << static_cast<int>(rate) << "/s"
            << (failed > 0 ? "  " + std::to_string(failed) + " failed" : "") << eta << "\x1b[K"
            << std::flush;  // erase what a longer previous line left
  drawn_ = true;
}

std::string shorten(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  // Back off to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "\u2026";
}

}  // namespace warren::ctl

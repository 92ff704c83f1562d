// See bench_result.h.
#include "bench_result.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace warren::bench {

double ScenarioResult::value(const std::string& name) const {
  for (const auto& m : measurements) {
    if (m.name == name) return m.value;
  }
  throw std::out_of_range(scenario + " reported no measurement called " + name);
}

std::string format_number(double value) {
  if (!std::isfinite(value)) return "n/a";
  char buffer[64];
  if (std::fabs(value) >= 1000) {
    auto whole = static_cast<long long>(std::llround(value));
    std::string digits = std::to_string(whole < 0 ? -whole : whole);
    std::string grouped;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
      grouped += digits[i];
    }
    return (whole < 0 ? "-" : "") + grouped;
  }
  if (std::fabs(value) >= 100) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else if (std::fabs(value) >= 10) {
    std::snprintf(buffer, sizeof buffer, "%.1f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.2f", value);
  }
  return buffer;
}

namespace {

std::string goal_cell(const ScenarioResult& result) {
  if (result.goal.empty()) return "";
  if (!result.goal_met) return result.goal;
  return result.goal + (*result.goal_met ? " — met" : " — **not met**");
}

}  // namespace

std::string markdown_report(const RunInfo& run, const std::vector<ScenarioResult>& results) {
  std::ostringstream out;
  out << "### " << run.started_at << " — " << run.size << " size, commit " << run.commit << "\n\n"
      << "Machine: " << run.host << ", " << run.cpu << ".\n\n"
      << "| scenario | measurement | value | goal |\n|---|---|---:|---|\n";
  for (const auto& result : results) {
    bool first = true;
    for (const auto& m : result.measurements) {
      out << "| " << (first ? result.scenario : "") << " | " << m.name << " | "
          << format_number(m.value) << (m.unit.empty() ? "" : " " + m.unit) << " | "
          << (first ? goal_cell(result) : "") << " |\n";
      first = false;
    }
  }
  out << "\nSetup per scenario:\n\n";
  for (const auto& result : results) {
    out << "- **" << result.scenario << "**: " << result.setup;
    if (!result.note.empty()) out << " " << result.note;
    out << "\n";
  }
  return out.str();
}

nlohmann::json json_report(const RunInfo& run, const std::vector<ScenarioResult>& results) {
  nlohmann::json scenarios = nlohmann::json::array();
  for (const auto& result : results) {
    nlohmann::json measurements = nlohmann::json::array();
    for (const auto& m : result.measurements) {
      measurements.push_back({{"name", m.name}, {"value", m.value}, {"unit", m.unit}});
    }
    nlohmann::json entry = {{"scenario", result.scenario},
                            {"setup", result.setup},
                            {"measurements", measurements},
                            {"goal", result.goal},
                            {"note", result.note}};
    entry["goal_met"] = result.goal_met ? nlohmann::json(*result.goal_met) : nlohmann::json();
    scenarios.push_back(entry);
  }
  return {{"started_at", run.started_at}, {"host", run.host}, {"cpu", run.cpu},
          {"commit", run.commit},         {"size", run.size}, {"scenarios", scenarios}};
}

}  // namespace warren::bench

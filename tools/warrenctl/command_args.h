// Command-line words of one warrenctl verb: positional arguments and --name value /
// --name=value options, with the few checks every verb needs (unknown option, missing value).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace warren::ctl {

// Bad usage: main prints it with the verb's usage and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommandArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> options;  // repeated options keep every value

  // Splits words; `flags` are options without a value (--status), the rest take one.
  static CommandArgs parse(const std::vector<std::string>& words,
                           const std::set<std::string>& flags, const std::set<std::string>& valued);

  bool has(const std::string& name) const { return options.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  int get_int(const std::string& name, int fallback, int min, int max) const;
};

// A value given inline or, as "@path", read from a file (--payload '{"a":1}' or @payload.json).
std::string read_inline_or_file(const std::string& value);

// Strict JSON (as the API parses it), or UsageError naming the option.
nlohmann::json parse_or_usage(const std::string& text, const std::string& what);

}  // namespace warren::ctl

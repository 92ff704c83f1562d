// See command_args.h.
#include "tools/warrenctl/command_args.h"

#include <fstream>
#include <sstream>

#include "shared/strict_json.h"

namespace warren::ctl {

CommandArgs CommandArgs::parse(const std::vector<std::string>& words,
                               const std::set<std::string>& flags,
                               const std::set<std::string>& valued) {
  CommandArgs args;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.rfind("--", 0) != 0 || word == "--") {
      args.positional.push_back(word);
      continue;
    }
    std::string name = word.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (flags.count(name)) {
      if (value) throw UsageError("--" + name + " takes no value");
      args.options[name].push_back("");
    } else if (valued.count(name)) {
      if (!value) {
        if (i + 1 >= words.size()) throw UsageError("--" + name + " needs a value");
        value = words[++i];
      }
      args.options[name].push_back(*value);
    } else {
      throw UsageError("unknown option --" + name);
    }
  }
  return args;
}

std::optional<std::string> CommandArgs::get(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  return it->second.back();
}

int CommandArgs::get_int(const std::string& name, int fallback, int min, int max) const {
  auto value = get(name);
  if (!value) return fallback;
  try {
    std::size_t used = 0;
    int parsed = std::stoi(*value, &used);
    if (used == value->size() && parsed >= min && parsed <= max) return parsed;
  } catch (const std::exception&) {
  }
  throw UsageError("--" + name + " must be an integer from " + std::to_string(min) + " to " +
                   std::to_string(max));
}

std::string read_inline_or_file(const std::string& value) {
  if (value.empty() || value[0] != '@') return value;
  std::ifstream file(value.substr(1));
  if (!file) throw UsageError("cannot read file " + value.substr(1));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

nlohmann::json parse_or_usage(const std::string& text, const std::string& what) {
  auto parsed = parse_strict_json(text);
  if (!parsed.value) throw UsageError(what + ": " + parsed.error);
  return *parsed.value;
}

}  // namespace warren::ctl

// Checks the fuzz targets' invariants share: written independently of the code under test
// (no std::regex, no call into the validator), so a bug there is not repeated here.
#pragma once

#include <string_view>

namespace warren::fuzz {

// ^[a-z0-9][a-z0-9<extra>]{0,63}$: API.md's syntax of job types ("._-") and queues ("_-").
inline bool is_name(std::string_view text, std::string_view extra) {
  if (text.empty() || text.size() > 64) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(text[0])) return false;
  for (char c : text.substr(1)) {
    if (!lower_or_digit(c) && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace warren::fuzz

// Parsing untrusted JSON the way API.md requires: valid UTF-8, nesting at most 64 deep, no
// duplicate keys (`{"a":1,"a":2}` is ambiguous: different parsers keep different values, a
// classic smuggling trick), numbers that fit. Everything else is nlohmann::json's own parser.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace warren {

struct StrictJsonResult {
  std::optional<nlohmann::json> value;
  std::string error;  // set when value is empty: why the text was refused, for the 400 detail
};

inline constexpr int kMaxJsonDepth = 64;

StrictJsonResult parse_strict_json(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace warren

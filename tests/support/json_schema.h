// A small JSON Schema checker for the tests that hold the server to its OpenAPI document:
// $ref (local), type (one or a list, "integer" distinct from "number"), required, properties,
// additionalProperties, items, enum, const, allOf, oneOf, pattern, minimum, maximum.
// Enough for Warren's document; not a general validator (Debian has no C++ one).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace warren::test {

// Every violation, as "path: what"; empty when `value` matches `schema`.
std::vector<std::string> schema_errors(const nlohmann::json& value, const nlohmann::json& schema,
                                       const nlohmann::json& document,
                                       const std::string& path = "$");

}  // namespace warren::test

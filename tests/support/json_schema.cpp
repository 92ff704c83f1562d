// See json_schema.h.
#include "support/json_schema.h"

#include <regex>

namespace warren::test {
namespace {

bool has_type(const nlohmann::json& value, const std::string& type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_boolean();
  if (type == "integer") return value.is_number_integer();
  if (type == "number") return value.is_number();
  if (type == "string") return value.is_string();
  if (type == "array") return value.is_array();
  if (type == "object") return value.is_object();
  return false;
}

}  // namespace

std::vector<std::string> schema_errors(const nlohmann::json& value, const nlohmann::json& schema,
                                       const nlohmann::json& document, const std::string& path) {
  std::vector<std::string> errors;
  auto add = [&](const std::vector<std::string>& more) {
    errors.insert(errors.end(), more.begin(), more.end());
  };
  if (schema.contains("$ref")) {
    const std::string ref = schema["$ref"];
    return schema_errors(value, document.at(nlohmann::json::json_pointer(ref.substr(1))), document,
                         path);
  }
  if (schema.contains("type")) {
    const auto types =
        schema["type"].is_array() ? schema["type"] : nlohmann::json::array({schema["type"]});
    bool any = false;
    for (const auto& t : types) any = any || has_type(value, t.get<std::string>());
    if (!any)
      return {path + ": is " + value.type_name() + ", schema says " + schema["type"].dump()};
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& option : schema["enum"]) found = found || option == value;
    if (!found) errors.push_back(path + ": " + value.dump() + " not in " + schema["enum"].dump());
  }
  if (schema.contains("const") && schema["const"] != value) {
    errors.push_back(path + ": " + value.dump() + " is not " + schema["const"].dump());
  }
  if (schema.contains("pattern") && value.is_string() &&
      !std::regex_search(value.get<std::string>(),
                         std::regex(schema["pattern"].get<std::string>()))) {
    errors.push_back(path + ": does not match " + schema["pattern"].get<std::string>());
  }
  if (schema.contains("minimum") && value.is_number() && value < schema["minimum"]) {
    errors.push_back(path + ": below minimum");
  }
  if (schema.contains("maximum") && value.is_number() && value > schema["maximum"]) {
    errors.push_back(path + ": above maximum");
  }
  if (schema.contains("allOf")) {
    for (const auto& part : schema["allOf"]) add(schema_errors(value, part, document, path));
  }
  if (schema.contains("oneOf")) {
    int matches = 0;
    for (const auto& part : schema["oneOf"])
      matches += schema_errors(value, part, document, path).empty();
    if (matches != 1) errors.push_back(path + ": matches " + std::to_string(matches) + " of oneOf");
  }
  if (value.is_object()) {
    for (const auto& name : schema.value("required", nlohmann::json::array())) {
      if (!value.contains(name.get<std::string>()))
        errors.push_back(path + ": missing " + name.get<std::string>());
    }
    const auto properties = schema.value("properties", nlohmann::json::object());
    for (const auto& [key, item] : value.items()) {
      if (properties.contains(key)) {
        add(schema_errors(item, properties[key], document, path + "." + key));
      } else if (schema.contains("additionalProperties")) {
        const auto& extra = schema["additionalProperties"];
        if (extra.is_boolean() && !extra.get<bool>()) {
          errors.push_back(path + ": unexpected property " + key);
        } else if (extra.is_object()) {
          add(schema_errors(item, extra, document, path + "." + key));
        }
      }
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      add(schema_errors(value[i], schema["items"], document, path + "[" + std::to_string(i) + "]"));
    }
  }
  return errors;
}

}  // namespace warren::test

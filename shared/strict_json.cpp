// See strict_json.h. nlohmann's parser already rejects ill-formed UTF-8 and numbers beyond
// double range; its callback interface sees every object start/end and every key, which is
// enough to track depth and the keys of each open object without a second pass.
#include "shared/strict_json.h"

#include <set>
#include <vector>

namespace warren {
namespace {

struct Refusal {
  std::string reason;
};

}  // namespace

StrictJsonResult parse_strict_json(std::string_view text, int max_depth) {
  using nlohmann::json;
  StrictJsonResult result;
  if (text.empty()) {
    result.error = "request body is empty";
    return result;
  }
  int depth = 0;
  // One set of seen keys per open object; arrays push an empty marker so ends pair up.
  std::vector<std::optional<std::set<std::string>>> open;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++depth > max_depth) {
          throw Refusal{"JSON nesting is deeper than " + std::to_string(max_depth)};
        }
        if (event == json::parse_event_t::object_start) {
          open.emplace_back(std::set<std::string>{});
        } else {
          open.emplace_back(std::nullopt);
        }
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        --depth;
        if (!open.empty()) open.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open.empty() && open.back()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!open.back()->insert(key).second) throw Refusal{"duplicate key \"" + key + "\""};
        }
        break;
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    result.value = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true,
                               /*ignore_comments=*/false);
  } catch (const Refusal& refusal) {
    result.error = refusal.reason;
  } catch (const json::exception& error) {
    // nlohmann's messages name the byte offset and what was expected; keep them for the user.
    result.error = std::string("body is not valid JSON: ") + error.what();
  }
  if (result.value && result.value->is_discarded()) {
    result.value.reset();
    result.error = "body is not valid JSON";
  }
  return result;
}

}  // namespace warren

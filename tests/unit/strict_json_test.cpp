// Tests for parse_strict_json: what API.md says makes a body a 400.
#include "shared/strict_json.h"

#include <gtest/gtest.h>

namespace warren {
namespace {

TEST(StrictJson, AcceptsOrdinaryObjects) {
  auto r = parse_strict_json(R"({"a": 1, "b": {"c": [1, 2, {"d": null}]}, "e": "\u00e9"})");
  ASSERT_TRUE(r.value) << r.error;
  EXPECT_EQ((*r.value)["b"]["c"][2].contains("d"), true);
}

TEST(StrictJson, RefusesEmptyBody) {
  auto r = parse_strict_json("");
  EXPECT_FALSE(r.value);
  EXPECT_EQ(r.error, "request body is empty");
}

TEST(StrictJson, RefusesDuplicateKeysAtAnyDepth) {
  EXPECT_FALSE(parse_strict_json(R"({"a": 1, "a": 2})").value);
  auto nested = parse_strict_json(R"({"x": [{"k": 1, "k": 1}]})");
  EXPECT_FALSE(nested.value);
  EXPECT_NE(nested.error.find("duplicate key \"k\""), std::string::npos);
  // The same key in sibling objects is fine.
  EXPECT_TRUE(parse_strict_json(R"([{"k": 1}, {"k": 2}])").value);
}

TEST(StrictJson, DepthLimitIs64) {
  auto nest = [](int depth) {
    return std::string(static_cast<std::size_t>(depth), '[') +
           std::string(static_cast<std::size_t>(depth), ']');
  };
  EXPECT_TRUE(parse_strict_json(nest(64)).value);
  auto too_deep = parse_strict_json(nest(65));
  EXPECT_FALSE(too_deep.value);
  EXPECT_NE(too_deep.error.find("deeper than 64"), std::string::npos);
  // A hostile 100k-deep body is refused without blowing the stack.
  EXPECT_FALSE(parse_strict_json(nest(100000)).value);
}

TEST(StrictJson, RefusesInvalidUtf8AndRawControlCharacters) {
  EXPECT_FALSE(parse_strict_json("{\"a\": \"\xff\xfe\"}").value);
  EXPECT_FALSE(parse_strict_json("{\"a\": \"\xc3\"}").value);  // truncated sequence
  EXPECT_FALSE(parse_strict_json(std::string("{\"a\": \"x\0y\"}", 12)).value);
  // An escaped NUL is valid JSON.
  EXPECT_TRUE(parse_strict_json(R"({"a": "x\u0000y"})").value);
}

TEST(StrictJson, RefusesTrailingGarbageAndNumbersOutOfRange) {
  EXPECT_FALSE(parse_strict_json(R"({"a": 1} x)").value);
  EXPECT_FALSE(parse_strict_json(R"({"a": 1e400})").value);
  EXPECT_FALSE(parse_strict_json("nul").value);
}

}  // namespace
}  // namespace warren

// sql_array: array literals Postgres parses back to exactly the values given (the round trip
// through a real server is covered by the integration tests that look jobs up by id).
#include "shared/db/sql_array.h"

#include <gtest/gtest.h>

namespace warren::db {
namespace {

TEST(SqlArray, EmptyListsAreEmptyArrays) {
  EXPECT_EQ(sql_array(std::vector<std::string>{}), "{}");
  EXPECT_EQ(sql_array(std::vector<std::int64_t>{}), "{}");
}

TEST(SqlArray, EveryTextElementIsQuotedSoNullCommasAndBracesStayText) {
  EXPECT_EQ(sql_array(std::vector<std::string>{"a", "NULL", "b,c", "{d}", " e "}),
            R"({"a","NULL","b,c","{d}"," e "})");
}

TEST(SqlArray, QuotesAndBackslashesAreEscaped) {
  EXPECT_EQ(sql_array(std::vector<std::string>{R"(say "hi")", R"(C:\dir)"}),
            R"({"say \"hi\"","C:\\dir"})");
}

TEST(SqlArray, SetsKeepTheirOrderAndIntegersAreBare) {
  EXPECT_EQ(sql_array(std::set<std::string>{"b", "a"}), R"({"a","b"})");
  EXPECT_EQ(sql_array(std::vector<std::int64_t>{1, -2, 9007199254740993}),
            "{1,-2,9007199254740993}");
}

}  // namespace
}  // namespace warren::db

// Tests for the API token file and scope checks (API.md "Authentication").
#include "producer/api_tokens.h"

#include <gtest/gtest.h>

#include "shared/config.h"

namespace warren {
namespace {

const char* kFile = R"(# name token scopes
ci-bot      0123456789abcdef0123 submit
dashboard   fedcba9876543210fedc read   # read only
ops         aaaabbbbccccddddeeee admin
both        1111222233334444aaaa submit,read
)";

int status_of(const ApiAuthenticator& auth, const std::string& header, Scope scope) {
  try {
    auth.authenticate(header, scope);
    return 200;
  } catch (const ProblemError& e) {
    return e.problem().status;
  }
}

TEST(ApiTokens, ScopesAndAdminImpliesAll) {
  ApiAuthenticator auth(parse_api_tokens(kFile));
  EXPECT_EQ(status_of(auth, "Bearer 0123456789abcdef0123", Scope::kSubmit), 200);
  EXPECT_EQ(status_of(auth, "Bearer 0123456789abcdef0123", Scope::kRead), 403);
  EXPECT_EQ(status_of(auth, "Bearer fedcba9876543210fedc", Scope::kRead), 200);
  EXPECT_EQ(status_of(auth, "Bearer fedcba9876543210fedc", Scope::kSubmit), 403);
  for (Scope s : {Scope::kSubmit, Scope::kRead, Scope::kAdmin}) {
    EXPECT_EQ(status_of(auth, "Bearer aaaabbbbccccddddeeee", s), 200);
  }
  EXPECT_EQ(status_of(auth, "Bearer 1111222233334444aaaa", Scope::kRead), 200);
  EXPECT_EQ(status_of(auth, "Bearer 1111222233334444aaaa", Scope::kAdmin), 403);
  EXPECT_EQ(auth.authenticate("Bearer aaaabbbbccccddddeeee", Scope::kAdmin).name, "ops");
}

TEST(ApiTokens, MissingOrWrongTokensAre401WithChallenge) {
  ApiAuthenticator auth(parse_api_tokens(kFile));
  EXPECT_EQ(status_of(auth, "bearer 0123456789abcdef0123", Scope::kSubmit), 200);  // RFC 9110
  for (const char* header : {"", "Bearer", "Bearer ", "Basic abc", "Bearer 0123456789ABCDEF0123",
                             "Bearer 0123456789abcdef012", "Bearer 0123456789abcdef01234"}) {
    EXPECT_EQ(status_of(auth, header, Scope::kRead), 401) << header;
  }
  try {
    auth.authenticate("", Scope::kRead);
  } catch (const ProblemError& e) {
    ASSERT_EQ(e.problem().headers.size(), 1u);
    EXPECT_EQ(e.problem().headers[0].first, "WWW-Authenticate");
  }
}

TEST(ApiTokens, OpenApiWhenNoTokens) {
  ApiAuthenticator auth({});
  EXPECT_TRUE(auth.open());
  EXPECT_EQ(auth.authenticate("", Scope::kAdmin).name, "anonymous");
}

TEST(ApiTokens, BadLinesNameTheLineButNeverTheToken) {
  const std::string secret = "supersecrettoken12345";
  for (const std::string& text :
       std::vector<std::string>{"a " + secret, "a " + secret + " write", "a short read",
                                "a " + secret + " read\na " + secret + "x read",
                                "a " + secret + " read\nb " + secret + " read"}) {
    try {
      parse_api_tokens(text);
      FAIL() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("line"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace warren

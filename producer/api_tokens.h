// Bearer-token authentication of the HTTP API (API.md "Authentication"). Tokens and their
// scopes come from WARREN_API_TOKENS_FILE, one `name token scope[,scope...]` per line. The
// name is who the caller is in logs and audit fields; the token itself is never logged,
// never put in an error message, and compared in constant time.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/problem.h"

namespace warren {

enum class Scope { kSubmit, kRead, kAdmin };

std::string_view scope_name(Scope scope);

struct ApiToken {
  std::string name;
  std::array<unsigned char, 32> token_sha256{};  // only the digest is kept in memory
  bool submit = false, read = false, admin = false;

  bool allows(Scope scope) const;
};

// Parses the file's text. Throws ConfigError naming the line (never its token) on a bad line:
// a typo in the token file must stop the producer, not silently lock someone out.
std::vector<ApiToken> parse_api_tokens(std::string_view text);

struct Caller {
  std::string name;  // "anonymous" when the API is open
};

class ApiAuthenticator {
 public:
  explicit ApiAuthenticator(std::vector<ApiToken> tokens) : tokens_(std::move(tokens)) {}

  // Reads WARREN_API_TOKENS_FILE; an empty path means an open API.
  static ApiAuthenticator from_file(const std::string& path);

  bool open() const { return tokens_.empty(); }

  // The caller for an Authorization header value, or the 401/403 problem to answer.
  Caller authenticate(std::string_view authorization, Scope required) const;

 private:
  std::vector<ApiToken> tokens_;
};

}  // namespace warren

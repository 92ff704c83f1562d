// See api_tokens.h. Tokens are kept as SHA-256 digests and the presented token is hashed the
// same way, so comparing fixed-size digests with CRYPTO_memcmp leaks neither content nor length.
#include "producer/api_tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "shared/config.h"

namespace warren {
namespace {

std::array<unsigned char, 32> sha256(std::string_view data) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

std::vector<std::string> split_whitespace(std::string_view line) {
  std::vector<std::string> words;
  std::istringstream in{std::string(line)};
  std::string word;
  while (in >> word) words.push_back(word);
  return words;
}

}  // namespace

std::string_view scope_name(Scope scope) {
  switch (scope) {
    case Scope::kSubmit:
      return "submit";
    case Scope::kRead:
      return "read";
    case Scope::kAdmin:
      return "admin";
  }
  return "admin";
}

bool ApiToken::allows(Scope scope) const {
  if (admin) return true;  // admin implies submit and read
  return (scope == Scope::kSubmit && submit) || (scope == Scope::kRead && read);
}

std::vector<ApiToken> parse_api_tokens(std::string_view text) {
  std::vector<ApiToken> tokens;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    auto words = split_whitespace(line);
    if (words.empty()) continue;
    const std::string where = "WARREN_API_TOKENS_FILE line " + std::to_string(number);
    if (words.size() != 3) throw ConfigError(where + ": expected `name token scope[,scope...]`");
    ApiToken token;
    token.name = words[0];
    if (words[1].size() < 16)
      throw ConfigError(where + " (" + token.name + "): token shorter than 16 characters");
    token.token_sha256 = sha256(words[1]);
    std::istringstream scopes(words[2]);
    std::string scope;
    while (std::getline(scopes, scope, ',')) {
      if (scope == "submit")
        token.submit = true;
      else if (scope == "read")
        token.read = true;
      else if (scope == "admin")
        token.admin = true;
      else
        throw ConfigError(where + " (" + token.name + "): unknown scope '" + scope + "'");
    }
    for (const auto& other : tokens) {
      if (other.name == token.name) throw ConfigError(where + ": duplicate name " + token.name);
      if (CRYPTO_memcmp(other.token_sha256.data(), token.token_sha256.data(), 32) == 0) {
        throw ConfigError(where + " (" + token.name + "): same token as " + other.name);
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

ApiAuthenticator ApiAuthenticator::from_file(const std::string& path) {
  if (path.empty()) return ApiAuthenticator({});
  std::ifstream file(path);
  if (!file) throw ConfigError("WARREN_API_TOKENS_FILE: cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  auto tokens = parse_api_tokens(text.str());
  if (tokens.empty()) throw ConfigError("WARREN_API_TOKENS_FILE: " + path + " has no tokens");
  return ApiAuthenticator(std::move(tokens));
}

Caller ApiAuthenticator::authenticate(std::string_view authorization, Scope required) const {
  if (open()) return Caller{"anonymous"};
  constexpr std::string_view kBearer = "Bearer ";
  // The scheme name is case-insensitive (RFC 9110 section 11.1); the token is not.
  auto scheme_is_bearer = [&] {
    for (std::size_t i = 0; i < kBearer.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
          std::tolower(static_cast<unsigned char>(kBearer[i]))) {
        return false;
      }
    }
    return true;
  };
  if (authorization.size() <= kBearer.size() || !scheme_is_bearer()) {
    throw ProblemError(unauthorized_problem("send Authorization: Bearer <token>"));
  }
  const auto presented = sha256(authorization.substr(kBearer.size()));
  const ApiToken* match = nullptr;
  // Compare against every token, even after a match, so timing says nothing about which.
  for (const auto& token : tokens_) {
    if (CRYPTO_memcmp(token.token_sha256.data(), presented.data(), presented.size()) == 0) {
      match = &token;
    }
  }
  if (match == nullptr) throw ProblemError(unauthorized_problem("the bearer token is not valid"));
  if (!match->allows(required)) {
    throw ProblemError(forbidden_problem("token '" + match->name + "' lacks the '" +
                                         std::string(scope_name(required)) + "' scope"));
  }
  return Caller{match->name};
}

}  // namespace warren

// Fuzz target: the API token file parser (producer/api_tokens.h, WARREN_API_TOKENS_FILE), and
// authentication with what it returns. The file is operator input, but it holds secrets and
// decides who may do what, so besides "no crash" this target checks the parser against a
// plain re-statement of the format of API.md ("name token scope[,scope...]" per line, '#'
// starts a comment, blank lines skipped):
//   - it throws nothing but ConfigError, and throws exactly when some line is bad: not three
//     words, a token shorter than 16 characters, an unknown or empty scope, a name or a token
//     used twice. The error names the first bad line ("... line N") and never shows a token: the
//     same file with other tokens (same lengths, same duplicates) gets the very same message.
//   - when it accepts the file, there is one entry per token line, in order, with that line's
//     name, and ApiAuthenticator built from them authenticates each line's token (scheme case
//     ignored) as that name, allows exactly its scopes (admin implies submit and read), and
//     refuses a token that is not in the file with 401.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "producer/api_tokens.h"
#include "shared/config.h"
#include "shared/problem.h"

namespace {

using warren::Scope;

struct Line {
  int number = 0;
  std::vector<std::string> words;
};

// The file's non-blank lines, comments removed, split at whitespace (C locale, as the parser).
std::vector<Line> token_lines(std::string_view text) {
  std::vector<Line> lines;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = line.substr(0, line.find('#'));
    std::istringstream split(line);
    Line parsed{number, {}};
    for (std::string word; split >> word;) parsed.words.push_back(word);
    if (!parsed.words.empty()) lines.push_back(std::move(parsed));
  }
  return lines;
}

struct Expected {
  bool submit = false, read = false, admin = false;
};

// The scopes of "a,b,c", or nullopt when one is not submit, read or admin. A trailing comma
// ends the list (std::getline semantics: "read," is just "read"); an empty scope is an error.
std::optional<Expected> scopes(std::string_view list) {
  Expected expected;
  std::size_t start = 0;
  while (start < list.size()) {
    const auto comma = list.find(',', start);
    const auto scope = list.substr(start, comma == std::string_view::npos ? comma : comma - start);
    if (scope == "submit") {
      expected.submit = true;
    } else if (scope == "read") {
      expected.read = true;
    } else if (scope == "admin") {
      expected.admin = true;
    } else {
      return std::nullopt;
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return expected;
}

// The number of the first bad line, or 0 when the file is good.
int first_bad_line(const std::vector<Line>& lines) {
  std::set<std::string> names, tokens;
  for (const auto& line : lines) {
    if (line.words.size() != 3 || line.words[1].size() < 16 || !scopes(line.words[2]) ||
        !names.insert(line.words[0]).second || !tokens.insert(line.words[1]).second) {
      return line.number;
    }
  }
  return 0;
}

// The file rebuilt from its words (line numbers kept), with each token of the lines up to
// `last` replaced by a different one of the same length when `mask` is set: distinct tokens stay
// distinct and equal ones equal, so every check of the parser gives the same verdict.
std::string rebuild(const std::vector<Line>& lines, int last, bool mask) {
  std::map<std::string, std::string> masks;
  std::string text;
  int number = 1;
  for (const auto& line : lines) {
    for (; number < line.number; ++number) text += '\n';
    std::vector<std::string> words = line.words;
    if (mask && line.number <= last && words.size() == 3) {
      auto [it, added] = masks.try_emplace(words[1]);
      if (added) {
        // Bytes 0x80..0xFF (never whitespace, '#' or ','); the number of the token in base 128
        // at the end. Tokens before the first bad line have 16 bytes or more, room enough.
        std::string masked(words[1].size(), '\x80');
        for (std::size_t k = masks.size(), i = masked.size(); k > 0 && i > 0; k /= 128, --i) {
          masked[i - 1] = static_cast<char>(0x80 + k % 128);
        }
        it->second = masked;
      }
      words[1] = it->second;
    }
    text += words[0];
    for (std::size_t i = 1; i < words.size(); ++i) text += " " + words[i];
    text += '\n';
    ++number;
  }
  return text;
}

std::string error_of(const std::string& text) {
  try {
    (void)warren::parse_api_tokens(text);
  } catch (const warren::ConfigError& error) {
    return error.what();
  }
  return "";
}

// The message must not depend on what the tokens are: the same file with other tokens (same
// lengths, same duplicates) gets the very same message, so no part of a token is in it.
void check_error_message(const std::string& what, const std::vector<Line>& lines, int bad_line) {
  const std::string where = "WARREN_API_TOKENS_FILE line " + std::to_string(bad_line);
  FUZZ_CHECK(
      what.compare(0, where.size(), where) == 0 &&
          (what.size() == where.size() || what[where.size()] == ':' || what[where.size()] == ' '),
      "the error names the first bad line");
  FUZZ_CHECK(error_of(rebuild(lines, bad_line, false)) == what,
             "the verdict depends only on the words and line numbers");
  const std::string masked = error_of(rebuild(lines, bad_line, true));
  if (masked != what) {
    std::fprintf(stderr, "error message: %s\nwith other tokens: %s\n", what.c_str(),
                 masked.c_str());
  }
  FUZZ_CHECK(masked == what, "an error message never shows a token");
}

bool authenticates_as(const warren::ApiAuthenticator& auth, const std::string& header, Scope scope,
                      const std::string& name) {
  try {
    return auth.authenticate(header, scope).name == name;
  } catch (const warren::ProblemError& error) {
    FUZZ_CHECK(error.problem().status == 403, "a known token is refused only for its scope");
    return false;
  }
}

void check_accepted(const std::vector<warren::ApiToken>& parsed, const std::vector<Line>& lines) {
  FUZZ_CHECK(parsed.size() == lines.size(), "one entry per token line");
  if (parsed.empty()) return;
  const warren::ApiAuthenticator auth(parsed);
  FUZZ_CHECK(!auth.open(), "tokens close the API");
  std::set<std::string> tokens;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& words = lines[i].words;
    const auto expected = *scopes(words[2]);
    FUZZ_CHECK(parsed[i].name == words[0], "entries keep the file's names and order");
    FUZZ_CHECK(parsed[i].submit == expected.submit && parsed[i].read == expected.read &&
                   parsed[i].admin == expected.admin,
               "entries have exactly the listed scopes");
    tokens.insert(words[1]);
    const bool submit = expected.admin || expected.submit;
    const bool read = expected.admin || expected.read;
    FUZZ_CHECK(authenticates_as(auth, "Bearer " + words[1], Scope::kSubmit, words[0]) == submit,
               "submit allowed exactly with submit or admin");
    FUZZ_CHECK(authenticates_as(auth, "bEARER " + words[1], Scope::kRead, words[0]) == read,
               "read allowed exactly with read or admin (scheme case ignored)");
    FUZZ_CHECK(
        authenticates_as(auth, "Bearer " + words[1], Scope::kAdmin, words[0]) == expected.admin,
        "admin allowed exactly with admin");
  }
  const std::string unknown = lines[0].words[1] + "x";
  if (tokens.count(unknown) == 0) {
    try {
      auth.authenticate("Bearer " + unknown, Scope::kRead);
      FUZZ_CHECK(false, "a token not in the file is refused");
    } catch (const warren::ProblemError& error) {
      FUZZ_CHECK(error.problem().status == 401, "a token not in the file is a 401");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto lines = token_lines(text);
  const int bad_line = first_bad_line(lines);
  std::vector<warren::ApiToken> parsed;
  try {
    parsed = warren::parse_api_tokens(text);
  } catch (const warren::ConfigError& error) {
    FUZZ_CHECK(bad_line != 0, "a good file is accepted");
    check_error_message(error.what(), lines, bad_line);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "unexpected exception: %s\n", error.what());
    FUZZ_CHECK(false, "parse_api_tokens throws only ConfigError");
  }
  FUZZ_CHECK(bad_line == 0, "a file with a bad line is refused");
  check_accepted(parsed, lines);
  return 0;
}

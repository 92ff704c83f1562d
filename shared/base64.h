// Base64 (RFC 4648) for opaque pagination cursors and for raw message bodies in dead letters.
// Thin wrappers over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, which only speak the standard
// alphabet with padding; the URL-safe form is a character swap on top.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace warren {

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

// URL-safe alphabet, no padding: for cursors that travel in query strings.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace warren

// Byte encodings: base64 (RFC 4648) for opaque pagination cursors and raw message bodies in
// dead letters, lower-case hex for digests and trace ids. The base64 functions are thin
// wrappers over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock, which only speak the standard
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

std::string hex_encode(std::string_view bytes);

// SHA-256 of the bytes, as lower-case hex (request fingerprints, dead-letter message keys).
std::string sha256_hex(std::string_view bytes);

}  // namespace warren

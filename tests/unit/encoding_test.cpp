// Tests for the byte encodings behind cursors, raw dead-letter bodies, digests and trace ids.
#include "shared/encoding.h"

#include <gtest/gtest.h>

namespace warren {
namespace {

TEST(Encoding, Base64RoundTripsEveryLengthAndByte) {
  std::string bytes;
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes) << i;
    EXPECT_EQ(base64url_decode(base64url_encode(bytes)), bytes) << i;
    bytes += static_cast<char>(i * 7);
  }
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
}

TEST(Encoding, Base64RejectsGarbage) {
  EXPECT_FALSE(base64_decode("abc"));  // not a multiple of 4
  EXPECT_FALSE(base64_decode("ab!d"));
  EXPECT_FALSE(base64url_decode("ab+d"));  // standard alphabet in a URL-safe string
}

TEST(Encoding, HexIsLowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(hex_encode(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  EXPECT_EQ(hex_encode(""), "");
}

}  // namespace
}  // namespace warren

// SPDX-License-Identifier: Apache-2.0
#include "router/base/short_bytes.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace signpost::router {
namespace {

std::string RandomBytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) {
    c = static_cast<char>(rng());
  }
  return s;
}

// Every length up to past the last inline case, at every alignment of source and destination:
// exactly the n bytes are written, and nothing either side of them.
TEST(ShortBytesTest, CopyBytesWritesExactlyTheBytesGiven) {
  std::mt19937_64 rng(7);
  for (std::size_t n = 0; n <= 100; ++n) {
    for (std::size_t shift = 0; shift < 8; ++shift) {
      const std::string src = RandomBytes(rng, n + shift);
      std::string dst(n + 32, '\xAB');
      CopyBytes(dst.data() + 8 + shift % 4, src.data() + shift, n);
      std::string want(n + 32, '\xAB');
      want.replace(8 + shift % 4, n, src, shift, n);
      ASSERT_EQ(dst, want) << "n " << n << " shift " << shift;
    }
  }
}

// Equal strings of every length compare equal; a single changed byte anywhere, or another
// length, makes them differ.
TEST(ShortBytesTest, EqualBytesFindsEveryDifference) {
  std::mt19937_64 rng(11);
  for (std::size_t n = 0; n <= 100; ++n) {
    const std::string a = RandomBytes(rng, n);
    std::string b = a;
    ASSERT_TRUE(EqualBytes(a, b)) << n;
    for (std::size_t i = 0; i < n; ++i) {
      b[i] = static_cast<char>(b[i] ^ 0x20);
      ASSERT_FALSE(EqualBytes(a, b)) << "n " << n << " changed at " << i;
      b[i] = a[i];
    }
    ASSERT_FALSE(EqualBytes(a, a + "x")) << n;
    if (n > 0) {
      ASSERT_FALSE(EqualBytes(a, a.substr(1))) << n;
    }
  }
}

}  // namespace
}  // namespace signpost::router

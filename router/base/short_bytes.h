// SPDX-License-Identifier: Apache-2.0
// Copying and comparing the short strings routing is made of (ids, need codes, pod ids, a
// decision's header) without a call into the C library: up to 64 bytes (16 for a compare) move
// as two overlapping words of 4, 8, 16 or 32 bytes; anything longer goes to memcpy / memcmp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "absl/base/attributes.h"

namespace signpost::router {
namespace short_bytes_internal {

template <std::size_t N>
struct Word {
  unsigned char b[N];
};

template <std::size_t N>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline Word<N> Load(const char* p) {
  Word<N> w;
  std::memcpy(&w, p, N);
  return w;
}
template <std::size_t N>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Store(char* p, const Word<N>& w) {
  std::memcpy(p, &w, N);
}
// The first and last N bytes of [p, p + n), N <= n <= 2N: together they cover it.
template <std::size_t N>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CopyEnds(char* dst, const char* src, std::size_t n) {
  const Word<N> head = Load<N>(src);
  const Word<N> tail = Load<N>(src + n - N);
  Store<N>(dst, head);
  Store<N>(dst + n - N, tail);
}
template <std::size_t N>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool SameEnds(const char* a, const char* b, std::size_t n) {
  return std::memcmp(a, b, N) == 0 && std::memcmp(a + n - N, b + n - N, N) == 0;
}

}  // namespace short_bytes_internal

// memcpy(dst, src, n) for buffers that do not overlap.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CopyBytes(char* dst, const char* src, std::size_t n) {
  using namespace short_bytes_internal;  // NOLINT(build/namespaces): local helpers
  if (n <= 16) {
    if (n >= 8) {
      CopyEnds<8>(dst, src, n);
    } else if (n >= 4) {
      CopyEnds<4>(dst, src, n);
    } else if (n > 0) {
      dst[0] = src[0];
      dst[n / 2] = src[n / 2];
      dst[n - 1] = src[n - 1];
    }
  } else if (n <= 32) {
    CopyEnds<16>(dst, src, n);
  } else if (n <= 64) {
    CopyEnds<32>(dst, src, n);
  } else {
    std::memcpy(dst, src, n);
  }
}

// a == b.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool EqualBytes(std::string_view a, std::string_view b) {
  using namespace short_bytes_internal;  // NOLINT(build/namespaces): local helpers
  const std::size_t n = a.size();
  if (n != b.size()) {
    return false;
  }
  if (n <= 16) {
    if (n >= 8) {
      return SameEnds<8>(a.data(), b.data(), n);
    }
    if (n >= 4) {
      return SameEnds<4>(a.data(), b.data(), n);
    }
    return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
  }
  return std::memcmp(a.data(), b.data(), n) == 0;
}

}  // namespace signpost::router

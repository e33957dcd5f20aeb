// SPDX-License-Identifier: Apache-2.0
// signpost-router's compiled-in jemalloc options (services/router_allocator.cc) reach jemalloc:
// this test links the same object library as the router and asks jemalloc what it runs with.
#include <jemalloc/jemalloc.h>

#include <cstddef>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace {

std::string Option(const char* name) {
  const char* value = nullptr;
  std::size_t size = sizeof(value);
  if (mallctl(name, &value, &size, nullptr, 0) != 0 || value == nullptr) {
    return "<unavailable>";
  }
  return value;
}

TEST(RouterAllocatorTest, HeapAsksForTransparentHugePages) {
  if (const char* env = std::getenv("MALLOC_CONF"); env != nullptr && *env != '\0') {
    GTEST_FAIL() << "MALLOC_CONF is set (" << env << "), it overrides what this test checks";
  }
  EXPECT_EQ(Option("opt.thp"), "always");
  EXPECT_EQ(Option("opt.metadata_thp"), "auto");
}

}  // namespace

// SPDX-License-Identifier: Apache-2.0
#include "router/sorted_queue.h"

#include <cstdint>
#include <random>
#include <set>
#include <utility>

#include "gtest/gtest.h"

namespace signpost::router {
namespace {

using Key = std::pair<std::int64_t, std::uint64_t>;  // (at, id), as a timer orders

TEST(SortedQueueTest, TakesKeysSmallestFirstWhateverOrderTheyCameIn) {
  SortedQueue<Key> queue;
  queue.Insert({10, 1});
  queue.Insert({20, 2});
  queue.Insert({5, 3});   // before the FIFO's front
  queue.Insert({15, 4});  // between its keys
  queue.Insert({20, 2});  // held already, in the FIFO
  queue.Insert({5, 3});   // held already, out of order
  queue.Insert({30, 5});
  ASSERT_EQ(queue.size(), 5u);
  std::vector<Key> taken;
  while (!queue.empty()) {
    taken.push_back(queue.front());
    queue.pop_front();
  }
  EXPECT_EQ(taken, (std::vector<Key>{{5, 3}, {10, 1}, {15, 4}, {20, 2}, {30, 5}}));
}

// Against std::set over random streams: timers mostly set at now + one of a few timeouts, some
// from an earlier time, some repeated, with pops of whatever is due in between.
TEST(SortedQueueTest, MatchesASortedSetOverRandomStreams) {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    SortedQueue<Key> queue;
    std::set<Key> model;
    std::int64_t now = 0;
    std::uint64_t next_id = 0;
    for (int step = 0; step < 2000; ++step) {
      now += static_cast<std::int64_t>(rng() % 5);
      const std::uint64_t roll = rng() % 100;
      if (roll < 60) {
        constexpr std::int64_t kTimeouts[] = {0, 50, 50, 50, 400};
        const Key key{now + kTimeouts[rng() % 5], next_id++};
        queue.Insert(key);
        model.insert(key);
      } else if (roll < 70) {
        const Key key{now - static_cast<std::int64_t>(rng() % 300), next_id++};  // late
        queue.Insert(key);
        model.insert(key);
      } else if (roll < 75 && !model.empty()) {
        auto it = model.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng() % model.size()));
        queue.Insert(*it);  // held already
      } else {
        while (!model.empty() && model.begin()->first <= now) {
          ASSERT_FALSE(queue.empty()) << "seed " << seed;
          ASSERT_EQ(queue.front(), *model.begin()) << "seed " << seed << " step " << step;
          queue.pop_front();
          model.erase(model.begin());
        }
      }
      ASSERT_EQ(queue.size(), model.size()) << "seed " << seed << " step " << step;
    }
    while (!model.empty()) {
      ASSERT_EQ(queue.front(), *model.begin()) << "seed " << seed;
      queue.pop_front();
      model.erase(model.begin());
    }
    EXPECT_TRUE(queue.empty());
    queue.Insert({1, 1});
    queue.clear();
    EXPECT_TRUE(queue.empty());
  }
}

}  // namespace
}  // namespace signpost::router

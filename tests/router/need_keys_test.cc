// SPDX-License-Identifier: Apache-2.0
#include "router/need_keys.h"

#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace signpost::router {
namespace {

using Pair = std::pair<std::string, std::string>;

// A hash with 4 values: most pairs collide, so the overflow path is taken all the time.
std::uint64_t FourBuckets(std::string_view referral_id, std::string_view need_code) {
  return (referral_id.size() + need_code.size()) % 4;
}

// The index under test next to a plain map of what it must hold.
class Model {
 public:
  explicit Model(NeedKeys::Hasher hash) : keys_(hash) {}

  bool Insert(const Pair& p, std::uint64_t id) {
    const bool inserted = keys_.Insert(p.first, p.second, id, IsPair(p));
    if (inserted) {
      pairs_[id] = p;
    }
    return inserted;
  }
  void Erase(std::uint64_t id) {
    const Pair p = pairs_.at(id);
    keys_.Erase(p.first, p.second, id);
    pairs_.erase(id);
  }
  std::optional<std::uint64_t> Find(const Pair& p) const {
    return keys_.Find(p.first, p.second, IsPair(p));
  }
  const NeedKeys& keys() const { return keys_; }
  const std::map<std::uint64_t, Pair>& pairs() const { return pairs_; }

 private:
  std::function<bool(std::uint64_t)> IsPair(const Pair& p) const {
    return [this, p](std::uint64_t id) {
      auto it = pairs_.find(id);
      return it != pairs_.end() && it->second == p;
    };
  }
  NeedKeys keys_;
  std::map<std::uint64_t, Pair> pairs_;
};

TEST(NeedKeysTest, FindsInsertedPairsAndRefusesDuplicates) {
  Model m(&NeedKeys::DefaultHash);
  EXPECT_TRUE(m.Insert({"r1", "food"}, 1));
  EXPECT_TRUE(m.Insert({"r1", "housing"}, 2));
  EXPECT_FALSE(m.Insert({"r1", "food"}, 3));
  EXPECT_EQ(m.Find({"r1", "food"}), 1u);
  EXPECT_EQ(m.Find({"r1", "housing"}), 2u);
  EXPECT_EQ(m.Find({"r2", "food"}), std::nullopt);
  m.Erase(1);
  EXPECT_EQ(m.Find({"r1", "food"}), std::nullopt);
  EXPECT_EQ(m.keys().size(), 1u);
}

TEST(NeedKeysTest, CollidingPairsNeverConfuseTwoNeeds) {
  Model m(&FourBuckets);
  EXPECT_TRUE(m.Insert({"ab", "x"}, 1));  // bucket 3
  EXPECT_TRUE(m.Insert({"cd", "y"}, 2));  // bucket 3 too: overflow
  EXPECT_EQ(m.keys().overflow_size(), 1u);
  EXPECT_EQ(m.Find({"ab", "x"}), 1u);
  EXPECT_EQ(m.Find({"cd", "y"}), 2u);
  EXPECT_EQ(m.Find({"ef", "z"}), std::nullopt);  // same bucket, never inserted
  m.Erase(1);  // the bucket is free again while "cd" still sits in the overflow
  EXPECT_FALSE(m.Insert({"cd", "y"}, 3));
  EXPECT_EQ(m.Find({"cd", "y"}), 2u);
  EXPECT_TRUE(m.Insert({"ef", "z"}, 4));
  EXPECT_EQ(m.Find({"ef", "z"}), 4u);
  EXPECT_EQ(m.Find({"cd", "y"}), 2u);
  EXPECT_EQ(m.keys().size(), 2u);
}

// Random inserts and erases of a few hundred pairs, checked against the model after each step,
// with the real hash and with one that collides nearly always.
TEST(NeedKeysTest, AgreesWithAPlainMapOverRandomChanges) {
  for (NeedKeys::Hasher hash : {&NeedKeys::DefaultHash, &FourBuckets}) {
    Model m(hash);
    std::mt19937_64 rng(7);
    std::uint64_t next_id = 1;
    for (int step = 0; step < 20'000; ++step) {
      const Pair p{"ref-" + std::to_string(rng() % 200), "need-" + std::to_string(rng() % 3)};
      if (rng() % 3 != 0) {
        std::optional<std::uint64_t> held;
        for (const auto& [id, q] : m.pairs()) {
          if (q == p) {
            held = id;
          }
        }
        ASSERT_EQ(m.Insert(p, next_id), !held.has_value()) << step;
        ++next_id;
      } else if (!m.pairs().empty()) {
        auto it = m.pairs().begin();
        std::advance(it, static_cast<long>(rng() % m.pairs().size()));
        m.Erase(it->first);
      }
      ASSERT_EQ(m.keys().size(), m.pairs().size()) << step;
      for (const auto& [id, q] : m.pairs()) {
        ASSERT_EQ(m.Find(q), id) << step;
      }
    }
  }
}

}  // namespace
}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/idempotency.h"

#include "gtest/gtest.h"

namespace signpost::services::gateway {
namespace {

using Outcome = IdempotencyStore::Outcome;

TEST(IdempotencyStoreTest, ReplaysConflictsAndMismatches) {
  IdempotencyStore store(100, std::chrono::seconds(60));
  const auto t0 = IdempotencyStore::Clock::now();
  EXPECT_EQ(store.Start("k", "body-a", t0).outcome, Outcome::kNew);
  EXPECT_EQ(store.Start("k", "body-a", t0).outcome, Outcome::kInFlight);
  EXPECT_EQ(store.Start("k", "body-b", t0).outcome, Outcome::kMismatch);
  store.Finish("k", {202, "application/json", "first", {}}, true);
  const IdempotencyStore::Begin again = store.Start("k", "body-a", t0);
  EXPECT_EQ(again.outcome, Outcome::kReplay);
  EXPECT_EQ(again.reply.status, 202);
  EXPECT_EQ(again.reply.body, "first");
}

TEST(IdempotencyStoreTest, AFailedAttemptIsForgotten) {
  IdempotencyStore store(100, std::chrono::seconds(60));
  EXPECT_EQ(store.Start("k", "a").outcome, Outcome::kNew);
  store.Finish("k", {503, "", "", {}}, false);
  EXPECT_EQ(store.Start("k", "a").outcome, Outcome::kNew);
}

TEST(IdempotencyStoreTest, BoundedByCountAndAgeButKeepsWhatIsInFlight) {
  IdempotencyStore store(3, std::chrono::seconds(10));
  const auto t0 = IdempotencyStore::Clock::now();
  ASSERT_EQ(store.Start("waiting", "x", t0).outcome, Outcome::kNew);
  for (int i = 0; i < 10; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_EQ(store.Start(key, "x", t0).outcome, Outcome::kNew);
    store.Finish(key, {202, "", "", {}}, true);
  }
  EXPECT_LE(store.size(), 4u);
  EXPECT_EQ(store.Start("waiting", "x", t0).outcome, Outcome::kInFlight);
  EXPECT_EQ(store.Start("k9", "x", t0).outcome, Outcome::kReplay);
  EXPECT_EQ(store.Start("k0", "x", t0).outcome, Outcome::kNew) << "evicted by count";
  store.Finish("k0", {202, "", "", {}}, true);
  const auto later = t0 + std::chrono::seconds(11);
  EXPECT_EQ(store.Start("k9", "x", later).outcome, Outcome::kNew) << "evicted by age";
}

}  // namespace
}  // namespace signpost::services::gateway

namespace signpost::services::gateway {
namespace {

TEST(IdempotencyStoreTest, ShardedStoresStayWithinTheirBound) {
  IdempotencyStore store(100'000, std::chrono::seconds(60));
  for (int i = 0; i < 300'000; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_EQ(store.Start(key, "x").outcome, IdempotencyStore::Outcome::kNew);
    store.Finish(key, {202, "", "", {}}, true);
  }
  EXPECT_LE(store.size(), 100'000u);
  EXPECT_GE(store.size(), 90'000u);
  EXPECT_EQ(store.Start("k299999", "x").outcome, IdempotencyStore::Outcome::kReplay);
}

}  // namespace
}  // namespace signpost::services::gateway

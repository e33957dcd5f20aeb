// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/idempotency.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace signpost::services::gateway {

IdempotencyStore::IdempotencyStore(std::size_t max_entries, std::chrono::seconds ttl)
    : ttl_(ttl) {
  // About 32k entries per shard; small stores (tests) get one shard and exact bounds.
  const std::size_t n = std::clamp<std::size_t>(max_entries / 32'768, 1, 64);
  max_per_shard_ = max_entries / n;
  for (std::size_t i = 0; i < n; ++i) {
    shards_.push_back(std::make_unique<Shard>());
  }
}

IdempotencyStore::Shard& IdempotencyStore::ShardOf(const std::string& key) {
  return *shards_[absl::Hash<std::string>()(key) % shards_.size()];
}

IdempotencyStore::Begin IdempotencyStore::Start(const std::string& key,
                                                const std::string& fingerprint,
                                                Clock::time_point now) {
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> lock(s.mu);
  Evict(s, now);
  auto [it, inserted] = s.entries.try_emplace(key);
  if (inserted) {
    it->second.fingerprint = fingerprint;
    it->second.at = now;
    s.order.emplace_back(now, key);
    return {Outcome::kNew, {}};
  }
  if (it->second.fingerprint != fingerprint) {
    return {Outcome::kMismatch, {}};
  }
  if (!it->second.done) {
    return {Outcome::kInFlight, {}};
  }
  return {Outcome::kReplay, it->second.reply};
}

void IdempotencyStore::Finish(const std::string& key, const http::Reply& reply, bool keep) {
  Shard& s = ShardOf(key);
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(key);
  if (it == s.entries.end()) {
    return;
  }
  if (!keep || max_per_shard_ == 0) {
    s.entries.erase(it);  // its place in `order` is skipped when reached
    return;
  }
  it->second.done = true;
  it->second.reply = reply;
}

std::size_t IdempotencyStore::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s->mu);
    n += s->entries.size();
  }
  return n;
}

void IdempotencyStore::Evict(Shard& s, Clock::time_point now) {
  std::size_t budget = s.order.size();
  while (budget-- > 0 && !s.order.empty() &&
         (s.order.size() >= max_per_shard_ || now - s.order.front().first > ttl_)) {
    auto [at, key] = std::move(s.order.front());
    s.order.pop_front();
    auto it = s.entries.find(key);
    if (it == s.entries.end() || it->second.at != at) {
      continue;  // forgotten, or claimed again since
    }
    if (!it->second.done) {
      s.order.emplace_back(at, std::move(key));  // still waiting for Kafka: keep it
      continue;
    }
    s.entries.erase(it);
  }
}

}  // namespace signpost::services::gateway

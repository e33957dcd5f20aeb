// SPDX-License-Identifier: Apache-2.0
// Remembers the answer to each (integrator, idempotency key) so a retry gets the same answer
// without a second event (the Stripe and IETF Idempotency-Key pattern): a retry while the first
// request is still waiting for Kafka gets 409, a retry with a different body gets 422. Only
// acknowledged answers are kept; a failed attempt (503) is forgotten so the retry can succeed.
// Bounded by entry count and age. Thread-safe; the entries are spread over shards, each with
// its own lock, so neither contention nor a table's growth (a rehash of a million entries takes
// most of a second) stalls every request at once.
//
// In memory, per gateway process: after a restart, or at another replica, a retry produces the
// event again with the same event and referral ids, and the router reports it as a duplicate
// and changes nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "services/http/server.h"

namespace signpost::services::gateway {

class IdempotencyStore {
 public:
  using Clock = std::chrono::steady_clock;
  IdempotencyStore(std::size_t max_entries, std::chrono::seconds ttl);

  enum class Outcome { kNew, kInFlight, kMismatch, kReplay };
  struct Begin {
    Outcome outcome;
    http::Reply reply;  // with kReplay: the first answer
  };

  // Claims `key` for a request whose body hashes to `fingerprint`.
  [[nodiscard]] Begin Start(const std::string& key, const std::string& fingerprint,
                            Clock::time_point now = Clock::now());
  // Records the answer to a claimed key (kept), or forgets the key (`keep` false).
  void Finish(const std::string& key, const http::Reply& reply, bool keep);

  [[nodiscard]] std::size_t size() const;

 private:
  struct Entry {
    std::string fingerprint;
    bool done = false;
    http::Reply reply;
    Clock::time_point at;
  };
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, Entry> entries;
    std::deque<std::pair<Clock::time_point, std::string>> order;  // insertion order
  };
  Shard& ShardOf(const std::string& key);
  void Evict(Shard& shard, Clock::time_point now);  // with shard.mu held

  std::size_t max_per_shard_;
  const std::chrono::seconds ttl_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace signpost::services::gateway

// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/idempotency.h"

namespace signpost::services::gateway {

IdempotencyStore::Begin IdempotencyStore::Start(const std::string& key,
                                                const std::string& fingerprint,
                                                Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  Evict(now);
  auto [it, inserted] = entries_.try_emplace(key);
  if (inserted) {
    it->second.fingerprint = fingerprint;
    it->second.at = now;
    order_.emplace_back(now, key);
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
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    return;
  }
  if (!keep || max_entries_ == 0) {
    entries_.erase(it);  // its place in order_ is skipped when reached
    return;
  }
  it->second.done = true;
  it->second.reply = reply;
}

std::size_t IdempotencyStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

void IdempotencyStore::Evict(Clock::time_point now) {
  std::size_t budget = order_.size();
  while (budget-- > 0 && !order_.empty() &&
         (order_.size() > max_entries_ || now - order_.front().first > ttl_)) {
    auto [at, key] = std::move(order_.front());
    order_.pop_front();
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.at != at) {
      continue;  // forgotten, or claimed again since
    }
    if (!it->second.done) {
      order_.emplace_back(at, std::move(key));  // still waiting for Kafka: keep it
      continue;
    }
    entries_.erase(it);
  }
}

}  // namespace signpost::services::gateway

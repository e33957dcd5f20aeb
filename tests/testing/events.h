// SPDX-License-Identifier: Apache-2.0
// Builders for input events, so tests read as the scenario they describe.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "signpost/v1/envelope.pb.h"

namespace signpost::testing {

// Hands out envelopes with unique event ids and a clock the test moves forward.
class EventFactory {
 public:
  explicit EventFactory(std::int64_t start_ms = 1'767'261'600'000)  // Thu 2026-01-01 10:00 UTC
      : now_ms_(start_ms) {}

  void Advance(std::int64_t ms) { now_ms_ += ms; }
  void SetNow(std::int64_t ms) { now_ms_ = ms; }
  [[nodiscard]] std::int64_t Now() const { return now_ms_; }

  [[nodiscard]] v1::Envelope Referral(const std::string& referral_id, const std::string& client,
                                      std::initializer_list<const char*> needs,
                                      const std::string& outward = "BA2");
  [[nodiscard]] v1::Envelope Accept(const std::string& referral_id, const std::string& need,
                                    const std::string& pod);
  [[nodiscard]] v1::Envelope Decline(const std::string& referral_id, const std::string& need,
                                     const std::string& pod);
  [[nodiscard]] v1::Envelope Complete(const std::string& referral_id, const std::string& need,
                                      const std::string& pod);
  [[nodiscard]] v1::Envelope Withdraw(const std::string& referral_id, const std::string& need,
                                      const std::string& pod = "");
  [[nodiscard]] v1::Envelope PodChange(const std::string& pod, v1::PodStatus status,
                                       int capacity = -1);
  [[nodiscard]] v1::Envelope Rules(const std::string& yaml);
  [[nodiscard]] v1::Envelope Tick();
  [[nodiscard]] v1::Envelope Erase(const std::string& client);

  [[nodiscard]] v1::Envelope Base();

 private:
  std::int64_t now_ms_;
  std::uint64_t next_ = 0;
};

}  // namespace signpost::testing

// SPDX-License-Identifier: Apache-2.0
// Seeded random event streams for property, crash and storage tests: referrals, pod answers,
// time, pod and rules changes, duplicates and erasures, over two rule sets.
#pragma once

#include <cstdint>
#include <vector>

#include "signpost/v1/envelope.pb.h"

namespace signpost::testing {

extern const char kRandomRulesA[];  // the rules a stream starts with
extern const char kRandomRulesB[];  // the same taxonomy with other pods

// `length` events from `seed`; the same seed always gives the same stream.
[[nodiscard]] std::vector<v1::Envelope> RandomStream(std::uint64_t seed, int length);

}  // namespace signpost::testing

// SPDX-License-Identifier: Apache-2.0
// Civil time from Unix milliseconds, without a time-zone database: UTC, or UK time (GMT, and
// BST from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October).
// Pure arithmetic, so replay gives the same answers on any machine.
#pragma once

#include <cstdint>

#include "router/rules.h"

namespace signpost::router {

struct LocalTime {
  std::int64_t day = 0;  // days since 1970-01-01 in local time
  int year = 1970;
  int weekday = 0;  // 0 Monday .. 6 Sunday
  int minute = 0;   // minutes since local midnight
  friend bool operator==(const LocalTime&, const LocalTime&) = default;
};

// ToLocalTime gives the same answer for every instant of one UTC minute (zone offsets change
// only on whole minutes), so a caller may keep a result for the rest of its minute.
constexpr std::int64_t kMsPerMinute = 60'000;

[[nodiscard]] LocalTime ToLocalTime(std::int64_t unix_ms, TimeZone zone);

// Days since 1970-01-01 of a civil date (proleptic Gregorian).
[[nodiscard]] std::int64_t DaysFromCivil(int year, int month, int day);

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "router/local_time.h"

#include "gtest/gtest.h"

namespace signpost::router {
namespace {

constexpr std::int64_t kHour = 3'600'000;

std::int64_t Utc(int y, int m, int d, int hour, int minute) {
  return DaysFromCivil(y, m, d) * 86'400'000 + hour * kHour + minute * 60'000;
}

TEST(LocalTimeTest, UtcDayWeekdayAndMinute) {
  const LocalTime t = ToLocalTime(Utc(2026, 1, 3, 10, 30), TimeZone::kUtc);  // a Saturday
  EXPECT_EQ(t.year, 2026);
  EXPECT_EQ(t.weekday, 5);
  EXPECT_EQ(t.minute, 630);
  EXPECT_EQ(t.day, DaysFromCivil(2026, 1, 3));
  EXPECT_EQ(ToLocalTime(0, TimeZone::kUtc).weekday, 3);  // 1970-01-01 was a Thursday
}

TEST(LocalTimeTest, LondonSwitchesToBstOnTheLastSundayOfMarch) {
  // 2026: BST from Sun 29 March 01:00 UTC to Sun 25 October 01:00 UTC.
  EXPECT_EQ(ToLocalTime(Utc(2026, 3, 29, 0, 59), TimeZone::kEuropeLondon).minute, 59);
  EXPECT_EQ(ToLocalTime(Utc(2026, 3, 29, 1, 0), TimeZone::kEuropeLondon).minute, 120);
  EXPECT_EQ(ToLocalTime(Utc(2026, 7, 1, 8, 0), TimeZone::kEuropeLondon).minute, 9 * 60);
  EXPECT_EQ(ToLocalTime(Utc(2026, 10, 25, 0, 59), TimeZone::kEuropeLondon).minute, 60 + 59);
  EXPECT_EQ(ToLocalTime(Utc(2026, 10, 25, 1, 0), TimeZone::kEuropeLondon).minute, 60);
  EXPECT_EQ(ToLocalTime(Utc(2026, 12, 1, 9, 0), TimeZone::kEuropeLondon).minute, 9 * 60);
}

TEST(LocalTimeTest, BstMovesTheLocalDayAtMidnight) {
  const LocalTime t = ToLocalTime(Utc(2026, 6, 30, 23, 30), TimeZone::kEuropeLondon);
  EXPECT_EQ(t.day, DaysFromCivil(2026, 7, 1));
  EXPECT_EQ(t.minute, 30);
}

// The router keeps one answer for a whole UTC minute: check that holds at both BST switches, at
// local midnight and before 1970, and that the next minute differs.
TEST(LocalTimeTest, OneAnswerPerUtcMinute) {
  const std::int64_t minutes[] = {Utc(2026, 3, 29, 0, 59), Utc(2026, 3, 29, 1, 0),
                                  Utc(2026, 10, 25, 0, 59), Utc(2026, 10, 25, 1, 0),
                                  Utc(2026, 6, 30, 22, 59), Utc(2026, 6, 30, 23, 0),
                                  Utc(1969, 12, 31, 23, 59)};
  for (const TimeZone zone : {TimeZone::kUtc, TimeZone::kEuropeLondon}) {
    for (const std::int64_t m : minutes) {
      const LocalTime first = ToLocalTime(m, zone);
      for (const std::int64_t into : {std::int64_t{1}, std::int64_t{30'000},
                                      kMsPerMinute - 1}) {
        EXPECT_EQ(ToLocalTime(m + into, zone), first) << m << " + " << into;
      }
      EXPECT_NE(ToLocalTime(m + kMsPerMinute, zone).minute, first.minute) << m;
      EXPECT_NE(ToLocalTime(m - 1, zone).minute, first.minute) << m;
    }
  }
}

}  // namespace
}  // namespace signpost::router

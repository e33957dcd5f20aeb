// SPDX-License-Identifier: Apache-2.0
#include "router/local_time.h"

namespace signpost::router {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// Civil date from days since the epoch (H. Hinnant's algorithm).
void CivilFromDays(std::int64_t z, int& year, int& month, int& day) {
  z += 719468;
  const std::int64_t era = FloorDiv(z, 146097);
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  year = static_cast<int>(yoe + era * 400 + (month <= 2));
}

int WeekdayFromDays(std::int64_t days) {  // 1970-01-01 was a Thursday (3)
  return static_cast<int>(((days % 7) + 7 + 3) % 7);
}

// Unix ms of 01:00 UTC on the last Sunday of `month` in `year`.
std::int64_t LastSundayOneUtc(int year, int month) {
  const std::int64_t last = DaysFromCivil(year, month + 1, 1) - 1;
  const std::int64_t sunday = last - (WeekdayFromDays(last) + 1) % 7;
  return sunday * kMsPerDay + 60 * kMsPerMinute;
}

}  // namespace

std::int64_t DaysFromCivil(int year, int month, int day) {
  if (month > 12) {
    month -= 12;
    ++year;
  }
  year -= month <= 2;
  const std::int64_t era = FloorDiv(year, 400);
  const std::int64_t yoe = year - era * 400;
  const std::int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

LocalTime ToLocalTime(std::int64_t unix_ms, TimeZone zone) {
  std::int64_t local_ms = unix_ms;
  if (zone == TimeZone::kEuropeLondon) {
    int year = 0;
    int month = 0;
    int day = 0;
    CivilFromDays(FloorDiv(unix_ms, kMsPerDay), year, month, day);
    if (unix_ms >= LastSundayOneUtc(year, 3) && unix_ms < LastSundayOneUtc(year, 10)) {
      local_ms += 60 * kMsPerMinute;
    }
  }
  LocalTime t;
  t.day = FloorDiv(local_ms, kMsPerDay);
  int month = 0;
  int day = 0;
  CivilFromDays(t.day, t.year, month, day);
  t.weekday = WeekdayFromDays(t.day);
  t.minute = static_cast<int>((local_ms - t.day * kMsPerDay) / kMsPerMinute);
  return t;
}

}  // namespace signpost::router

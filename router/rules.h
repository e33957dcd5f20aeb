// SPDX-License-Identifier: Apache-2.0
// Rules as data: the need taxonomy, the pods, and per need the ordered targets a need moves
// through while it waits. Loaded from YAML, validated with errors that name the line and field,
// and compiled into index-based tables the matcher walks without allocating.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "router/symbol.h"
#include "signpost/v1/common.pb.h"
#include "signpost/v1/control.pb.h"

namespace signpost::router {

using NeedIndex = std::uint16_t;
using PodIndex = std::uint16_t;

// Which referral attributes a pod may receive (bit per attribute).
enum DataScope : std::uint32_t {
  kScopeClientRef = 1u << 0,
  kScopePostcode = 1u << 1,
  kScopeLsoa = 1u << 2,
  kScopeBirthYear = 1u << 3,
  kScopeFlags = 1u << 4,
  kScopeLanguage = 1u << 5,
  kScopePayload = 1u << 6,
};

enum class TimeZone { kUtc, kEuropeLondon };

struct NeedType {
  std::string code;
  std::string name;
  Symbol symbol;  // the code, interned
};

// The areas a pod covers. Routing asks it several times per need, so codes and prefixes of up
// to 7 bytes (every UK outward code) are kept packed into integers and compared as such.
class Coverage {
 public:
  // Adds an outward code ("BA2"), a prefix ("BA*": any code starting "BA") or the whole county
  // ("*"), in any case.
  void Add(std::string_view area);

  // 3 exact, 2 prefix, 1 county-wide, 0 not covered. `outward` in upper case.
  [[nodiscard]] std::uint32_t Specificity(std::string_view outward) const;

 private:
  static constexpr std::size_t kPackedMax = 7;  // bytes; the length goes in the eighth
  // The first min(size, 8) bytes of `s`, zero-padded; with the length in the top byte when
  // `with_length` (then s.size() <= kPackedMax).
  static std::uint64_t Pack(std::string_view s, bool with_length);

  struct Prefix {
    std::uint64_t bits;  // Pack(prefix, false)
    std::size_t size;    // up to kPackedMax
  };
  std::vector<std::uint64_t> exact_;      // packed with their length, sorted
  std::vector<std::string> long_exact_;   // longer codes, sorted
  std::vector<Prefix> prefixes_;          // packed, up to kPackedMax bytes
  std::vector<std::string> long_prefixes_;
  bool county_wide_ = false;
};

struct OpeningHours {
  bool always = true;
  std::uint8_t days = 0x7f;  // bit 0 Monday .. bit 6 Sunday
  int open_minute = 0;       // local minutes since midnight, inclusive
  int close_minute = 1440;   // exclusive
};

struct PodRule {
  std::string id;
  Symbol symbol;  // the id, interned
  std::string name;
  std::string partner;
  std::vector<NeedIndex> needs;  // sorted
  Coverage coverage;
  int min_age = -1;  // -1: no bound
  int max_age = -1;
  std::uint32_t required_flags = 0;  // bit per v1::ClientFlag
  std::uint32_t excluded_flags = 0;
  std::vector<std::string> languages;   // primary subtags; empty = any
  std::uint32_t required_consent = 0;   // bit per v1::ConsentScope
  std::uint32_t capacity = 0;           // open cost at once
  std::vector<std::uint32_t> cost;      // by NeedIndex; default 1
  std::uint32_t daily_intake = 0;       // 0 = unlimited
  std::uint32_t weight = 1;
  std::int64_t accept_timeout_ms = 0;   // 0 = no timeout
  OpeningHours hours;
  std::uint32_t data_scope = kScopeClientRef;
  v1::PodStatus status = v1::POD_STATUS_OPEN;

  [[nodiscard]] bool Serves(NeedIndex need) const;
};

struct Target {
  std::string name;
  std::vector<PodIndex> pods;  // sorted by pod id, so ties break on the id
  std::int64_t max_wait_ms = 0;  // time in this target before moving on; 0 = stay
};

struct NeedRule {
  std::vector<Target> targets;
  std::int64_t max_wait_ms = 0;  // from submission to escalation while waiting
  std::string escalate_to;
  Symbol escalate_symbol;  // escalate_to, interned
  std::uint32_t max_declines = 3;
};

struct Rules {
  std::string version;
  std::string yaml;  // the source, carried in snapshots
  TimeZone time_zone = TimeZone::kEuropeLondon;
  std::vector<NeedType> needs;
  std::vector<NeedRule> need_rules;  // by NeedIndex
  NeedIndex triage_need = 0;
  std::vector<PodRule> pods;  // sorted by id
  absl::flat_hash_map<std::string, NeedIndex> need_index;
  absl::flat_hash_map<std::string, PodIndex> pod_index;

  [[nodiscard]] const NeedIndex* FindNeed(std::string_view code) const;
  [[nodiscard]] const PodIndex* FindPod(std::string_view id) const;
};

// Parses and validates a rules document. `source` names it in errors ("rules.yaml").
// Returns kInvalidArgument with "<source>:<line>:<column>: <field path>: <problem>" for the first
// problem found; unknown keys are errors, so typos do not pass silently.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const Rules>> LoadRules(std::string_view yaml,
                                                                     std::string_view source);

// A pod status as the rules file writes it ("open", "paused", "closed"); nullopt otherwise.
[[nodiscard]] std::optional<v1::PodStatus> PodStatusByName(std::string_view name);

// Parses "90s", "30m", "4h", "2d" into milliseconds. Returns kInvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<std::int64_t> ParseDuration(std::string_view text);

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
// The intake stage's judgement of one record from signpost.intake.v1: usable (normalised, with
// its routing domain) or not (with a reason for the dead-letter queue). Pure: no Kafka here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "signpost/v1/envelope.pb.h"

namespace signpost::services {

struct IntakeRules {
  std::int64_t max_record_bytes = 262'144;
  std::string domain;                        // the domain this deployment routes
  std::vector<std::string> domain_prefixes;  // outward-code prefixes of it; empty: all
};

// Why a record went to the DLQ; the string form is the metric label and the header value.
enum class DlqReason {
  kNone,
  kOversized,
  kUnparsable,
  kSchemaVersion,
  kMissingEventId,
  kMissingEventTime,
  kNotAnInput,
  kInvalidReferral,
  kInvalidResponse,
  kInvalidPodChange,
  kInvalidErasure,
  kUnknownDomain,
};
[[nodiscard]] const char* DlqReasonName(DlqReason reason);

struct IntakeVerdict {
  DlqReason reason = DlqReason::kNone;
  std::string detail;  // which field, never its value
  v1::Envelope envelope;  // normalised, when reason == kNone
};

// Validates and normalises `bytes`: schema version, ids, sizes, known enums, outward code
// (upper case, no spaces), need codes (trimmed, lower case; unknown ones stay for triage), and
// the routing domain (explicit, or from the outward code).
[[nodiscard]] IntakeVerdict JudgeIntake(std::string_view bytes, const IntakeRules& rules);

}  // namespace signpost::services

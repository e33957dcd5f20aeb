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

// One routing domain as the intake stage sees it.
struct IntakeDomain {
  std::string id;
  // Outward-code prefixes (upper case); the longest match over every domain wins. Empty: the
  // catch-all domain, which also takes referrals without a postcode.
  std::vector<std::string> prefixes;
  std::vector<std::string> pods;  // pod ids of its rules: answers and pod changes go here
};

struct IntakeRules {
  std::int64_t max_record_bytes = 262'144;
  std::vector<IntakeDomain> domains;  // every domain this deployment routes
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
  v1::Envelope envelope;  // normalised, with its domain set, when reason == kNone
  // An erasure that names no domain: to be written once per domain (a client's record may be
  // in any of them); envelope.domain() is then the first.
  bool every_domain = false;
};

// Validates and normalises `bytes`: schema version, ids, sizes, known enums, outward code
// (upper case, no spaces), need codes (trimmed, lower case; unknown ones stay for triage), and
// the routing domain: explicit; else a referral's from its outward code (longest prefix, or the
// catch-all domain), an answer's or pod change's from its pod; else, with a single domain, it.
[[nodiscard]] IntakeVerdict JudgeIntake(std::string_view bytes, const IntakeRules& rules);

}  // namespace signpost::services

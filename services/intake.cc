// SPDX-License-Identifier: Apache-2.0
#include "services/intake.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace signpost::services {
namespace {

constexpr std::size_t kMaxId = 128;
constexpr int kMaxNeeds = 20;

bool ValidId(const std::string& s) { return !s.empty() && s.size() <= kMaxId; }

// "ba2 " -> "BA2"; outward codes are 2-4 characters: A9, A99, AA9, AA99, A9A, AA9A.
bool NormaliseOutward(std::string& code) {
  std::string out;
  for (char c : code) {
    if (c != ' ') {
      out.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
    }
  }
  if (out.empty()) {
    code.clear();
    return true;  // unknown locality is allowed: county-wide pods can still take it
  }
  if (out.size() < 2 || out.size() > 4 || !absl::ascii_isalpha(static_cast<unsigned char>(out[0]))) {
    return false;
  }
  for (char c : out) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  code = out;
  return true;
}

IntakeVerdict Reject(DlqReason reason, std::string detail) {
  IntakeVerdict v;
  v.reason = reason;
  v.detail = std::move(detail);
  return v;
}

}  // namespace

const char* DlqReasonName(DlqReason reason) {
  switch (reason) {
    case DlqReason::kNone: return "none";
    case DlqReason::kOversized: return "oversized";
    case DlqReason::kUnparsable: return "unparsable";
    case DlqReason::kSchemaVersion: return "schema_version";
    case DlqReason::kMissingEventId: return "missing_event_id";
    case DlqReason::kMissingEventTime: return "missing_event_time";
    case DlqReason::kNotAnInput: return "not_an_input";
    case DlqReason::kInvalidReferral: return "invalid_referral";
    case DlqReason::kInvalidResponse: return "invalid_response";
    case DlqReason::kInvalidPodChange: return "invalid_pod_change";
    case DlqReason::kInvalidErasure: return "invalid_erasure";
    case DlqReason::kUnknownDomain: return "unknown_domain";
  }
  return "unknown";
}

IntakeVerdict JudgeIntake(std::string_view bytes, const IntakeRules& rules) {
  if (static_cast<std::int64_t>(bytes.size()) > rules.max_record_bytes) {
    return Reject(DlqReason::kOversized, absl::StrCat("record of ", bytes.size(), " bytes"));
  }
  IntakeVerdict v;
  v1::Envelope& e = v.envelope;
  if (!e.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Reject(DlqReason::kUnparsable, "not a signpost.v1.Envelope");
  }
  if (e.schema_version() != 1) {
    return Reject(DlqReason::kSchemaVersion, absl::StrCat("schema_version ", e.schema_version()));
  }
  if (!ValidId(e.event_id())) {
    return Reject(DlqReason::kMissingEventId, "event_id must be 1-128 bytes");
  }
  if (e.event_time_ms() <= 0) {
    return Reject(DlqReason::kMissingEventTime, "event_time_ms must be set");
  }
  std::string outward;
  switch (e.body_case()) {
    case v1::Envelope::kReferralSubmitted: {
      v1::ReferralSubmitted& r = *e.mutable_referral_submitted();
      if (!ValidId(r.referral_id())) {
        return Reject(DlqReason::kInvalidReferral, "referral_id must be 1-128 bytes");
      }
      if (!ValidId(r.client_ref())) {
        return Reject(DlqReason::kInvalidReferral, "client_ref must be 1-128 bytes");
      }
      if (r.needs_size() > kMaxNeeds) {
        return Reject(DlqReason::kInvalidReferral, "at most 20 needs");
      }
      for (v1::Need& need : *r.mutable_needs()) {
        std::string code(absl::StripAsciiWhitespace(need.code()));
        absl::AsciiStrToLower(&code);
        if (code.size() > 64) {
          return Reject(DlqReason::kInvalidReferral, "need code longer than 64");
        }
        need.set_code(code);  // unknown codes stay: the router sends them to triage
        if (!v1::Urgency_IsValid(need.urgency())) {
          return Reject(DlqReason::kInvalidReferral, "needs.urgency unknown");
        }
      }
      if (!v1::Source_IsValid(r.source()) || !v1::Urgency_IsValid(r.urgency())) {
        return Reject(DlqReason::kInvalidReferral, "source or urgency unknown");
      }
      for (int f : r.flags()) {
        if (!v1::ClientFlag_IsValid(f) || f == 0) {
          return Reject(DlqReason::kInvalidReferral, "flags: unknown value");
        }
      }
      for (int c : r.consent()) {
        if (!v1::ConsentScope_IsValid(c) || c == 0) {
          return Reject(DlqReason::kInvalidReferral, "consent: unknown value");
        }
      }
      if (r.birth_year() != 0 && (r.birth_year() < 1890 || r.birth_year() > 2100)) {
        return Reject(DlqReason::kInvalidReferral, "birth_year out of range");
      }
      if (r.language().size() > 35 || r.lsoa().size() > 16 || r.source_org().size() > kMaxId) {
        return Reject(DlqReason::kInvalidReferral, "language, lsoa or source_org too long");
      }
      std::string code = r.postcode_outward();
      if (!NormaliseOutward(code)) {
        return Reject(DlqReason::kInvalidReferral, "postcode_outward is not an outward code");
      }
      r.set_postcode_outward(code);
      outward = code;
      break;
    }
    case v1::Envelope::kPodResponse: {
      const v1::PodResponse& r = e.pod_response();
      if (!ValidId(r.referral_id()) || r.need_code().size() > 64 || r.pod_id().size() > 64 ||
          r.response_case() == v1::PodResponse::RESPONSE_NOT_SET) {
        return Reject(DlqReason::kInvalidResponse, "referral_id, need_code, pod_id or response");
      }
      break;
    }
    case v1::Envelope::kPodChanged:
      if (!ValidId(e.pod_changed().pod_id()) || !v1::PodStatus_IsValid(e.pod_changed().status())) {
        return Reject(DlqReason::kInvalidPodChange, "pod_id or status");
      }
      break;
    case v1::Envelope::kRulesChanged:
      break;  // the router validates rules and answers with Rejected if they do not load
    case v1::Envelope::kClientErasureRequested:
      if (!ValidId(e.client_erasure_requested().client_ref())) {
        return Reject(DlqReason::kInvalidErasure, "client_ref must be 1-128 bytes");
      }
      break;
    default:
      return Reject(DlqReason::kNotAnInput, "body is not an input event");
  }
  // The routing domain: explicit, or this deployment's when the outward code is one of its.
  if (e.domain().empty()) {
    const bool ours =
        rules.domain_prefixes.empty() || outward.empty() ||
        std::any_of(rules.domain_prefixes.begin(), rules.domain_prefixes.end(),
                    [&](const std::string& p) { return outward.rfind(p, 0) == 0; });
    if (!ours) {
      return Reject(DlqReason::kUnknownDomain, "outward code outside every known domain");
    }
    e.set_domain(rules.domain);
  } else if (e.domain() != rules.domain) {
    return Reject(DlqReason::kUnknownDomain, "domain is not served here");
  }
  return v;
}

}  // namespace signpost::services

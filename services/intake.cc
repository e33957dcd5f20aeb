// SPDX-License-Identifier: Apache-2.0
#include "services/intake.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/checks.h"

namespace signpost::services {
namespace {

IntakeVerdict Reject(DlqReason reason, std::string detail) {
  IntakeVerdict v;
  v.reason = reason;
  v.detail = std::move(detail);
  return v;
}

// The domain of a referral from its outward code: the longest matching prefix, else the
// catch-all domain (no prefixes); nullptr when none.
const IntakeDomain* DomainOfOutward(const IntakeRules& rules, const std::string& outward) {
  const IntakeDomain* best = nullptr;
  std::size_t best_length = 0;
  const IntakeDomain* catch_all = nullptr;
  for (const IntakeDomain& d : rules.domains) {
    if (d.prefixes.empty()) {
      catch_all = &d;
    }
    if (outward.empty()) {
      continue;
    }
    for (const std::string& p : d.prefixes) {
      if (p.size() > best_length && outward.rfind(p, 0) == 0) {
        best = &d;
        best_length = p.size();
      }
    }
  }
  if (best != nullptr || catch_all != nullptr) {
    return best != nullptr ? best : catch_all;
  }
  // No postcode: a deployment of one domain takes it (the router's rules triage it).
  return outward.empty() && rules.domains.size() == 1 ? &rules.domains[0] : nullptr;
}

const IntakeDomain* DomainOfPod(const IntakeRules& rules, const std::string& pod) {
  for (const IntakeDomain& d : rules.domains) {
    if (std::find(d.pods.begin(), d.pods.end(), pod) != d.pods.end()) {
      return &d;
    }
  }
  return rules.domains.size() == 1 ? &rules.domains[0] : nullptr;
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
      std::vector<FieldProblem> problems;
      CheckReferral(*e.mutable_referral_submitted(), problems);
      if (!problems.empty()) {
        return Reject(DlqReason::kInvalidReferral,
                      absl::StrCat(problems[0].field, ": ", problems[0].problem));
      }
      outward = e.referral_submitted().postcode_outward();
      break;
    }
    case v1::Envelope::kPodResponse: {
      std::vector<FieldProblem> problems;
      CheckPodResponse(e.pod_response(), problems);
      if (!problems.empty()) {
        return Reject(DlqReason::kInvalidResponse,
                      absl::StrCat(problems[0].field, ": ", problems[0].problem));
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
  // The routing domain.
  if (!e.domain().empty()) {
    if (std::none_of(rules.domains.begin(), rules.domains.end(),
                     [&](const IntakeDomain& d) { return d.id == e.domain(); })) {
      return Reject(DlqReason::kUnknownDomain, "domain is not served here");
    }
    return v;
  }
  const IntakeDomain* domain = nullptr;
  switch (e.body_case()) {
    case v1::Envelope::kReferralSubmitted:
      domain = DomainOfOutward(rules, outward);
      if (domain == nullptr) {
        return Reject(DlqReason::kUnknownDomain, outward.empty()
                                                     ? "no domain and no postcode_outward"
                                                     : "outward code outside every known domain");
      }
      break;
    case v1::Envelope::kPodResponse:
      domain = DomainOfPod(rules, e.pod_response().pod_id());
      break;
    case v1::Envelope::kPodChanged:
      domain = DomainOfPod(rules, e.pod_changed().pod_id());
      break;
    case v1::Envelope::kClientErasureRequested:
      if (rules.domains.empty()) {
        return Reject(DlqReason::kUnknownDomain, "no domain is served here");
      }
      v.every_domain = true;
      e.set_domain(rules.domains.front().id);
      return v;
    default:
      domain = rules.domains.size() == 1 ? &rules.domains[0] : nullptr;
      break;
  }
  if (domain == nullptr) {
    return Reject(DlqReason::kUnknownDomain, "domain not given and not known from the pod");
  }
  e.set_domain(domain->id);
  return v;
}

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
#include "services/checks.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace signpost::services {
namespace {

constexpr std::size_t kMaxId = 128;
constexpr std::size_t kMaxCode = 64;
constexpr int kMaxNeeds = 20;

}  // namespace

bool ValidId(const std::string& id) { return !id.empty() && id.size() <= kMaxId; }

bool NormaliseOutward(std::string& code) {
  std::string out;
  for (char c : code) {
    if (c != ' ') {
      out.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
    }
  }
  if (out.empty()) {
    code.clear();
    return true;
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

void CheckReferral(v1::ReferralSubmitted& r, std::vector<FieldProblem>& problems) {
  auto bad = [&](std::string field, std::string problem) {
    problems.push_back({std::move(field), std::move(problem)});
  };
  if (!ValidId(r.referral_id())) bad("/referral_id", "must be 1-128 bytes");
  if (!ValidId(r.client_ref())) bad("/client_ref", "must be 1-128 bytes");
  if (!v1::Source_IsValid(r.source())) bad("/source", "unknown value");
  if (r.source_org().size() > kMaxId) bad("/source_org", "longer than 128 bytes");
  if (r.needs_size() > kMaxNeeds) bad("/needs", "at most 20 needs");
  for (int i = 0; i < r.needs_size() && i < kMaxNeeds; ++i) {
    v1::Need& need = *r.mutable_needs(i);
    std::string code(absl::StripAsciiWhitespace(need.code()));
    absl::AsciiStrToLower(&code);
    if (code.size() > kMaxCode) {
      bad(absl::StrCat("/needs/", i, "/code"), "longer than 64 bytes");
    }
    need.set_code(code);  // unknown codes stay: the router sends them to triage
    if (!v1::Urgency_IsValid(need.urgency())) {
      bad(absl::StrCat("/needs/", i, "/urgency"), "unknown value");
    }
  }
  if (!v1::Urgency_IsValid(r.urgency())) bad("/urgency", "unknown value");
  std::string outward = r.postcode_outward();
  if (NormaliseOutward(outward)) {
    r.set_postcode_outward(outward);
  } else {
    bad("/postcode_outward", "is not a postcode outward code (e.g. BA2)");
  }
  if (r.lsoa().size() > 16) bad("/lsoa", "longer than 16 bytes");
  if (r.birth_year() != 0 && (r.birth_year() < 1890 || r.birth_year() > 2100)) {
    bad("/birth_year", "must be 0 (unknown) or from 1890 to 2100");
  }
  for (int i = 0; i < r.flags_size(); ++i) {
    if (!v1::ClientFlag_IsValid(r.flags(i)) || r.flags(i) == 0) {
      bad(absl::StrCat("/flags/", i), "unknown value");
    }
  }
  if (r.language().size() > 35) bad("/language", "longer than 35 bytes");
  for (int i = 0; i < r.consent_size(); ++i) {
    if (!v1::ConsentScope_IsValid(r.consent(i)) || r.consent(i) == 0) {
      bad(absl::StrCat("/consent/", i), "unknown value");
    }
  }
  if (r.integrator_id().size() > kMaxCode) bad("/integrator_id", "longer than 64 bytes");
}

void CheckPodResponse(const v1::PodResponse& r, std::vector<FieldProblem>& problems) {
  auto bad = [&](std::string field, std::string problem) {
    problems.push_back({std::move(field), std::move(problem)});
  };
  if (!ValidId(r.referral_id())) bad("/referral_id", "must be 1-128 bytes");
  if (r.need_code().size() > kMaxCode) bad("/need_code", "longer than 64 bytes");
  if (r.pod_id().empty() || r.pod_id().size() > kMaxCode) bad("/pod_id", "must be 1-64 bytes");
  switch (r.response_case()) {
    case v1::PodResponse::kAccepted:
      if (r.accepted().case_owner_ref().size() > kMaxId) {
        bad("/accepted/case_owner_ref", "longer than 128 bytes");
      }
      break;
    case v1::PodResponse::kDeclined:
      if (!v1::DeclineReason_IsValid(r.declined().reason())) bad("/declined/reason", "unknown value");
      break;
    case v1::PodResponse::kCompleted:
      if (!v1::Outcome_IsValid(r.completed().outcome())) bad("/completed/outcome", "unknown value");
      if (r.completed().remedies_size() > 20) bad("/completed/remedies", "at most 20 remedies");
      break;
    case v1::PodResponse::kWithdrawn:
      if (!v1::WithdrawReason_IsValid(r.withdrawn().reason())) {
        bad("/withdrawn/reason", "unknown value");
      }
      break;
    case v1::PodResponse::RESPONSE_NOT_SET:
      bad("/", "one of accepted, declined, completed or withdrawn is required");
      break;
  }
}

}  // namespace signpost::services

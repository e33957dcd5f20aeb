// SPDX-License-Identifier: Apache-2.0
// HL7 FHIR R4 (UK Core) ServiceRequest -> ReferralSubmitted. A ServiceRequest with a contained
// Patient, or a Bundle of ServiceRequests and Patients, becomes one referral per ServiceRequest:
//   code / category / reasonCode  -> need codes through the concept map (unmapped: triage);
//   priority                      -> urgency (routine, urgent, asap, stat);
//   Patient.identifier            -> client_ref, a keyed hash (NHS numbers are checked first);
//   Patient.address.postalCode    -> outward code only;  Patient.birthDate -> birth year;
//   Patient.communication         -> language;  ServiceRequest.identifier -> referral id.
// Nothing else of the patient is kept. Every problem is reported with its FHIRPath expression.
// Pure: no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "services/gateway/pseudonym.h"
#include "signpost/v1/referral.pb.h"

namespace signpost::services::gateway {

// Coded concepts (system, code) -> Signpost need codes or client flags.
class ConceptMap {
 public:
  struct Target {
    std::string need;                                 // a need code, or
    v1::ClientFlag flag = v1::CLIENT_FLAG_UNSPECIFIED;  // a routing flag
  };
  // Loads a YAML file: `concepts: [{system, code, need | flag}]`; `code: "*"` with no need maps
  // every code of the system to the need of the same name. Errors name the file and line.
  [[nodiscard]] static absl::StatusOr<ConceptMap> Load(const std::string& path);
  [[nodiscard]] static absl::StatusOr<ConceptMap> Parse(const std::string& yaml,
                                                        const std::string& name);
  // The target of (system, code), or nullopt when unmapped.
  [[nodiscard]] std::optional<Target> Find(std::string_view system, std::string_view code) const;
  [[nodiscard]] std::size_t size() const { return targets_.size(); }

 private:
  absl::flat_hash_map<std::string, Target> targets_;   // "system|code"
  absl::flat_hash_map<std::string, bool> identity_;    // systems whose codes are need codes
};

// Who is submitting, from their credentials and configuration.
struct Submitter {
  std::string integrator_id;
  v1::Source source = v1::SOURCE_GP_PRACTICE;  // unless the patient refers themselves
  std::string source_org;                     // unless the requester names an ODS code
  std::vector<v1::ConsentScope> consent;      // consent the integrator's process records
};

struct FhirIssue {
  std::string expression;  // FHIRPath, e.g. "Bundle.entry[1].resource.subject"
  std::string code;        // OperationOutcome issue type: invalid, required, value, structure
  std::string diagnostics;
};

struct FhirReferral {
  v1::ReferralSubmitted referral;  // referral_id empty when the ServiceRequest had no identifier
  int unmapped_codes = 0;
};

struct FhirResult {
  bool bundle = false;
  std::vector<FhirReferral> referrals;  // usable only when `issues` is empty
  std::vector<FhirIssue> issues;
};

inline constexpr int kMaxServiceRequestsPerBundle = 100;

[[nodiscard]] FhirResult MapFhir(const nlohmann::json& document, const ConceptMap& concepts,
                                 const Pseudonymiser& pseudonymiser, const Submitter& submitter);

// An OperationOutcome resource holding `issues` (severity error).
[[nodiscard]] nlohmann::json OperationOutcome(const std::vector<FhirIssue>& issues);

}  // namespace signpost::services::gateway

// SPDX-License-Identifier: Apache-2.0
// Fuzz target for everything the gateway does with an untrusted body: JSON parsing, the FHIR
// mapping and the JSON form. Built with libFuzzer by scripts/fuzz (clang, ASan, UBSan); the
// main build runs the same function over the seed corpus as a regression test.
//
// Beyond "no crash": whatever the mapping accepts must pass the shared field checks, and must
// never carry the patient's identifier in clear.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "nlohmann/json.hpp"
#include "services/checks.h"
#include "services/gateway/fhir.h"
#include "services/gateway/json_form.h"

namespace {

namespace gw = signpost::services::gateway;

const gw::ConceptMap& Concepts() {
  static const gw::ConceptMap map = *gw::ConceptMap::Parse(
      "concepts:\n"
      "  - {system: 'http://snomed.info/sct', code: '871731000000106', need: social-prescribing}\n"
      "  - {system: 'urn:signpost:need', code: '*'}\n"
      "  - {system: 'urn:signpost:flag', code: shielding, flag: shielding}\n",
      "fuzz");
  return map;
}

const gw::Pseudonymiser& Pseudo() {
  static const gw::Pseudonymiser p = *gw::Pseudonymiser::FromHex(std::string(64, '7'));
  return p;
}

void Require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return 0;
  }
  const gw::Submitter submitter{"fuzz", signpost::v1::SOURCE_GP_PRACTICE, "X1", {}};
  const gw::FhirResult fhir = gw::MapFhir(doc, Concepts(), Pseudo(), submitter);
  if (fhir.issues.empty()) {
    for (const gw::FhirReferral& f : fhir.referrals) {
      signpost::v1::ReferralSubmitted r = f.referral;
      if (r.referral_id().empty()) r.set_referral_id("filled-by-the-gateway");
      std::vector<signpost::services::FieldProblem> problems;
      signpost::services::CheckReferral(r, problems);
      Require(problems.empty());
      Require(r.needs_size() >= 1);
      Require(r.client_ref().rfind("c-", 0) == 0 && r.client_ref().size() == 34);
    }
  } else {
    (void)gw::OperationOutcome(fhir.issues).dump();
  }
  signpost::v1::ReferralSubmitted referral;
  std::vector<signpost::services::FieldProblem> problems;
  gw::ReferralFromJson(doc, referral, problems);
  if (problems.empty()) {
    std::vector<signpost::services::FieldProblem> again;
    signpost::services::CheckReferral(referral, again);
    Require(again.empty());
  }
  signpost::v1::PodResponse response;
  problems.clear();
  gw::PodResponseFromJson(doc, response, problems);
  return 0;
}

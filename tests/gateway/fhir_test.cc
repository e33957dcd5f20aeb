// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/fhir.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace signpost::services::gateway {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kKey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

json Load(const std::string& name) {
  std::ifstream in(std::string(SIGNPOST_FHIR_DIR) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return json::parse(s.str());
}

class FhirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ConceptMap> map = ConceptMap::Load(SIGNPOST_CONCEPT_MAP);
    ASSERT_TRUE(map.ok()) << map.status();
    concepts_ = *std::move(map);
    submitter_.integrator_id = "gp-bath";
    submitter_.source = v1::SOURCE_GP_PRACTICE;
    submitter_.source_org = "INTEGRATOR-ORG";
    submitter_.consent = {v1::CONSENT_SCOPE_SHARE_WITH_PODS};
  }

  FhirResult Map(const json& doc) { return MapFhir(doc, concepts_, *pseudo_, submitter_); }

  std::vector<std::string> Needs(const v1::ReferralSubmitted& r) {
    std::vector<std::string> out;
    for (const v1::Need& n : r.needs()) out.push_back(n.code());
    return out;
  }

  std::vector<std::string> Expressions(const FhirResult& r) {
    std::vector<std::string> out;
    for (const FhirIssue& i : r.issues) out.push_back(i.expression);
    return out;
  }

  ConceptMap concepts_;
  absl::StatusOr<Pseudonymiser> pseudo_ = Pseudonymiser::FromHex(kKey);
  Submitter submitter_;
};

TEST_F(FhirTest, GpSocialPrescribingReferral) {
  const FhirResult r = Map(Load("gp-social-prescribing.json"));
  ASSERT_TRUE(r.issues.empty()) << OperationOutcome(r.issues).dump();
  ASSERT_EQ(r.referrals.size(), 1u);
  const v1::ReferralSubmitted& ref = r.referrals[0].referral;
  EXPECT_EQ(Needs(ref), (std::vector<std::string>{"social-prescribing", "food", "mental-wellbeing"}));
  EXPECT_EQ(ref.urgency(), v1::URGENCY_ROUTINE);
  EXPECT_EQ(ref.postcode_outward(), "BA2") << "the home address, outward code only";
  EXPECT_EQ(ref.birth_year(), 1948u);
  EXPECT_EQ(ref.language(), "en");
  EXPECT_EQ(ref.source(), v1::SOURCE_GP_PRACTICE);
  EXPECT_EQ(ref.source_org(), "L81004") << "the requester's ODS code";
  EXPECT_EQ(ref.integrator_id(), "gp-bath");
  EXPECT_THAT(ref.consent(), ElementsAre(v1::CONSENT_SCOPE_SHARE_WITH_PODS));
  // The NHS number (spaces removed) is hashed with the key; nothing of it is left in clear.
  EXPECT_EQ(ref.client_ref(),
            pseudo_->ClientRef("https://fhir.nhs.uk/Id/nhs-number", "9434765919"));
  EXPECT_EQ(ref.referral_id(), pseudo_->ReferralId("https://fhir.example-gp-system.test/referral-id",
                                                   "GP-2020-04-0001"));
  const std::string bytes = ref.SerializeAsString();
  for (const char* personal : {"9434765919", "943 476 5919", "Example", "Alex", "01225",
                               "3AB", "Example Street", "1948-07-21"}) {
    EXPECT_EQ(bytes.find(personal), std::string::npos) << personal;
  }
}

TEST_F(FhirTest, SelfReferralPrefersThePreferredLanguage) {
  const FhirResult r = Map(Load("self-referral.json"));
  ASSERT_TRUE(r.issues.empty()) << OperationOutcome(r.issues).dump();
  const v1::ReferralSubmitted& ref = r.referrals.at(0).referral;
  EXPECT_EQ(ref.source(), v1::SOURCE_SELF) << "the requester is the patient";
  EXPECT_EQ(ref.source_org(), "INTEGRATOR-ORG");
  EXPECT_EQ(ref.urgency(), v1::URGENCY_SOON) << "FHIR urgent is below asap and stat";
  EXPECT_EQ(ref.language(), "pl");
  EXPECT_EQ(ref.birth_year(), 1990u);
  EXPECT_EQ(ref.postcode_outward(), "BA1");
  EXPECT_EQ(Needs(ref), (std::vector<std::string>{"money-work"}));
}

TEST_F(FhirTest, HospitalDischargeCarriesFlagsAndAnOtherIdentifier) {
  const FhirResult r = Map(Load("hospital-discharge.json"));
  ASSERT_TRUE(r.issues.empty()) << OperationOutcome(r.issues).dump();
  const v1::ReferralSubmitted& ref = r.referrals.at(0).referral;
  EXPECT_EQ(Needs(ref), (std::vector<std::string>{"discharge-support", "food"}));
  EXPECT_THAT(ref.flags(),
              ElementsAre(v1::CLIENT_FLAG_LIVES_ALONE, v1::CLIENT_FLAG_RECENT_DISCHARGE));
  EXPECT_EQ(ref.urgency(), v1::URGENCY_URGENT);
  EXPECT_EQ(ref.postcode_outward(), "BA14");
  EXPECT_EQ(ref.birth_year(), 1939u);
  EXPECT_EQ(ref.client_ref(), pseudo_->ClientRef("https://fhir.example-hospital.test/mrn",
                                                 "RUH-000123"));
}

TEST_F(FhirTest, BundleResolvesPatientsByFullUrlAndById) {
  const FhirResult r = Map(Load("bundle.json"));
  ASSERT_TRUE(r.issues.empty()) << OperationOutcome(r.issues).dump();
  EXPECT_TRUE(r.bundle);
  ASSERT_EQ(r.referrals.size(), 2u);
  const v1::ReferralSubmitted& a = r.referrals[0].referral;
  const v1::ReferralSubmitted& b = r.referrals[1].referral;
  EXPECT_EQ(Needs(a), (std::vector<std::string>{"shielding-welfare-check"}));
  EXPECT_THAT(a.flags(), ElementsAre(v1::CLIENT_FLAG_SHIELDING));
  EXPECT_EQ(a.urgency(), v1::URGENCY_EMERGENCY);
  EXPECT_EQ(a.postcode_outward(), "BA2");
  EXPECT_EQ(a.client_ref(), pseudo_->ClientRef("https://fhir.nhs.uk/Id/nhs-number", "9434765919"));
  EXPECT_EQ(Needs(b), (std::vector<std::string>{"housing"}));
  EXPECT_EQ(b.postcode_outward(), "BA3");
  EXPECT_EQ(b.client_ref(), pseudo_->ClientRef("https://fhir.nhs.uk/Id/nhs-number", "9434765870"));
  EXPECT_NE(a.referral_id(), b.referral_id());
}

TEST_F(FhirTest, UnmappedCodesGoToTriageNotToAnError) {
  const FhirResult r = Map(Load("unmapped-codes.json"));
  ASSERT_TRUE(r.issues.empty()) << OperationOutcome(r.issues).dump();
  EXPECT_EQ(Needs(r.referrals.at(0).referral), (std::vector<std::string>{""}));
  EXPECT_EQ(r.referrals[0].unmapped_codes, 2);
}

TEST_F(FhirTest, AnUnmappedReasonBesideMappedOnesStillReachesTriage) {
  json doc = Load("gp-social-prescribing.json");
  doc["reasonCode"].push_back({{"text", "lonely since a bereavement"}});
  const FhirResult r = Map(doc);
  ASSERT_TRUE(r.issues.empty());
  EXPECT_EQ(Needs(r.referrals[0].referral),
            (std::vector<std::string>{"social-prescribing", "food", "mental-wellbeing", ""}));
}

TEST_F(FhirTest, SameIdentifiersSameReferencesUnderOneKeyOnly) {
  const FhirResult a = Map(Load("gp-social-prescribing.json"));
  const FhirResult b = Map(Load("gp-social-prescribing.json"));
  EXPECT_EQ(a.referrals[0].referral.SerializeAsString(), b.referrals[0].referral.SerializeAsString());
  absl::StatusOr<Pseudonymiser> other = Pseudonymiser::FromHex(std::string(64, 'f'));
  ASSERT_TRUE(other.ok());
  const FhirResult c = MapFhir(Load("gp-social-prescribing.json"), concepts_, *other, submitter_);
  EXPECT_NE(a.referrals[0].referral.client_ref(), c.referrals[0].referral.client_ref());
}

struct BadCase {
  const char* name;
  std::function<void(json&)> damage;
  std::vector<std::string> expressions;
};

class FhirRejectTest : public FhirTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(FhirRejectTest, NamesEveryBadField) {
  json doc = Load("gp-social-prescribing.json");
  GetParam().damage(doc);
  const FhirResult r = Map(doc);
  EXPECT_EQ(Expressions(r), GetParam().expressions) << OperationOutcome(r.issues).dump(2);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FhirRejectTest,
    ::testing::Values(
        BadCase{"WrongResourceType", [](json& d) { d["resourceType"] = "Patient"; },
                {"resourceType"}},
        BadCase{"MissingSubject", [](json& d) { d.erase("subject"); },
                {"ServiceRequest.subject"}},
        BadCase{"SubjectNotFound", [](json& d) { d["subject"]["reference"] = "#nobody"; },
                {"ServiceRequest.subject"}},
        BadCase{"WrongTypes",
                [](json& d) {
                  d["priority"] = 3;
                  d["reasonCode"] = "food";
                  d["contained"][0]["birthDate"] = 1948;
                },
                {"ServiceRequest.priority", "ServiceRequest.reasonCode",
                 "ServiceRequest.contained[0].birthDate"}},
        BadCase{"BadValues",
                [](json& d) {
                  d["status"] = "revoked";
                  d["priority"] = "whenever";
                  d["contained"][0]["identifier"][0]["value"] = "9434765918";
                  d["contained"][0]["address"][1]["postalCode"] = "NOT A POSTCODE";
                  d["contained"][0]["birthDate"] = "21/07/1948";
                },
                {"ServiceRequest.status", "ServiceRequest.priority",
                 "ServiceRequest.contained[0].identifier[0].value",
                 "ServiceRequest.contained[0].birthDate",
                 "ServiceRequest.contained[0].address[1].postalCode"}},
        BadCase{"HugeString",
                [](json& d) { d["contained"][0]["address"][1]["postalCode"] = std::string(100000, 'A'); },
                {"ServiceRequest.contained[0].address[1].postalCode"}},
        BadCase{"MissingStatusAndIntent",
                [](json& d) {
                  d.erase("status");
                  d.erase("intent");
                },
                {"ServiceRequest.status", "ServiceRequest.intent"}},
        BadCase{"NotAnObject", [](json& d) { d = json::array({1, 2}); }, {""}},
        BadCase{"EmptyBundle", [](json& d) { d = {{"resourceType", "Bundle"}, {"entry", json::array()}}; },
                {"Bundle.entry"}}),
    [](const auto& info) { return info.param.name; });

TEST_F(FhirTest, BundleIssuesNameTheEntry) {
  json doc = Load("bundle.json");
  doc["entry"][3]["resource"]["subject"]["reference"] = "Patient/missing";
  const FhirResult r = Map(doc);
  EXPECT_EQ(Expressions(r), (std::vector<std::string>{"Bundle.entry[3].resource.subject"}));
}

TEST(ConceptMapTest, ErrorsNameTheLine) {
  absl::StatusOr<ConceptMap> m = ConceptMap::Parse(
      "concepts:\n  - system: a\n    code: b\n    need: c\n  - system: a\n    code: d\n"
      "    flag: not-a-flag\n",
      "map.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("map.yaml:5"));
  EXPECT_THAT(m.status().message(), HasSubstr("not-a-flag"));
  m = ConceptMap::Parse("concepts:\n  - {system: a, code: b, need: c}\n  - {system: a, code: b, need: d}\n",
                        "m");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("mapped twice"));
}

TEST(PseudonymTest, NhsNumberCheckDigit) {
  EXPECT_TRUE(ValidNhsNumber("9434765919"));
  EXPECT_TRUE(ValidNhsNumber("9434765870"));
  EXPECT_FALSE(ValidNhsNumber("9434765918"));
  EXPECT_FALSE(ValidNhsNumber("943476591"));
  EXPECT_FALSE(ValidNhsNumber("94347659x9"));
  EXPECT_FALSE(Pseudonymiser::FromHex("abc").ok());
  EXPECT_EQ(TokenHash("secret-token").size(), 64u);
  EXPECT_NE(NewHexKey(), NewHexKey());
}

}  // namespace
}  // namespace signpost::services::gateway

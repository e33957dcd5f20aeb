// SPDX-License-Identifier: Apache-2.0
// The intake stage's judgement: what it normalises, and every kind of bad record it sends to the
// DLQ with a reason.
#include "services/intake.h"

#include "gtest/gtest.h"
#include "tests/testing/events.h"

namespace signpost::services {
namespace {

IntakeRules Rules() {
  IntakeRules r;
  r.domains = {IntakeDomain{"banes", {"BA1", "BA2", "BS31"}, {"pod-food"}}};
  r.max_record_bytes = 4096;
  return r;
}

v1::Envelope Referral() {
  testing::EventFactory events;
  v1::Envelope e = events.Referral("r1", "c1", {" Food ", "HOUSING"}, "ba2 ");
  e.clear_domain();
  return e;
}

TEST(IntakeTest, NormalisesAndResolvesTheDomain) {
  IntakeVerdict v = JudgeIntake(Referral().SerializeAsString(), Rules());
  ASSERT_EQ(v.reason, DlqReason::kNone) << v.detail;
  EXPECT_EQ(v.envelope.domain(), "banes");
  const v1::ReferralSubmitted& r = v.envelope.referral_submitted();
  EXPECT_EQ(r.postcode_outward(), "BA2");
  EXPECT_EQ(r.needs(0).code(), "food");
  EXPECT_EQ(r.needs(1).code(), "housing");
}

TEST(IntakeTest, UnknownNeedsPassForTriage) {
  testing::EventFactory events;
  v1::Envelope e = events.Referral("r1", "c1", {"knitting-circle", ""}, "BA1");
  EXPECT_EQ(JudgeIntake(e.SerializeAsString(), Rules()).reason, DlqReason::kNone);
}

// Two domains and a catch-all: the county's two hubs and the rest of the region.
IntakeRules ThreeDomains() {
  IntakeRules r;
  r.domains = {IntakeDomain{"banes", {"BA1", "BA2", "BS31"}, {"banes-food"}},
               IntakeDomain{"wiltshire", {"SN", "BA12", "BA1X"}, {"wilts-food"}},
               IntakeDomain{"region", {}, {"region-mdt"}}};
  return r;
}

std::string DomainOf(v1::Envelope e, const IntakeRules& rules) {
  e.clear_domain();
  IntakeVerdict v = JudgeIntake(e.SerializeAsString(), rules);
  if (v.reason != DlqReason::kNone) {
    return DlqReasonName(v.reason);
  }
  EXPECT_FALSE(v.every_domain);
  return v.envelope.domain();
}

TEST(IntakeTest, ReferralsGoToTheLongestMatchingPrefixElseTheCatchAll) {
  testing::EventFactory events;
  const IntakeRules rules = ThreeDomains();
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, "BA1"), rules), "banes");
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, "ba12"), rules), "wiltshire");
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, "BA1X"), rules), "wiltshire");
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, "SN14"), rules), "wiltshire");
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, "BS39"), rules), "region");
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, ""), rules), "region");
  // Without a catch-all, an outward code outside every domain is refused, as is no postcode.
  IntakeRules two = rules;
  two.domains.pop_back();
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, "BS39"), two), "unknown_domain");
  EXPECT_EQ(DomainOf(events.Referral("r", "c", {"food"}, ""), two), "unknown_domain");
  // An explicit domain wins over the postcode, when it is served here.
  v1::Envelope explicit_domain = events.Referral("r", "c", {"food"}, "BA1");
  explicit_domain.set_domain("wiltshire");
  EXPECT_EQ(JudgeIntake(explicit_domain.SerializeAsString(), rules).envelope.domain(),
            "wiltshire");
}

TEST(IntakeTest, AnswersAndPodChangesGoToTheirPodsDomain) {
  testing::EventFactory events;
  const IntakeRules rules = ThreeDomains();
  EXPECT_EQ(DomainOf(events.Accept("r", "food", "wilts-food"), rules), "wiltshire");
  EXPECT_EQ(DomainOf(events.Accept("r", "food", "banes-food"), rules), "banes");
  EXPECT_EQ(DomainOf(events.Accept("r", "food", "nobody"), rules), "unknown_domain");
  EXPECT_EQ(DomainOf(events.PodChange("region-mdt", v1::POD_STATUS_PAUSED), rules), "region");
  // With one domain, an unknown pod still goes there: the router answers with a rejection.
  EXPECT_EQ(DomainOf(events.Accept("r", "food", "nobody"), Rules()), "banes");
}

TEST(IntakeTest, AnErasureWithoutADomainGoesToEveryDomain) {
  testing::EventFactory events;
  v1::Envelope e = events.Erase("c1");
  e.clear_domain();
  IntakeVerdict v = JudgeIntake(e.SerializeAsString(), ThreeDomains());
  ASSERT_EQ(v.reason, DlqReason::kNone) << v.detail;
  EXPECT_TRUE(v.every_domain);
  e.set_domain("region");
  v = JudgeIntake(e.SerializeAsString(), ThreeDomains());
  EXPECT_FALSE(v.every_domain);
  EXPECT_EQ(v.envelope.domain(), "region");
}

struct Bad {
  const char* name;
  std::function<std::string()> bytes;
  DlqReason reason;
};

class IntakeRejectTest : public ::testing::TestWithParam<Bad> {};

TEST_P(IntakeRejectTest, GoesToTheDlqWithAReason) {
  IntakeVerdict v = JudgeIntake(GetParam().bytes(), Rules());
  EXPECT_EQ(v.reason, GetParam().reason) << DlqReasonName(v.reason) << ": " << v.detail;
  EXPECT_FALSE(v.detail.empty());
  EXPECT_EQ(v.detail.find("c1"), std::string::npos) << "details never carry personal data";
}

std::string With(const std::function<void(v1::Envelope&)>& change) {
  v1::Envelope e = Referral();
  change(e);
  return e.SerializeAsString();
}

INSTANTIATE_TEST_SUITE_P(
    Poison, IntakeRejectTest,
    ::testing::Values(
        Bad{"Truncated", [] { std::string s = Referral().SerializeAsString(); return s.substr(0, s.size() - 5); },
            DlqReason::kUnparsable},
        Bad{"Garbage", [] { return std::string("\xff\xff\xff\xff not protobuf", 17); },
            DlqReason::kUnparsable},
        Bad{"Oversized", [] { return With([](v1::Envelope& e) {
              e.mutable_referral_submitted()->mutable_payload()->set_ciphertext(std::string(8000, 'x')); }); },
            DlqReason::kOversized},
        Bad{"WrongSchemaVersion", [] { return With([](v1::Envelope& e) { e.set_schema_version(7); }); },
            DlqReason::kSchemaVersion},
        Bad{"NoEventId", [] { return With([](v1::Envelope& e) { e.clear_event_id(); }); },
            DlqReason::kMissingEventId},
        Bad{"NoEventTime", [] { return With([](v1::Envelope& e) { e.set_event_time_ms(0); }); },
            DlqReason::kMissingEventTime},
        Bad{"NoBody", [] { return With([](v1::Envelope& e) { e.clear_body(); }); },
            DlqReason::kNotAnInput},
        Bad{"ADecision", [] { return With([](v1::Envelope& e) { e.mutable_routed(); }); },
            DlqReason::kNotAnInput},
        Bad{"NoReferralId", [] { return With([](v1::Envelope& e) {
              e.mutable_referral_submitted()->clear_referral_id(); }); },
            DlqReason::kInvalidReferral},
        Bad{"NoClientRef", [] { return With([](v1::Envelope& e) {
              e.mutable_referral_submitted()->clear_client_ref(); }); },
            DlqReason::kInvalidReferral},
        Bad{"UnknownFlag", [] { return With([](v1::Envelope& e) {
              e.mutable_referral_submitted()->add_flags(static_cast<v1::ClientFlag>(99)); }); },
            DlqReason::kInvalidReferral},
        Bad{"NotAnOutwardCode", [] { return With([](v1::Envelope& e) {
              e.mutable_referral_submitted()->set_postcode_outward("BA2 4QH"); }); },
            DlqReason::kInvalidReferral},
        Bad{"TooManyNeeds", [] { return With([](v1::Envelope& e) {
              for (int i = 0; i < 21; ++i) e.mutable_referral_submitted()->add_needs()->set_code("food"); }); },
            DlqReason::kInvalidReferral},
        Bad{"BirthYearOutOfRange", [] { return With([](v1::Envelope& e) {
              e.mutable_referral_submitted()->set_birth_year(1200); }); },
            DlqReason::kInvalidReferral},
        Bad{"OutsideTheDomain", [] { return With([](v1::Envelope& e) {
              e.mutable_referral_submitted()->set_postcode_outward("SN1"); }); },
            DlqReason::kUnknownDomain},
        Bad{"OtherDomain", [] { return With([](v1::Envelope& e) { e.set_domain("wiltshire"); }); },
            DlqReason::kUnknownDomain},
        Bad{"ResponseWithoutAnswer", [] {
              testing::EventFactory events;
              v1::Envelope e = events.Accept("r1", "food", "pod");
              e.mutable_pod_response()->clear_response();
              return e.SerializeAsString(); },
            DlqReason::kInvalidResponse}),
    [](const ::testing::TestParamInfo<Bad>& info) { return info.param.name; });

}  // namespace
}  // namespace signpost::services

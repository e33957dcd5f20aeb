// SPDX-License-Identifier: Apache-2.0
// The operator's control events: refused with a reason before anything is sent, and, when
// built, accepted by the intake stage's own checks (JudgeIntake) unchanged in meaning.
#include "services/control.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "services/intake.h"

namespace signpost::services {
namespace {

IntakeRules Banes() {
  IntakeRules rules;
  rules.domains.push_back({"banes", {"BA1", "BA2"}, {"food-bath-foodbank", "hub-triage"}});
  return rules;
}

// The event as the intake stage passes it to the log.
v1::Envelope Judged(const v1::Envelope& event) {
  const IntakeVerdict verdict = JudgeIntake(event.SerializeAsString(), Banes());
  EXPECT_EQ(verdict.reason, DlqReason::kNone) << verdict.detail;
  return verdict.envelope;
}

TEST(ControlTest, PodChangeCarriesOnlyWhatIsGiven) {
  PodChange change;
  change.pod_id = "food-bath-foodbank";
  change.status = "paused";
  absl::StatusOr<v1::Envelope> e = PodChangeEvent(change, 1'000);
  ASSERT_TRUE(e.ok()) << e.status();
  const v1::Envelope judged = Judged(*e);
  EXPECT_EQ(judged.domain(), "banes");  // found from the pod id
  EXPECT_EQ(judged.pod_changed().status(), v1::POD_STATUS_PAUSED);
  EXPECT_FALSE(judged.pod_changed().has_capacity());
  EXPECT_FALSE(judged.pod_changed().has_daily_intake());
  EXPECT_EQ(judged.event_time_ms(), 1'000);
  EXPECT_EQ(judged.producer(), "signpost-cli");

  change.status.clear();
  change.capacity = 0;  // zero is a change (no new work), not "unset"
  e = PodChangeEvent(change, 1'000);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->pod_changed().status(), v1::POD_STATUS_UNSPECIFIED);
  ASSERT_TRUE(e->pod_changed().has_capacity());
  EXPECT_EQ(e->pod_changed().capacity(), 0u);
}

TEST(ControlTest, PodChangeRefusesNothingToDoAndBadValues) {
  PodChange change;
  change.pod_id = "food-bath-foodbank";
  EXPECT_EQ(PodChangeEvent(change, 1).status().code(), absl::StatusCode::kInvalidArgument);
  change.status = "shut";
  EXPECT_NE(PodChangeEvent(change, 1).status().message().find("open, paused or closed"),
            std::string::npos);
  change.status = "open";
  change.pod_id = std::string(129, 'p');
  EXPECT_EQ(PodChangeEvent(change, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ControlTest, ErasureWithoutADomainGoesToEveryDomain) {
  absl::StatusOr<v1::Envelope> e = ErasureEvent("client-7", "uk-gdpr-art17", "", 5);
  ASSERT_TRUE(e.ok()) << e.status();
  const IntakeVerdict verdict = JudgeIntake(e->SerializeAsString(), Banes());
  EXPECT_EQ(verdict.reason, DlqReason::kNone) << verdict.detail;
  EXPECT_TRUE(verdict.every_domain);
  EXPECT_EQ(verdict.envelope.client_erasure_requested().client_ref(), "client-7");
  EXPECT_EQ(verdict.envelope.client_erasure_requested().basis(), "uk-gdpr-art17");
  EXPECT_EQ(ErasureEvent("", "x", "", 5).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ControlTest, RulesChangeCarriesTheCheckedFileWhole) {
  const std::string path = SIGNPOST_EXAMPLE_RULES;
  absl::StatusOr<v1::Envelope> e = RulesChangeEvent(path, "banes", 9);
  ASSERT_TRUE(e.ok()) << e.status();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const v1::Envelope judged = Judged(*e);
  EXPECT_EQ(judged.rules_changed().rules_yaml(), text.str());
  EXPECT_EQ(judged.domain(), "banes");
  EXPECT_FALSE(judged.rules_changed().version().empty());
  EXPECT_NE(text.str().find(judged.rules_changed().version()), std::string::npos);
  // Every call is a new event.
  EXPECT_NE(RulesChangeEvent(path, "banes", 9)->event_id(), e->event_id());
}

TEST(ControlTest, RulesChangeRefusesWhatTheRouterWouldRefuse) {
  const std::string path = ::testing::TempDir() + "/control_test_bad.yaml";
  std::ofstream(path) << "version: x\ntimezone: Europe/London\nneeds: []\npods: []\nsurprise: 1\n";
  absl::StatusOr<v1::Envelope> e = RulesChangeEvent(path, "banes", 9);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find(path + ":"), std::string::npos) << e.status();
  EXPECT_NE(RulesChangeEvent(path + ".missing", "banes", 9).status().message().find("cannot read"),
            std::string::npos);
}

}  // namespace
}  // namespace signpost::services

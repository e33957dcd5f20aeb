// SPDX-License-Identifier: Apache-2.0
// Loading rules: the example rules load, and every kind of mistake is reported with the file,
// line, column and field that caused it.
#include "router/rules.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace signpost::router {
namespace {

using ::testing::HasSubstr;

constexpr char kMinimal[] = R"(version: "v"
triage_need: triage
needs:
  - code: triage
    max_wait: 1d
    escalate_to: duty
    targets: [{name: hub}]
pods:
  - {id: hub, needs: [triage], coverage: ["*"], capacity: 3}
)";

TEST(RulesTest, LoadsTheSecondDomainsExampleRules) {
  std::ifstream in(SIGNPOST_SECOND_EXAMPLE_RULES);
  std::stringstream text;
  text << in.rdbuf();
  auto rules = LoadRules(text.str(), "wiltshire.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->needs.size(), 6u);
  EXPECT_EQ((*rules)->pods.size(), 7u);
}

TEST(RulesTest, LoadsTheExampleRules) {
  std::ifstream in(SIGNPOST_EXAMPLE_RULES);
  std::stringstream text;
  text << in.rdbuf();
  auto rules = LoadRules(text.str(), "banes.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ((*rules)->needs.size(), 18u);
  EXPECT_EQ((*rules)->pods.size(), 19u);
  EXPECT_EQ((*rules)->needs[(*rules)->triage_need].code, "triage");
  // Pods are sorted by id, so ties break on the id.
  EXPECT_TRUE(std::is_sorted((*rules)->pods.begin(), (*rules)->pods.end(),
                             [](const PodRule& a, const PodRule& b) { return a.id < b.id; }));
}

TEST(RulesTest, TargetWithoutPodsTakesEveryPodServingTheNeed) {
  auto rules = LoadRules(kMinimal, "r.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status();
  const NeedRule& triage = (*rules)->need_rules[0];
  ASSERT_EQ(triage.targets.size(), 1u);
  EXPECT_EQ(triage.targets[0].pods.size(), 1u);
  EXPECT_EQ(triage.max_wait_ms, 86'400'000);
  EXPECT_EQ(triage.max_declines, 3u);
}

struct BadRules {
  const char* name;
  std::string from;  // replaced in kMinimal ...
  std::string to;    // ... by this
  const char* error;
};

class RulesErrorTest : public ::testing::TestWithParam<BadRules> {};

TEST_P(RulesErrorTest, NamesLineAndField) {
  const BadRules& c = GetParam();
  std::string yaml = kMinimal;
  const std::size_t at = yaml.find(c.from);
  ASSERT_NE(at, std::string::npos) << c.from;
  yaml.replace(at, c.from.size(), c.to);
  auto rules = LoadRules(yaml, "r.yaml");
  ASSERT_FALSE(rules.ok()) << yaml;
  EXPECT_EQ(rules.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rules.status().message()), HasSubstr(c.error));
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, RulesErrorTest,
    ::testing::Values(
        BadRules{"MissingVersion", "version: \"v\"\n", "", "r.yaml:1:1: version: is required"},
        BadRules{"UnknownTopLevelKey", "version: \"v\"", "version: \"v\"\nvresion: 2",
                 "r.yaml:2:1: vresion: unknown key"},
        BadRules{"BadCapacity", "capacity: 3", "capacity: -3",
                 "r.yaml:9:59: pods[0].capacity: must be a non-negative integer"},
        BadRules{"UnknownNeedOnPod", "needs: [triage]", "needs: [food]",
                 "r.yaml:9:23: pods[0].needs[0]: unknown need \"food\""},
        BadRules{"UnknownPodInTarget", "{name: hub}", "{name: hub, pods: [nope]}",
                 "r.yaml:7:34: needs[0].targets[0].pods[0]: unknown pod \"nope\""},
        BadRules{"BadDuration", "max_wait: 1d", "max_wait: soon",
                 "r.yaml:5:15: needs[0].max_wait: must be a duration"},
        BadRules{"MissingEscalation", "    escalate_to: duty\n", "",
                 "needs[0].escalate_to: is required"},
        BadRules{"UnknownTriageNeed", "triage_need: triage", "triage_need: food",
                 "r.yaml:2:14: triage_need: unknown need \"food\""},
        BadRules{"DuplicateNeed", "pods:", "  - {code: triage, max_wait: 1h, escalate_to: x}\npods:",
                 "needs[1].code: duplicate need \"triage\""},
        BadRules{"DuplicatePod", "capacity: 3}", "capacity: 3}\n  - {id: hub, needs: [triage], "
                 "coverage: [\"*\"], capacity: 1}", "duplicate pod \"hub\""},
        BadRules{"UnknownFlag", "capacity: 3}", "capacity: 3, eligibility: {require_flags: [tall]}}",
                 "pods[0].eligibility.require_flags[0]: unknown value \"tall\""},
        BadRules{"AgeRangeInverted", "capacity: 3}",
                 "capacity: 3, eligibility: {min_age: 65, max_age: 18}}",
                 "pods[0].eligibility.max_age: must not be below min_age"},
        BadRules{"CostForNeedNotServed", "capacity: 3}", "capacity: 3, cost: {food: 2}}",
                 "pods[0].cost.food: is not a need this pod serves"},
        BadRules{"BadHours", "capacity: 3}",
                 "capacity: 3, hours: {days: [mon], open: \"17:00\", close: \"09:00\"}}",
                 "pods[0].hours.close: must be after open"},
        BadRules{"BadIdentifier", "{id: hub,", "{id: Hub Team,",
                 "pods[0].id: must be 1-64 characters"},
        BadRules{"BadStatus", "capacity: 3}", "capacity: 3, status: maybe}",
                 "pods[0].status: must be open, paused or closed"},
        BadRules{"BadTimezone", "version: \"v\"", "version: \"v\"\ntimezone: Mars/Olympus",
                 "timezone: must be Europe/London or UTC"},
        BadRules{"NotYaml", "needs:", "needs: [",
                 "r.yaml:"}),
    [](const ::testing::TestParamInfo<BadRules>& info) { return info.param.name; });

TEST(RulesTest, ParsesDurations) {
  EXPECT_EQ(*ParseDuration("90s"), 90'000);
  EXPECT_EQ(*ParseDuration("30m"), 1'800'000);
  EXPECT_EQ(*ParseDuration("4h"), 14'400'000);
  EXPECT_EQ(*ParseDuration("2d"), 172'800'000);
  EXPECT_FALSE(ParseDuration("4").ok());
  EXPECT_FALSE(ParseDuration("h").ok());
  EXPECT_FALSE(ParseDuration("-1h").ok());
  EXPECT_FALSE(ParseDuration("1w").ok());
}

TEST(RulesTest, PodStatusNamesAreTheRulesFiles) {
  EXPECT_EQ(PodStatusByName("open"), v1::POD_STATUS_OPEN);
  EXPECT_EQ(PodStatusByName("paused"), v1::POD_STATUS_PAUSED);
  EXPECT_EQ(PodStatusByName("closed"), v1::POD_STATUS_CLOSED);
  EXPECT_EQ(PodStatusByName("Paused"), std::nullopt);
  EXPECT_EQ(PodStatusByName(""), std::nullopt);
}

TEST(RulesTest, CoverageSpecificity) {
  Coverage c;
  c.Add("BA1");
  c.Add("ba2");
  c.Add("BS3*");
  EXPECT_EQ(c.Specificity("BA2"), 3u);
  EXPECT_EQ(c.Specificity("BA1"), 3u);
  EXPECT_EQ(c.Specificity("BS31"), 2u);
  EXPECT_EQ(c.Specificity("BS3"), 2u);
  EXPECT_EQ(c.Specificity("BS40"), 0u);
  EXPECT_EQ(c.Specificity("BA"), 0u);    // a code's start is not the code
  EXPECT_EQ(c.Specificity("BA21"), 0u);  // nor is a longer code
  EXPECT_EQ(c.Specificity("BS"), 0u);    // shorter than the prefix
  EXPECT_EQ(c.Specificity(std::string_view("BA1\0", 4)), 0u);
  EXPECT_EQ(c.Specificity(""), 0u);
  c.Add("*");
  EXPECT_EQ(c.Specificity("BS40"), 1u);
}

// Codes and prefixes of 7 bytes are packed into integers, longer ones kept as strings: both
// sides of that line match alike.
TEST(RulesTest, CoverageSpecificityOfLongCodes) {
  Coverage c;
  c.Add("ABCDEFG");      // 7: packed
  c.Add("ABCDEFGH");     // 8: a string
  c.Add("PQRSTUV*");     // a 7-byte prefix, packed
  c.Add("WXYZWXYZW*");   // a 9-byte prefix, a string
  EXPECT_EQ(c.Specificity("ABCDEFG"), 3u);
  EXPECT_EQ(c.Specificity("ABCDEFGH"), 3u);
  EXPECT_EQ(c.Specificity("ABCDEF"), 0u);
  EXPECT_EQ(c.Specificity("ABCDEFGHI"), 0u);
  EXPECT_EQ(c.Specificity("PQRSTUV"), 2u);
  EXPECT_EQ(c.Specificity("PQRSTUVW12"), 2u);
  EXPECT_EQ(c.Specificity("PQRSTU"), 0u);
  EXPECT_EQ(c.Specificity("PQRSTUX"), 0u);
  EXPECT_EQ(c.Specificity("WXYZWXYZW"), 2u);
  EXPECT_EQ(c.Specificity("WXYZWXYZWQ"), 2u);
  EXPECT_EQ(c.Specificity("WXYZWXYZ"), 0u);
  // A prefix holding a NUL byte packs like a shorter one: its length still counts.
  c.Add(std::string_view("Q\0*", 3));
  EXPECT_EQ(c.Specificity("Q"), 0u);
  EXPECT_EQ(c.Specificity(std::string_view("Q\0Z", 3)), 2u);
}

}  // namespace
}  // namespace signpost::router

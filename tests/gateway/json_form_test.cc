// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/json_form.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace signpost::services::gateway {
namespace {

using nlohmann::json;

std::vector<std::string> Fields(const std::vector<FieldProblem>& problems) {
  std::vector<std::string> out;
  for (const FieldProblem& p : problems) out.push_back(p.field);
  return out;
}

TEST(JsonFormTest, ReadsProtoNamesCamelCaseEnumsAndNumbersAsStrings) {
  const json j = json::parse(R"({
    "referral_id": "r-1", "clientRef": "c-1", "source": "SOURCE_GP_PRACTICE",
    "needs": [{"code": " Food "}, {"code": "housing", "urgency": 3}],
    "urgency": "URGENCY_URGENT", "postcode_outward": "ba2", "birthYear": "1948",
    "flags": ["CLIENT_FLAG_SHIELDING"], "consent": ["CONSENT_SCOPE_SHARE_WITH_PODS"],
    "payload": {"ciphertext": "AAEC", "key_version": 2}
  })");
  v1::ReferralSubmitted r;
  std::vector<FieldProblem> problems;
  ReferralFromJson(j, r, problems);
  ASSERT_TRUE(problems.empty()) << problems[0].field << " " << problems[0].problem;
  EXPECT_EQ(r.client_ref(), "c-1");
  EXPECT_EQ(r.needs(0).code(), "food") << "normalised by the shared checks";
  EXPECT_EQ(r.needs(1).urgency(), v1::URGENCY_URGENT);
  EXPECT_EQ(r.postcode_outward(), "BA2");
  EXPECT_EQ(r.birth_year(), 1948u);
  EXPECT_EQ(r.payload().ciphertext(), std::string("\x00\x01\x02", 3));
}

TEST(JsonFormTest, NamesEveryBadFieldAtOnce) {
  const json j = json::parse(R"({
    "referral_id": 7, "client_ref": "", "source": "SOURCE_FAX",
    "needs": [{"code": "food"}, {"code": ["x"]}], "birth_year": -4,
    "postcode_outward": "not a postcode", "favourite_colour": "blue",
    "flags": "CLIENT_FLAG_SHIELDING", "payload": {"ciphertext": "***"}
  })");
  v1::ReferralSubmitted r;
  std::vector<FieldProblem> problems;
  ReferralFromJson(j, r, problems);
  EXPECT_THAT(Fields(problems),
              ::testing::UnorderedElementsAre("/referral_id", "/client_ref", "/source",
                                              "/needs/1/code", "/birth_year", "/postcode_outward",
                                              "/favourite_colour", "/flags",
                                              "/payload/ciphertext"));
}

TEST(JsonFormTest, PodResponseOneofAllowsOnlyOne) {
  v1::PodResponse r;
  std::vector<FieldProblem> problems;
  PodResponseFromJson(json::parse(R"({"referral_id": "r", "pod_id": "p", "need_code": "food",
                                      "accepted": {}, "declined": {"reason": "DECLINE_REASON_OTHER"}})"),
                      r, problems);
  EXPECT_THAT(Fields(problems), ::testing::ElementsAre("/declined"));
  problems.clear();
  v1::PodResponse none;
  PodResponseFromJson(json::parse(R"({"referral_id": "r", "pod_id": "p"})"), none, problems);
  EXPECT_THAT(Fields(problems), ::testing::ElementsAre("/"));
}

TEST(JsonFormTest, NotAnObject) {
  v1::ReferralSubmitted r;
  std::vector<FieldProblem> problems;
  ReferralFromJson(json::parse("[1]"), r, problems);
  EXPECT_EQ(Fields(problems).at(0), "/");
}

}  // namespace
}  // namespace signpost::services::gateway

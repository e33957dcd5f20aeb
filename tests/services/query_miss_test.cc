// SPDX-License-Identifier: Apache-2.0
// What an instance answers for an id it does not hold: 307 to the owner, 503 while the owner is
// changing hands, 404 only when the data cannot be elsewhere.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/service.h"

namespace signpost::services {
namespace {

// The group's member list as the coordinator gives it, and the ages the caller asked for.
struct FakeDirectory {
  std::vector<std::map<int, std::string>> answers;  // one per lookup; the last one repeats
  std::vector<std::chrono::milliseconds> asked;
  OwnerLookup Lookup() {
    return [this](int partition, std::chrono::milliseconds max_age) -> std::optional<std::string> {
      const std::map<int, std::string>& list =
          answers[std::min(asked.size(), answers.size() - 1)];
      asked.push_back(max_age);
      auto it = list.find(partition);
      return it == list.end() ? std::nullopt : std::optional(it->second);
    };
  }
};

const QueryMiss kOwnsOne{{1}, {0, 1}, "10.0.0.2:8080"};

TEST(AnswerMissTest, RedirectsToTheOwnerOfTheOtherDomainPartition) {
  FakeDirectory directory{{{{0, "10.0.0.1:8080"}, {1, "10.0.0.2:8080"}}}};
  const HttpResponse r = AnswerMiss("referral", "/v1/referrals/r7", kOwnsOne, directory.Lookup());
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.location, "http://10.0.0.1:8080/v1/referrals/r7");
  EXPECT_EQ(nlohmann::json::parse(r.body)["partition"], 0);
  EXPECT_EQ(directory.asked.size(), 1u);  // the cached list served
}

TEST(AnswerMissTest, AnOwnerUnknownMidRebalanceIsRetryableNotNotFound) {
  FakeDirectory directory{{{{1, "10.0.0.2:8080"}}}};  // partition 0: no assignment listed
  const HttpResponse r = AnswerMiss("referral", "/v1/referrals/r7", kOwnsOne, directory.Lookup());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.retry_after_s, 1);
  EXPECT_EQ(nlohmann::json::parse(r.body)["owned_partitions"], nlohmann::json::array({1}));
  // It asked again with a short maximum age before answering.
  ASSERT_EQ(directory.asked.size(), 2u);
  EXPECT_LT(directory.asked[1], directory.asked[0]);
}

TEST(AnswerMissTest, AStaleListNamingThisInstanceIsAskedAgain) {
  // The cached list is from before this instance lost partition 0; the fresh one names the owner.
  FakeDirectory directory{{{{0, "10.0.0.2:8080"}, {1, "10.0.0.2:8080"}},
                           {{0, "10.0.0.1:8080"}, {1, "10.0.0.2:8080"}}}};
  const HttpResponse r = AnswerMiss("client", "/v1/clients/c7", kOwnsOne, directory.Lookup());
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.location, "http://10.0.0.1:8080/v1/clients/c7");
  // Still naming this instance after the second look: retry, not 404.
  FakeDirectory stale{{{{0, "10.0.0.2:8080"}, {1, "10.0.0.2:8080"}}}};
  EXPECT_EQ(AnswerMiss("client", "/v1/clients/c7", kOwnsOne, stale.Lookup()).status, 503);
}

TEST(AnswerMissTest, NotFoundWhenTheDataCannotBeElsewhere) {
  FakeDirectory directory{{{{0, "10.0.0.1:8080"}, {1, "10.0.0.2:8080"}}}};
  // Every domain partition is ours.
  HttpResponse r = AnswerMiss("referral", "/v1/referrals/x", {{0, 1}, {0, 1}, "10.0.0.2:8080"},
                              directory.Lookup());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.retry_after_s, 0);
  // The other partition's owner advertises no query address.
  FakeDirectory silent{{{{0, ""}, {1, "10.0.0.2:8080"}}}};
  r = AnswerMiss("referral", "/v1/referrals/x", kOwnsOne, silent.Lookup());
  EXPECT_EQ(r.status, 404) << r.body;
  // This instance advertises nothing: nobody can be redirected to, so no retry either.
  r = AnswerMiss("referral", "/v1/referrals/x", {{1}, {0, 1}, ""}, directory.Lookup());
  EXPECT_EQ(r.status, 404);
  // The domains are spread over several other partitions: the body names them.
  r = AnswerMiss("referral", "/v1/referrals/x", {{1}, {0, 1, 2}, "10.0.0.2:8080"},
                 directory.Lookup());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(nlohmann::json::parse(r.body)["other_partitions"], nlohmann::json::array({0, 2}));
}

TEST(AnswerMissTest, NothingOwnedAndNothingKnownYetIsRetryable) {
  FakeDirectory directory{{{}}};
  const HttpResponse r =
      AnswerMiss("referral", "/v1/referrals/x", {{}, {}, "10.0.0.2:8080"}, directory.Lookup());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.retry_after_s, 1);
}

}  // namespace
}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
// Several routing domains in one log partition: each decides over its own pods and clients, a
// Tick without a domain reaches every one, and a domain not routed here changes nothing.
#include "router/domain_routers.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/events.h"

namespace signpost::router {
namespace {

using ::testing::ElementsAre;

// The same need in two domains, one pod each with room for one referral.
std::string RulesFor(const std::string& pod) {
  return "version: t\ntimezone: UTC\ntriage_need: food\nneeds:\n"
         "  - {code: food, max_wait: 1h, escalate_to: duty, targets: [{name: hub, pods: [" +
         pod + "]}]}\npods:\n  - {id: " + pod +
         ", needs: [food], coverage: [\"*\"], capacity: 1, accept_timeout: 30m}\n";
}

class DomainRoutersTest : public ::testing::Test {
 protected:
  DomainRoutersTest()
      : routers_([this](const std::string& domain) -> absl::StatusOr<std::unique_ptr<Router>> {
          if (domain != "north" && domain != "south") {
            return absl::NotFoundError("not routed here");
          }
          ++made_;
          auto rules = LoadRules(RulesFor(domain + "-food"), domain);
          if (!rules.ok()) {
            return rules.status();
          }
          return std::make_unique<Router>(*rules, stores_[domain]);
        }) {}

  // Applies `e` in `domain` (none: as it is) at the next offset; the decisions' types.
  std::vector<std::string> Apply(v1::Envelope e, const char* domain) {
    if (domain != nullptr) {
      e.set_domain(domain);
    }
    out_.Clear();
    last_ = routers_.Apply(e, Offset(offset_++), out_);
    std::vector<std::string> kinds;
    for (std::size_t i = 0; i < out_.size(); ++i) {
      kinds.push_back(absl::StrCat(out_[i].domain(), ":",
                                   out_[i].has_routed()    ? "routed:" + out_[i].routed().pod_id()
                                   : out_[i].has_queued()  ? "queued"
                                   : out_[i].has_released() ? "released"
                                                            : "other"));
    }
    return kinds;
  }

  testing::EventFactory events_;
  std::map<std::string, InMemoryClientStore> stores_;
  DomainRouters routers_;
  DecisionBuffer out_;
  std::int64_t offset_ = 0;
  int made_ = 0;
  absl::Status last_;
};

TEST_F(DomainRoutersTest, EachDomainDecidesOverItsOwnCapacity) {
  EXPECT_THAT(Apply(events_.Referral("n1", "c1", {"food"}), "north"),
              ElementsAre("north:routed:north-food"));
  // The south's pod is free although the north's is full.
  EXPECT_THAT(Apply(events_.Referral("s1", "c2", {"food"}), "south"),
              ElementsAre("south:routed:south-food"));
  EXPECT_THAT(Apply(events_.Referral("n2", "c3", {"food"}), "north"), ElementsAre("north:queued"));
  EXPECT_EQ(made_, 2);
  // Client records stay in their domain's store.
  EXPECT_NE(stores_["north"].Find("c1"), nullptr);
  EXPECT_EQ(stores_["south"].Find("c1"), nullptr);
  ASSERT_EQ(routers_.Applied().size(), 1u);
  EXPECT_EQ(*routers_.Applied()[0].domain, "north");
}

TEST_F(DomainRoutersTest, ATickWithoutADomainReachesEveryDomain) {
  static_cast<void>(Apply(events_.Referral("n1", "c1", {"food"}), "north"));
  static_cast<void>(Apply(events_.Referral("s1", "c2", {"food"}), "south"));
  events_.Advance(31 * 60'000);  // past both accept timeouts
  v1::Envelope tick = events_.Tick();
  tick.clear_domain();
  // Both offers time out; each domain's decision carries its own domain (so ids stay unique).
  const std::vector<std::string> got = Apply(tick, nullptr);
  EXPECT_EQ(std::count(got.begin(), got.end(), "north:released"), 1) << ::testing::PrintToString(got);
  EXPECT_EQ(std::count(got.begin(), got.end(), "south:released"), 1) << ::testing::PrintToString(got);
  EXPECT_EQ(routers_.Applied().size(), 2u);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < out_.size(); ++i) {
    EXPECT_TRUE(ids.insert(out_[i].event_id()).second) << out_[i].event_id();
  }
}

TEST_F(DomainRoutersTest, ADomainNotRoutedHereChangesNothing) {
  static_cast<void>(Apply(events_.Referral("n1", "c1", {"food"}), "north"));
  EXPECT_TRUE(Apply(events_.Referral("w1", "c9", {"food"}), "west").empty());
  EXPECT_TRUE(absl::IsNotFound(last_)) << last_;
  EXPECT_TRUE(routers_.Applied().empty());
  EXPECT_EQ(routers_.all().size(), 1u);
  EXPECT_EQ(routers_.Find("west"), nullptr);
}

TEST_F(DomainRoutersTest, ARecordAtOrBelowADomainsLastOffsetChangesNothing) {
  static_cast<void>(Apply(events_.Referral("n1", "c1", {"food"}), "north"));
  v1::Envelope again = events_.Referral("n2", "c2", {"food"});
  again.set_domain("north");
  out_.Clear();
  ASSERT_TRUE(routers_.Apply(again, Offset(0), out_).ok());
  EXPECT_EQ(out_.size(), 0u);
  EXPECT_TRUE(routers_.Applied().empty());
}

}  // namespace
}  // namespace signpost::router

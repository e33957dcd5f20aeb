// SPDX-License-Identifier: Apache-2.0
// The B&NES Community Wellbeing Hub, April-June 2020, replayed through the routing core with the
// example rules (examples/rules/banes.yaml): the 1,463 pod referrals of the report's Figure U7 in
// their monthly mix, pods that accept within 20 minutes and complete after a need-typical time,
// a housing pod that declines every fourth offer, and then a spring-surge day with a bulk
// shielding-list import on top of 1.7x the May daily average.
#include <cstdint>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <queue>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router/local_time.h"
#include "router/router.h"
#include "tests/testing/events.h"

namespace signpost::router {
namespace {

constexpr std::int64_t kMinute = 60'000;
constexpr std::int64_t kHour = 60 * kMinute;
constexpr std::int64_t kDay = 24 * kHour;

// Figure U7, "Pod referrals April to June 2020": need code, April, May, June.
struct AreaCounts {
  const char* need;  // "" is the report's "(blank)"
  int month[3];
};
constexpr AreaCounts kU7[] = {
    {"community-volunteer", {93, 444, 83}}, {"food", {32, 146, 30}},
    {"enhanced-triage", {12, 123, 24}},     {"logistics-transport", {19, 115, 14}},
    {"shielding-welfare-check", {0, 15, 121}}, {"mental-wellbeing", {5, 58, 14}},
    {"money-work", {13, 45, 12}},           {"housing", {2, 11, 2}},
    {"general-wellbeing", {2, 6, 1}},       {"public-health", {0, 5, 1}},
    {"council-services", {0, 5, 0}},        {"social-care", {1, 2, 0}},
    {"discharge-support", {0, 1, 1}},       {"family-support", {0, 2, 0}},
    {"health-access", {0, 1, 0}},           {"social-prescribing", {0, 1, 0}},
    {"", {1, 0, 0}},
};

std::int64_t HoursToComplete(const std::string& need) {
  static const std::map<std::string, std::int64_t> kHours = {
      {"community-volunteer", 24}, {"food", 4},           {"enhanced-triage", 24},
      {"logistics-transport", 6},  {"shielding-welfare-check", 4}, {"mental-wellbeing", 72},
      {"money-work", 48},          {"housing", 120},      {"general-wellbeing", 48},
      {"public-health", 2},        {"council-services", 48}, {"social-care", 48},
      {"discharge-support", 24},   {"family-support", 72}, {"health-access", 48},
      {"social-prescribing", 120}, {"triage", 2}};
  return kHours.at(need) * kHour;
}

std::string ReadRules() {
  std::ifstream in(SIGNPOST_EXAMPLE_RULES);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A discrete-event run: scheduled inputs in time order, a Tick every 15 minutes, and pods that
// answer what the router decides.
class HubSimulation {
 public:
  explicit HubSimulation(std::int64_t start_ms) : events_(start_ms), tick_at_(start_ms) {
    auto rules = LoadRules(ReadRules(), "banes.yaml");
    EXPECT_TRUE(rules.ok()) << rules.status();
    router_ = std::make_unique<Router>(*rules, clients_);
  }

  void Schedule(std::int64_t at, v1::Envelope event) {
    queue_.push({at, seq_++, std::move(event)});
  }

  // A referral with one need for a client drawn from a population skewed to older people.
  void ScheduleReferral(std::int64_t at, int n, const std::string& need) {
    static const char* kOutward[] = {"BA1", "BA2", "BA2", "BA1", "BA3", "BS31", "BS39", "BS40"};
    const std::string client = "client-" + std::to_string((n * 7919) % 1200);
    v1::Envelope e = events_.Referral("ref-" + std::to_string(n), client,
                                      {need.c_str()}, kOutward[n % 8]);
    e.mutable_referral_submitted()->set_birth_year(1925 + static_cast<std::uint32_t>(n % 70));
    if (n % 10 == 0) {
      no_volunteer_consent_ += need == "community-volunteer";
      e.mutable_referral_submitted()->clear_consent();
      e.mutable_referral_submitted()->add_consent(v1::CONSENT_SCOPE_SHARE_WITH_PODS);
    }
    Schedule(at, std::move(e));
  }

  // Runs everything scheduled up to `until`, ticking every 15 minutes.
  void RunUntil(std::int64_t until) {
    while (true) {
      const bool tick_next = queue_.empty() || tick_at_ <= queue_.top().at;
      const std::int64_t at = tick_next ? tick_at_ : queue_.top().at;
      if (at > until) {
        return;
      }
      events_.SetNow(at);
      if (tick_next) {
        Apply(events_.Tick());
        tick_at_ += 15 * kMinute;
      } else {
        v1::Envelope e = queue_.top().event;
        queue_.pop();
        e.set_event_time_ms(at);
        Apply(e);
      }
    }
  }

  void Apply(const v1::Envelope& event) {
    out_.Clear();
    ASSERT_TRUE(router_->Apply(event, Offset(offset_++), out_).ok());
    for (const PodFigures& pod : router_->Pods()) {
      ASSERT_LE(pod.open_cost, pod.capacity) << pod.id;  // no live capacity changes here
    }
    for (std::size_t i = 0; i < out_.size(); ++i) {
      Observe(out_[i]);
    }
  }

  void Observe(const v1::Envelope& d) {
    const std::int64_t now = d.event_time_ms();
    if (d.has_routed()) {
      const v1::Routed& r = d.routed();
      const std::string key = r.referral_id() + "/" + r.need_code();
      if (first_decision_.emplace(key, "routed").second) {
        ++first_by_need_[r.need_code()];
      }
      ++routed_by_target_[r.target_name()];
      waited_ms_.push_back(r.waited_ms());
      if (r.pod_id() == "housing-dhi-curo" && ++housing_offers_ % 4 == 0) {
        Schedule(now + 20 * kMinute, events_.Decline(r.referral_id(), r.need_code(), r.pod_id()));
        return;
      }
      Schedule(now + 20 * kMinute, events_.Accept(r.referral_id(), r.need_code(), r.pod_id()));
      Schedule(now + 20 * kMinute + HoursToComplete(r.need_code()),
               events_.Complete(r.referral_id(), r.need_code(), r.pod_id()));
    } else if (d.has_queued()) {
      const std::string key = d.queued().referral_id() + "/" + d.queued().need_code();
      if (first_decision_.emplace(key, "queued").second) {
        ++first_by_need_[d.queued().need_code()];
      }
      ++queued_;
    } else if (d.has_escalated()) {
      const std::string key = d.escalated().referral_id() + "/" + d.escalated().need_code();
      if (first_decision_.emplace(key, "escalated").second) {
        ++first_by_need_[d.escalated().need_code()];
      }
      ++escalated_[d.escalated().escalation_target()];
      ++escalated_by_need_[d.escalated().need_code()];
    } else if (d.has_released() && d.released().reason() == v1::RELEASE_REASON_COMPLETED) {
      ++completed_;
    } else if (d.has_rejected()) {
      ++rejected_[d.rejected().reason()];
    }
  }

  testing::EventFactory events_;
  InMemoryClientStore clients_;
  std::unique_ptr<Router> router_;
  DecisionBuffer out_;
  std::int64_t offset_ = 0;
  std::int64_t tick_at_;

  struct Scheduled {
    std::int64_t at;
    std::uint64_t seq;
    v1::Envelope event;
    bool operator>(const Scheduled& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
  };
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> queue_;
  std::uint64_t seq_ = 0;

  std::map<std::string, std::string> first_decision_;  // need key -> first outcome
  std::map<std::string, int> first_by_need_;
  std::map<std::string, int> routed_by_target_;
  std::map<std::string, int> escalated_;
  std::map<std::string, int> escalated_by_need_;
  int no_volunteer_consent_ = 0;
  std::map<int, int> rejected_;
  std::vector<std::int64_t> waited_ms_;
  int queued_ = 0;
  int completed_ = 0;
  int housing_offers_ = 0;
};

std::int64_t Date(int y, int m, int d) { return DaysFromCivil(y, m, d) * kDay; }

TEST(BanesScenarioTest, AprilToJune2020RoutesEveryReferralInTheReportedMix) {
  HubSimulation hub(Date(2020, 4, 1) + 8 * kHour);
  const int days_in[3] = {30, 31, 30};
  const int month_of[3] = {4, 5, 6};
  int n = 0;
  std::map<std::string, int> expected_by_need;
  for (int m = 0; m < 3; ++m) {
    // Each area's referrals spread evenly over the month's days, 09:00-17:00 BST.
    for (const AreaCounts& area : kU7) {
      const int count = area.month[m];
      for (int i = 0; i < count; ++i) {
        const int day = i * days_in[m] / count;
        const std::int64_t at = Date(2020, month_of[m], 1 + day) + 8 * kHour +
                                (i * 37 % 480) * kMinute;  // 09:00-17:00 local (UTC+1)
        hub.ScheduleReferral(at, n++, area.need);
      }
      expected_by_need[area.need[0] == '\0' ? "triage" : area.need] += count;
    }
  }
  ASSERT_EQ(n, 1463);
  hub.RunUntil(Date(2020, 7, 31));
  if (::testing::Test::HasFatalFailure()) {
    return;
  }

  // Every need got exactly one first decision, in the reported mix (blank -> triage).
  EXPECT_EQ(hub.first_decision_.size(), 1463u);
  EXPECT_EQ(hub.first_by_need_, expected_by_need);
  EXPECT_EQ(hub.first_by_need_["enhanced-triage"], 159);
  EXPECT_EQ(hub.first_by_need_["community-volunteer"], 620);
  // A month after the last referral nothing is open: each need was completed or escalated.
  EXPECT_EQ(hub.router_->OpenNeedCount(), 0u);
  int escalated = 0;
  for (const auto& [target, count] : hub.escalated_) {
    escalated += count;
  }
  EXPECT_EQ(hub.completed_ + escalated, 1463);
  // Escalations are explained: volunteer needs of clients who gave no volunteer-contact consent
  // wait for it and escalate to enhanced triage after 3 days; housing escalates to the MDT after
  // two declines.
  EXPECT_EQ(hub.escalated_by_need_["community-volunteer"], hub.no_volunteer_consent_);
  EXPECT_EQ(escalated, hub.escalated_by_need_["community-volunteer"] +
                           hub.escalated_by_need_["housing"]);
  EXPECT_TRUE(hub.router_->CheckInvariants().ok());
  // Repeat clients share one record each.
  EXPECT_LT(hub.clients_.ClientCount(), 1463u);
  std::ostringstream summary;
  summary << "completed " << hub.completed_ << ", queued decisions " << hub.queued_
          << ", clients " << hub.clients_.ClientCount();
  for (const auto& [target, count] : hub.routed_by_target_) {
    summary << ", routed via " << target << " " << count;
  }
  for (const auto& [target, count] : hub.escalated_) {
    summary << ", escalated to " << target << " " << count;
  }
  RecordProperty("summary", summary.str());
  std::cout << summary.str() << "\n";
}

TEST(BanesScenarioTest, SpringSurgeDayWithABulkShieldingImport) {
  HubSimulation hub(Date(2020, 5, 12) + 7 * kHour);  // Tuesday 12 May 2020, 08:00 BST
  const std::int64_t day = Date(2020, 5, 12);
  int n = 0;
  // 1.7 x the May average of 32 pod referrals a day, in May's mix, over 09:00-17:00.
  // Largest remainders, so the 54 keep May's proportions.
  std::vector<int> counts;
  std::vector<std::pair<int, int>> remainders;  // remainder, area
  int assigned = 0;
  for (int a = 0; a < static_cast<int>(std::size(kU7)); ++a) {
    counts.push_back(kU7[a].month[1] * 54 / 980);
    remainders.emplace_back(-(kU7[a].month[1] * 54 % 980), a);
    assigned += counts.back();
  }
  std::sort(remainders.begin(), remainders.end());
  for (int k = 0; assigned < 54; ++k, ++assigned) {
    ++counts[remainders[k].second];
  }
  int surge = 0;
  for (int a = 0; a < static_cast<int>(std::size(kU7)); ++a) {
    const AreaCounts& area = kU7[a];
    for (int i = 0; i < counts[a]; ++i) {
      hub.ScheduleReferral(day + 8 * kHour + (surge * 8 % 480) * kMinute, n++, area.need);
      ++surge;
    }
  }
  // The shielding list: 300 welfare checks land at 10:00 at once.
  for (int i = 0; i < 300; ++i) {
    hub.ScheduleReferral(day + 9 * kHour, n++, "shielding-welfare-check");
  }
  hub.RunUntil(day + 3 * kDay);
  if (::testing::Test::HasFatalFailure()) {
    return;
  }
  EXPECT_EQ(surge, 54);
  EXPECT_EQ(hub.first_decision_.size(), static_cast<std::size_t>(n));
  // The welfare pod holds 25 at once: most of the list waits first ...
  EXPECT_GE(hub.first_by_need_["shielding-welfare-check"], 300);
  EXPECT_GT(hub.queued_, 250);
  // ... and after 6 h moves on to volunteer overflow; by the end nothing waits unexplained.
  EXPECT_GT(hub.routed_by_target_["volunteer-overflow"], 0);
  const NeedIndex welfare = hub.router_->rules().need_index.at("shielding-welfare-check");
  EXPECT_EQ(hub.router_->QueuedCount(welfare), 0u);
  EXPECT_TRUE(hub.router_->CheckInvariants().ok());
}

}  // namespace
}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
// The routing core, one lifecycle path per test, on a small hand-written rule set.
#include "router/router.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/events.h"

namespace signpost::router {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kRules[] = R"(
version: "t1"
timezone: UTC
triage_need: triage
needs:
  - code: triage
    max_wait: 1d
    escalate_to: duty-manager
    targets: [{name: hub, pods: [triage-team]}]
  - code: food
    max_wait: 2d
    escalate_to: enhanced-triage
    max_declines: 2
    targets:
      - {name: local, pods: [food-bath, food-keynsham], max_wait: 4h}
      - {name: county, pods: [food-county]}
  - code: housing
    max_wait: 1d
    escalate_to: mdt
    targets: [{name: county}]
  - code: money
    max_wait: 3d
    escalate_to: enhanced-triage
    targets: [{name: county}]
  - code: befriending
    max_wait: 3d
    escalate_to: enhanced-triage
    targets: [{name: local}]
  - code: safeguarding
    max_wait: 1h
    escalate_to: statutory
pods:
  - {id: triage-team, needs: [triage], coverage: ["*"], capacity: 5}
  - {id: food-bath, needs: [food], coverage: [BA1, BA2], capacity: 1, accept_timeout: 2h}
  - {id: food-keynsham, needs: [food], coverage: [BS31], capacity: 1}
  - {id: food-county, needs: [food], coverage: ["*"], capacity: 1}
  - {id: housing, needs: [housing], coverage: ["*"], capacity: 3, cost: {housing: 2}}
  - {id: over-65s, needs: [housing], coverage: ["BA*"], capacity: 1, weight: 5,
     eligibility: {min_age: 65}}
  - id: money-advice
    needs: [money]
    coverage: ["*"]
    capacity: 5
    hours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
  - id: volunteers
    needs: [befriending]
    coverage: ["*"]
    capacity: 5
    eligibility: {consent: [volunteer-contact]}
    data_scope: [postcode_outward]
)";

std::shared_ptr<const Rules> TestRules() {
  auto rules = LoadRules(kRules, "test-rules");
  EXPECT_TRUE(rules.ok()) << rules.status();
  return *rules;
}

class RouterTest : public ::testing::Test {
 protected:
  // Applies `event` at the next offset and returns its decisions.
  std::vector<v1::Envelope> Apply(const v1::Envelope& event) {
    DecisionBuffer out;
    auto result = router_->Apply(event, Offset(next_offset_++), out);
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(router_->CheckInvariants().ok()) << router_->CheckInvariants();
    std::vector<v1::Envelope> decisions;
    for (std::size_t i = 0; i < out.size(); ++i) {
      decisions.push_back(out[i]);
    }
    return decisions;
  }

  std::vector<v1::Envelope> Refer(const std::string& id, const std::string& client,
                                  std::initializer_list<const char*> needs,
                                  const std::string& outward = "BA2") {
    return Apply(events_.Referral(id, client, needs, outward));
  }

  std::vector<v1::Envelope> AdvanceAndTick(std::int64_t ms) {
    events_.Advance(ms);
    return Apply(events_.Tick());
  }

  static constexpr std::int64_t kHour = 3'600'000;

  InMemoryClientStore clients_;
  std::unique_ptr<Router> router_ = std::make_unique<Router>(TestRules(), clients_);
  const Rules& rules() const { return router_->rules(); }
  testing::EventFactory events_;
  std::int64_t next_offset_ = 0;
};

MATCHER_P2(RoutedTo, referral, pod, "") {
  return arg.has_routed() && arg.routed().referral_id() == referral && arg.routed().pod_id() == pod;
}
MATCHER_P2(QueuedFor, referral, reason, "") {
  return arg.has_queued() && arg.queued().referral_id() == referral &&
         arg.queued().reason() == reason;
}
MATCHER_P2(EscalatedTo, target, reason, "") {
  return arg.has_escalated() && arg.escalated().escalation_target() == target &&
         arg.escalated().reason() == reason;
}
MATCHER_P2(ReleasedFrom, pod, reason, "") {
  return arg.has_released() && arg.released().pod_id() == pod && arg.released().reason() == reason;
}
MATCHER_P(RejectedFor, reason, "") { return arg.has_rejected() && arg.rejected().reason() == reason; }

TEST_F(RouterTest, RoutesToTheLocalPodFirstAndExplainsWhy) {
  auto d = Refer("r1", "c1", {"food"});
  ASSERT_THAT(d, ElementsAre(RoutedTo("r1", "food-bath")));
  const v1::Routed& routed = d[0].routed();
  EXPECT_EQ(routed.target_step(), 0u);
  EXPECT_EQ(routed.target_name(), "local");
  EXPECT_EQ(routed.score().locality_specificity(), 3u);
  EXPECT_EQ(routed.attempt(), 1u);
  EXPECT_EQ(routed.accept_by_ms(), events_.Now() + 2 * kHour);
  ASSERT_THAT(routed.rejected(), SizeIs(1));
  EXPECT_EQ(routed.rejected(0).pod_id(), "food-keynsham");
  EXPECT_EQ(routed.rejected(0).reason(), v1::CANDIDATE_REJECTION_OUTSIDE_COVERAGE);
  EXPECT_EQ(d[0].event_id(), "banes/0/0");  // domain / log offset / index
}

TEST_F(RouterTest, WaitsWhenLocalPodsAreFullThenMovesToTheNextTarget) {
  Refer("r1", "c1", {"food"});
  auto d = Refer("r2", "c2", {"food"});
  ASSERT_THAT(d, ElementsAre(QueuedFor("r2", v1::PENDING_REASON_ALL_AT_CAPACITY)));
  EXPECT_EQ(d[0].queued().next_step_at_ms(), events_.Now() + 4 * kHour);
  EXPECT_EQ(d[0].queued().escalate_at_ms(), events_.Now() + 48 * kHour);
  EXPECT_THAT(AdvanceAndTick(kHour), IsEmpty());
  // r1's accept timeout (2h) falls first: it re-routes to the county pod.
  auto timeout = AdvanceAndTick(kHour);
  EXPECT_THAT(timeout, ElementsAre(ReleasedFrom("food-bath", v1::RELEASE_REASON_ACCEPT_TIMEOUT),
                                   RoutedTo("r1", "food-county"), RoutedTo("r2", "food-bath")));
}

TEST_F(RouterTest, MovesOnAfterTheStepWait) {
  Refer("r1", "c1", {"food"});
  Apply(events_.Accept("r1", "food", "food-bath"));
  Refer("r2", "c2", {"food"});
  auto d = AdvanceAndTick(4 * kHour);
  ASSERT_THAT(d, ElementsAre(RoutedTo("r2", "food-county")));
  EXPECT_EQ(d[0].routed().target_name(), "county");
  EXPECT_EQ(d[0].routed().waited_ms(), 4 * kHour);
}

// Timers due at the same instant fire in (time, arrival) order whatever their kind: r2's step
// deadline (the earlier need) before r3's accept timeout, so r2 takes the one county place.
TEST_F(RouterTest, TimersDueTogetherFireInArrivalOrderAcrossKinds) {
  Refer("r1", "c1", {"food"}, "BS31");  // food-keynsham: full now, no accept timeout
  ASSERT_THAT(Refer("r2", "c2", {"food"}, "BS31"),
              ElementsAre(QueuedFor("r2", v1::PENDING_REASON_ALL_AT_CAPACITY)));  // step: 4h
  events_.Advance(2 * kHour);
  ASSERT_THAT(Refer("r3", "c3", {"food"}), ElementsAre(RoutedTo("r3", "food-bath")));  // 2h more
  auto d = AdvanceAndTick(2 * kHour);
  EXPECT_THAT(d, ElementsAre(RoutedTo("r2", "food-county"),
                             ReleasedFrom("food-bath", v1::RELEASE_REASON_ACCEPT_TIMEOUT),
                             QueuedFor("r3", v1::PENDING_REASON_ALL_AT_CAPACITY)));
}

TEST_F(RouterTest, PlacesAWaitingNeedTheMomentCapacityFrees) {
  Refer("r1", "c1", {"food"});
  Apply(events_.Accept("r1", "food", "food-bath"));
  Refer("r2", "c2", {"food"});
  auto d = Apply(events_.Complete("r1", "food", "food-bath"));
  EXPECT_THAT(d, ElementsAre(ReleasedFrom("food-bath", v1::RELEASE_REASON_COMPLETED),
                             RoutedTo("r2", "food-bath")));
}

TEST_F(RouterTest, QueueOrdersByUrgencyThenArrival) {
  Refer("r1", "c1", {"food"});
  Apply(events_.Accept("r1", "food", "food-bath"));
  Refer("r2", "c2", {"food"});
  v1::Envelope urgent = events_.Referral("r3", "c3", {"food"});
  urgent.mutable_referral_submitted()->set_urgency(v1::URGENCY_URGENT);
  Apply(urgent);
  v1::Envelope urgent2 = events_.Referral("r4", "c4", {"food"});
  urgent2.mutable_referral_submitted()->set_urgency(v1::URGENCY_URGENT);
  Apply(urgent2);
  EXPECT_THAT(Apply(events_.Complete("r1", "food", "food-bath")),
              ElementsAre(ReleasedFrom("food-bath", v1::RELEASE_REASON_COMPLETED),
                          RoutedTo("r3", "food-bath")));
  Apply(events_.Accept("r3", "food", "food-bath"));
  EXPECT_THAT(Apply(events_.Complete("r3", "food", "food-bath")),
              ElementsAre(ReleasedFrom("food-bath", v1::RELEASE_REASON_COMPLETED),
                          RoutedTo("r4", "food-bath")));
}

TEST_F(RouterTest, DeclineReroutesWithoutThatPodAndEscalatesAfterMaxDeclines) {
  Refer("r1", "c1", {"food"});
  auto first = Apply(events_.Decline("r1", "food", "food-bath"));
  ASSERT_THAT(first, ElementsAre(ReleasedFrom("food-bath", v1::RELEASE_REASON_DECLINED),
                                 RoutedTo("r1", "food-county")));
  EXPECT_EQ(first[1].routed().attempt(), 2u);
  auto second = Apply(events_.Decline("r1", "food", "food-county"));
  EXPECT_THAT(second, ElementsAre(ReleasedFrom("food-county", v1::RELEASE_REASON_DECLINED),
                                  EscalatedTo("enhanced-triage",
                                              v1::ESCALATION_REASON_TOO_MANY_DECLINES)));
  EXPECT_EQ(router_->OpenNeedCount(), 0u);
}

TEST_F(RouterTest, EscalatesWhenTheNeedWaitedTooLong) {
  Refer("r1", "c1", {"food"});
  Apply(events_.Accept("r1", "food", "food-bath"));
  Refer("r2", "c2", {"food"});
  Apply(events_.Accept("r2", "food", "food-bath"));  // not the holder
  Refer("r3", "c3", {"food"}, "BS31");
  Apply(events_.Accept("r3", "food", "food-keynsham"));
  AdvanceAndTick(4 * kHour);  // r2 -> county
  Apply(events_.Accept("r2", "food", "food-county"));
  Refer("r4", "c4", {"food"});
  auto d = AdvanceAndTick(48 * kHour);
  // Its 4 h in the local target end first (still full at county), then its 2 days.
  EXPECT_THAT(d, ElementsAre(QueuedFor("r4", v1::PENDING_REASON_ALL_AT_CAPACITY),
                             EscalatedTo("enhanced-triage",
                                         v1::ESCALATION_REASON_MAX_WAIT_EXCEEDED)));
  EXPECT_EQ(d[0].queued().target_name(), "county");
  EXPECT_EQ(d[1].escalated().waited_ms(), 48 * kHour);
}

TEST_F(RouterTest, UnknownAndBlankNeedsGoToTriage) {
  auto unknown = Refer("r1", "c1", {"knitting"});
  EXPECT_THAT(unknown, ElementsAre(RoutedTo("r1", "triage-team")));
  EXPECT_EQ(unknown[0].routed().need_code(), "triage");
  EXPECT_THAT(Refer("r2", "c2", {""}), ElementsAre(RoutedTo("r2", "triage-team")));
  EXPECT_THAT(Refer("r3", "c3", {}), ElementsAre(RoutedTo("r3", "triage-team")));
}

TEST_F(RouterTest, NeedWithoutTargetsIsRoutedOutAtOnce) {
  EXPECT_THAT(Refer("r1", "c1", {"safeguarding"}),
              ElementsAre(EscalatedTo("statutory", v1::ESCALATION_REASON_RULE)));
}

TEST_F(RouterTest, MultiNeedReferralFansOutUnderOneClient) {
  auto d = Refer("r1", "c1", {"food", "housing", "food"});
  EXPECT_THAT(d, ElementsAre(RoutedTo("r1", "food-bath"), RoutedTo("r1", "over-65s")));
  const ClientState* state = clients_.Find("c1");
  ASSERT_NE(state, nullptr);
  const v1::ClientRecord record = state->ToRecord();
  EXPECT_THAT(record.open(), SizeIs(2));
  EXPECT_EQ(record.referral_count(), 1u);
}

TEST_F(RouterTest, DuplicateReferralChangesNothingAndIsReported) {
  Refer("r1", "c1", {"food"});
  const v1::RouterSnapshot before = router_->Snapshot();
  auto d = Refer("r1", "c1", {"food"});
  EXPECT_THAT(d, ElementsAre(RejectedFor(v1::REJECT_REASON_DUPLICATE_REFERRAL)));
  v1::RouterSnapshot after = router_->Snapshot();
  after.set_last_applied_offset(before.last_applied_offset());
  after.set_now_ms(before.now_ms());
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(clients_.Find("c1")->duplicate_count(), 1u);
  EXPECT_EQ(clients_.Find("c1")->referral_count(), 1u);
}

TEST_F(RouterTest, CostPerNeedWeighsComplexCases) {
  auto young = [&](const std::string& id) {
    v1::Envelope e = events_.Referral(id, "c-" + id, {"housing"}, "BS31");
    e.mutable_referral_submitted()->set_birth_year(1990);
    return Apply(e);
  };
  EXPECT_THAT(young("r1"), ElementsAre(RoutedTo("r1", "housing")));
  // Capacity 3, cost 2: one more would make 4.
  EXPECT_THAT(young("r2"), ElementsAre(QueuedFor("r2", v1::PENDING_REASON_ALL_AT_CAPACITY)));
  EXPECT_EQ(router_->Pods()[rules().pod_index.at("housing")].open_cost, 2u);
}

// One event can make many decisions: each has its own event id, <domain>/<offset>/<n>, and the
// key of its body (decisions past the ninth take another path in the writer).
TEST_F(RouterTest, AnEventMakingTwelveDecisionsNumbersAndKeysEachOne) {
  for (int i = 0; i < 17; ++i) {
    Refer("r" + std::to_string(i), "cz", {"triage"});  // capacity 5
  }
  ASSERT_EQ(router_->QueuedCount(rules().triage_need), 12u);
  DecisionBuffer out;
  const std::int64_t offset = next_offset_++;
  ASSERT_TRUE(router_
                  ->Apply(events_.PodChange("triage-team", v1::POD_STATUS_UNSPECIFIED, 20),
                          Offset(offset), out)
                  .ok());
  ASSERT_EQ(out.size(), 12u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const v1::Envelope& d = out[i];
    EXPECT_EQ(d.event_id(), absl::StrCat("banes/", offset, "/", i));
    EXPECT_EQ(d.domain(), "banes");
    EXPECT_EQ(d.trace_id(), "0af7651916cd43dd8448eb211c80319c");
    ASSERT_EQ(d.body_case(), v1::Envelope::kRouted) << i;
    EXPECT_EQ(out.key(i), "triage-team") << i;
    EXPECT_EQ(out.bytes(i), d.SerializeAsString()) << i;
  }
  // A decision keyed by the domain, numbered past nine in its event: the erasure of the client,
  // after its seventeen needs are released.
  out.Clear();
  const std::int64_t erased_at = next_offset_++;
  ASSERT_TRUE(router_->Apply(events_.Erase("cz"), Offset(erased_at), out).ok());
  ASSERT_EQ(out.size(), 18u);
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].event_id(), absl::StrCat("banes/", erased_at, "/", i));
    EXPECT_EQ(out.bytes(i), out[i].SerializeAsString()) << i;
    EXPECT_EQ(out.key(i), i < 17 ? "triage-team" : "banes") << i;
  }
  EXPECT_EQ(out.body(17), v1::Envelope::kClientErased);
  EXPECT_TRUE(router_->CheckInvariants().ok());
}

// Event ids follow the log offset: consecutive offsets step the last id's digits (through
// carries and an extra digit), and a gap or another domain writes it anew.
TEST_F(RouterTest, DecisionIdsFollowTheOffsetThroughCarriesGapsAndDomains) {
  const std::pair<std::int64_t, std::string> steps[] = {
      {8, "banes"},    {9, "banes"},    {10, "banes"},   {11, "banes"},  {99, "banes"},
      {100, "banes"},  {101, "banes"},  {1999, "banes"}, {2000, "banes"}, {2001, "banes/9"},
      {2002, "banes"}, {2003, "b"},     {2004, "banes"}, {2007, "banes"}, {2008, "banes"}};
  auto fresh = std::make_unique<Router>(TestRules(), clients_);
  for (const auto& [offset, domain] : steps) {
    v1::Envelope e;
    e.set_schema_version(2);  // rejected: one decision per event
    e.set_event_id("in");
    e.set_domain(domain);
    DecisionBuffer out;
    ASSERT_TRUE(fresh->Apply(e, Offset(offset), out).ok());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].event_id(), absl::StrCat(domain, "/", offset, "/0"));
    EXPECT_EQ(out.key(0), domain);
    EXPECT_EQ(out.bytes(0), out[0].SerializeAsString());
  }
}

// Each event's decisions carry its own time and trace id, whether the header is patched from the
// last event's (same id length, time of the same varint length, same trace id) or built anew.
TEST_F(RouterTest, DecisionHeadersFollowEachEventsTimeAndTraceId) {
  struct Step {
    std::int64_t offset;
    std::int64_t time_ms;
    std::string trace_id;
  };
  const Step steps[] = {{5, 0, ""},
                        {6, 1, ""},
                        {7, 2, ""},
                        {8, 127, ""},
                        {9, 128, ""},  // a byte longer
                        {10, 129, "a"},
                        {11, 130, "b"},
                        {12, 130, "bb"},
                        {13, 131, "b"},
                        {14, 132, ""},
                        {15, -1, ""},  // earlier: the time stays
                        {16, 1'767'261'600'000, ""},
                        {17, 1'767'261'600'001, ""},
                        {18, 1'767'261'600'001, "t"}};
  auto fresh = std::make_unique<Router>(TestRules(), clients_);
  std::int64_t now = 0;
  for (const Step& step : steps) {
    v1::Envelope e;
    e.set_schema_version(2);  // rejected: one decision per event
    e.set_event_id("in");
    e.set_domain("banes");
    e.set_event_time_ms(step.time_ms);
    e.set_trace_id(step.trace_id);
    DecisionBuffer out;
    ASSERT_TRUE(fresh->Apply(e, Offset(step.offset), out).ok());
    ASSERT_EQ(out.size(), 1u);
    now = std::max(now, step.time_ms);  // time never goes back
    EXPECT_EQ(out[0].event_id(), absl::StrCat("banes/", step.offset, "/0")) << step.offset;
    EXPECT_EQ(out[0].event_time_ms(), now) << step.offset;
    EXPECT_EQ(out[0].trace_id(), step.trace_id) << step.offset;
    EXPECT_EQ(out.bytes(0), out[0].SerializeAsString()) << step.offset;
  }
}

// An urgency this build does not know is routine: it is routed and queued as ROUTINE, behind
// a more urgent need and ahead of a later routine one.
TEST_F(RouterTest, AnUnknownUrgencyIsRoutine) {
  Apply(events_.PodChange("food-county", v1::POD_STATUS_UNSPECIFIED, 1));
  Apply(events_.PodChange("food-bath", v1::POD_STATUS_CLOSED));
  v1::Envelope odd = events_.Referral("r1", "c1", {"food"});
  odd.mutable_referral_submitted()->set_urgency(static_cast<v1::Urgency>(9));
  auto routed = Apply(odd);
  ASSERT_THAT(routed, ElementsAre(RoutedTo("r1", "food-county")));
  EXPECT_EQ(routed[0].routed().urgency(), v1::URGENCY_ROUTINE);
  v1::Envelope later = events_.Referral("r2", "c2", {"food"});
  later.mutable_referral_submitted()->set_urgency(static_cast<v1::Urgency>(-3));
  v1::Envelope urgent = events_.Referral("r3", "c3", {"food"});
  urgent.mutable_referral_submitted()->set_urgency(v1::URGENCY_URGENT);
  auto queued = Apply(later);
  ASSERT_THAT(queued, ElementsAre(QueuedFor("r2", v1::PENDING_REASON_ALL_AT_CAPACITY)));
  EXPECT_EQ(queued[0].queued().urgency(), v1::URGENCY_ROUTINE);
  Apply(urgent);
  EXPECT_THAT(Apply(events_.Withdraw("r1", "food")),
              ElementsAre(ReleasedFrom("food-county", v1::RELEASE_REASON_WITHDRAWN),
                          RoutedTo("r3", "food-county")));
}

// A snapshot whose need ids cannot be this router's is refused, not half restored.
TEST_F(RouterTest, ASnapshotWithIdsOutOfRangeIsRefused) {
  Refer("r1", "c1", {"food"});
  v1::RouterSnapshot beyond = router_->Snapshot();
  beyond.set_next_id(beyond.needs(0).id());  // the need's id is not below it
  InMemoryClientStore restored_clients;
  EXPECT_EQ(Router::Restore(beyond, restored_clients).status().code(),
            absl::StatusCode::kDataLoss);
  v1::RouterSnapshot huge = router_->Snapshot();
  huge.set_next_id(std::uint64_t{1} << 56);
  EXPECT_EQ(Router::Restore(huge, restored_clients).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Router::Restore(router_->Snapshot(), restored_clients).ok());
}

TEST_F(RouterTest, LoweredCapacityStopsRoutingUntilOpenWorkFallsBelowIt) {
  Apply(events_.PodChange("food-county", v1::POD_STATUS_UNSPECIFIED, 3));
  for (const char* id : {"r1", "r2", "r3"}) {
    EXPECT_THAT(Refer(id, std::string("c") + id, {"food"}, "BS40"),
                ElementsAre(RoutedTo(id, "food-county")));
  }
  Apply(events_.PodChange("food-county", v1::POD_STATUS_UNSPECIFIED, 1));
  EXPECT_THAT(Refer("r4", "c4", {"food"}, "BS40"),
              ElementsAre(QueuedFor("r4", v1::PENDING_REASON_ALL_AT_CAPACITY)));
  EXPECT_THAT(Apply(events_.Withdraw("r1", "food")),
              ElementsAre(ReleasedFrom("food-county", v1::RELEASE_REASON_WITHDRAWN)));
  EXPECT_THAT(Apply(events_.Withdraw("r2", "food")),
              ElementsAre(ReleasedFrom("food-county", v1::RELEASE_REASON_WITHDRAWN)));
  EXPECT_THAT(Apply(events_.Withdraw("r3", "food")),
              ElementsAre(ReleasedFrom("food-county", v1::RELEASE_REASON_WITHDRAWN),
                          RoutedTo("r4", "food-county")));
}

TEST_F(RouterTest, ClosingAPodReleasesItsWorkAndReroutesIt) {
  Refer("r1", "c1", {"food"});
  auto d = Apply(events_.PodChange("food-bath", v1::POD_STATUS_CLOSED));
  EXPECT_THAT(d, ElementsAre(ReleasedFrom("food-bath", v1::RELEASE_REASON_POD_CLOSED),
                             RoutedTo("r1", "food-county")));
  EXPECT_EQ(d[1].routed().target_name(), "county");  // nobody local can take it: on at once
}

TEST_F(RouterTest, EligibilityByAgeAndLocalitySpecificityAndWeight) {
  auto older = Refer("r1", "c1", {"housing"});  // born 1950, BA2: both pods eligible
  ASSERT_THAT(older, ElementsAre(RoutedTo("r1", "over-65s")));
  EXPECT_EQ(older[0].routed().score().locality_specificity(), 2u);
  v1::Envelope young = events_.Referral("r2", "c2", {"housing"});
  young.mutable_referral_submitted()->set_birth_year(2000);
  auto d = Apply(young);
  ASSERT_THAT(d, ElementsAre(RoutedTo("r2", "housing")));
  ASSERT_THAT(d[0].routed().rejected(), SizeIs(1));
  EXPECT_EQ(d[0].routed().rejected(0).reason(), v1::CANDIDATE_REJECTION_AGE_OUT_OF_RANGE);
}

TEST_F(RouterTest, ContinuityPrefersThePodAlreadyWorkingWithTheClient) {
  Refer("r0", "other", {"food"});  // fills food-bath
  Apply(events_.Accept("r0", "food", "food-bath"));
  Refer("r1", "c1", {"food"});
  AdvanceAndTick(4 * kHour);  // r1 -> food-county
  Apply(events_.Accept("r1", "food", "food-county"));
  Apply(events_.Complete("r1", "food", "food-county"));
  Apply(events_.Complete("r0", "food", "food-bath"));
  auto d = Refer("r2", "c1", {"food"});
  // food-county is only in the need's second target, but it already knows the client.
  ASSERT_THAT(d, ElementsAre(RoutedTo("r2", "food-county")));
  EXPECT_TRUE(d[0].routed().score().continuity());
  EXPECT_EQ(d[0].routed().target_name(), "continuity");
  EXPECT_EQ(clients_.Find("c1")->referral_count(), 2u);
}

TEST_F(RouterTest, ErasureRemovesTheClientAndReleasesTheirCapacity) {
  Refer("r1", "c1", {"food"});
  Refer("r2", "c2", {"food"});
  AdvanceAndTick(kHour);
  auto d = Apply(events_.Erase("c1"));
  ASSERT_THAT(d, SizeIs(3));
  EXPECT_THAT(d[0], ReleasedFrom("food-bath", v1::RELEASE_REASON_CLIENT_ERASED));
  EXPECT_TRUE(d[1].has_client_erased());
  EXPECT_EQ(d[1].client_erased().released(), 1u);
  EXPECT_THAT(d[2], RoutedTo("r2", "food-bath"));
  EXPECT_EQ(clients_.Find("c1"), nullptr);
  EXPECT_EQ(clients_.FindReferral("r1"), nullptr);
  const std::string snapshot = router_->Snapshot().SerializeAsString();
  EXPECT_EQ(snapshot.find("c1"), std::string::npos);
  EXPECT_THAT(Apply(events_.Accept("r1", "food", "food-bath")),
              ElementsAre(RejectedFor(v1::REJECT_REASON_UNKNOWN_REFERRAL)));
}

TEST_F(RouterTest, WaitsForOpeningHours) {
  events_.SetNow(1'767'434'400'000);  // Sat 2026-01-03 10:00 UTC
  auto d = Refer("r1", "c1", {"money"});
  ASSERT_THAT(d, ElementsAre(QueuedFor("r1", v1::PENDING_REASON_OUTSIDE_OPENING_HOURS)));
  EXPECT_THAT(AdvanceAndTick(23 * kHour), IsEmpty());  // Sun 09:00
  EXPECT_THAT(AdvanceAndTick(24 * kHour), ElementsAre(RoutedTo("r1", "money-advice")));
}

// The router keeps its local time for the rest of a UTC minute: the last millisecond before
// opening still waits, the first one of 09:00 places, and so does the close at 17:00.
TEST_F(RouterTest, OpeningHoursHoldToTheMillisecond) {
  events_.SetNow(1'767'603'599'999);  // Mon 2026-01-05 08:59:59.999 UTC (GMT)
  ASSERT_THAT(Refer("r1", "c1", {"money"}),
              ElementsAre(QueuedFor("r1", v1::PENDING_REASON_OUTSIDE_OPENING_HOURS)));
  EXPECT_THAT(AdvanceAndTick(1), ElementsAre(RoutedTo("r1", "money-advice")));  // 09:00:00.000
  events_.Advance(8 * kHour - 1);  // 16:59:59.999
  EXPECT_THAT(Refer("r2", "c2", {"money"}), ElementsAre(RoutedTo("r2", "money-advice")));
  events_.Advance(1);  // 17:00:00.000
  EXPECT_THAT(Refer("r3", "c3", {"money"}),
              ElementsAre(QueuedFor("r3", v1::PENDING_REASON_OUTSIDE_OPENING_HOURS)));
}

TEST_F(RouterTest, WaitsForConsent) {
  v1::Envelope e = events_.Referral("r1", "c1", {"befriending"});
  e.mutable_referral_submitted()->clear_consent();
  EXPECT_THAT(Apply(e), ElementsAre(QueuedFor("r1", v1::PENDING_REASON_AWAITING_CONSENT)));
}

TEST_F(RouterTest, DataScopeLimitsWhatAPodReceives) {
  v1::Envelope e = events_.Referral("r1", "c1", {"befriending"});
  e.mutable_referral_submitted()->mutable_payload()->set_ciphertext("sealed");
  auto d = Apply(e);
  ASSERT_THAT(d, ElementsAre(RoutedTo("r1", "volunteers")));
  const v1::ScopedAttributes& a = d[0].routed().attributes();
  EXPECT_EQ(a.postcode_outward(), "BA2");
  EXPECT_EQ(a.client_ref(), "");
  EXPECT_EQ(a.birth_year(), 0u);
  EXPECT_FALSE(a.has_payload());
}

// Rules for the attribute tests: one need, a Polish-speaking pod that sees everything and wins
// on weight when eligible, and a hub pod that sees the postcode only.
constexpr char kAttributeRules[] = R"(
version: "attributes"
timezone: UTC
triage_need: triage
needs:
  - code: triage
    max_wait: 1d
    escalate_to: duty-manager
    targets: [{name: hub, pods: [polish-speakers, hub]}]
pods:
  - {id: polish-speakers, needs: [triage], coverage: [BA2], capacity: 9, weight: 9,
     eligibility: {languages: [pl]},
     data_scope: [client_ref, postcode_outward, language, payload]}
  - {id: hub, needs: [triage], coverage: ["BA*"], capacity: 9, data_scope: [postcode_outward]}
)";

class RouterAttributesTest : public RouterTest {
 protected:
  // A new router on kAttributeRules (so every referral meets both pods with full headroom),
  // given one referral; returns its decisions.
  std::vector<v1::Envelope> ReferFresh(const v1::Envelope& e) {
    auto rules = LoadRules(kAttributeRules, "attribute-rules");
    EXPECT_TRUE(rules.ok()) << rules.status();
    router_.reset();  // it refers to clients_
    clients_ = InMemoryClientStore();
    router_ = std::make_unique<Router>(*rules, clients_);
    return Apply(e);
  }
  v1::Envelope Referral(const std::string& language, const std::string& outward = "BA2") {
    v1::Envelope e = events_.Referral("r1", "c1", {"triage"}, outward);
    e.mutable_referral_submitted()->set_language(language);
    return e;
  }
};

TEST_F(RouterAttributesTest, LanguageMatchesThePrimarySubtagInAnyCase) {
  EXPECT_THAT(ReferFresh(Referral("pl")), ElementsAre(RoutedTo("r1", "polish-speakers")));
  EXPECT_THAT(ReferFresh(Referral("PL-pl")), ElementsAre(RoutedTo("r1", "polish-speakers")));
  for (const char* other : {"en-GB", "", "plx", "p"}) {  // "" is English
    SCOPED_TRACE(other);
    auto d = ReferFresh(Referral(other));
    ASSERT_THAT(d, ElementsAre(RoutedTo("r1", "hub")));
    ASSERT_THAT(d[0].routed().rejected(), SizeIs(1));
    EXPECT_EQ(d[0].routed().rejected(0).pod_id(), "polish-speakers");
    EXPECT_EQ(d[0].routed().rejected(0).reason(),
              v1::CANDIDATE_REJECTION_LANGUAGE_NOT_SUPPORTED);
  }
}

TEST_F(RouterAttributesTest, OutwardCodesMatchCoverageInAnyCaseAndReachPodsAsSubmitted) {
  auto exact = ReferFresh(Referral("pl", "ba2"));
  ASSERT_THAT(exact, ElementsAre(RoutedTo("r1", "polish-speakers")));
  EXPECT_EQ(exact[0].routed().score().locality_specificity(), 3u);
  EXPECT_EQ(exact[0].routed().attributes().postcode_outward(), "ba2");
  auto prefix = ReferFresh(Referral("pl", "bA9"));  // only the hub covers it, by "BA*"
  ASSERT_THAT(prefix, ElementsAre(RoutedTo("r1", "hub")));
  EXPECT_EQ(prefix[0].routed().score().locality_specificity(), 2u);
  EXPECT_EQ(prefix[0].routed().attributes().postcode_outward(), "bA9");
  // Restored from a snapshot, the need is the same need.
  InMemoryClientStore restored_clients;
  auto restored = Router::Restore(router_->Snapshot(), restored_clients);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->Snapshot().SerializeAsString(), router_->Snapshot().SerializeAsString());
  EXPECT_EQ(router_->Snapshot().needs(0).attributes().postcode_outward(), "bA9");
}

TEST_F(RouterAttributesTest, PayloadReachesOnlyPodsScopedForIt) {
  v1::Envelope sealed = Referral("pl");
  sealed.mutable_referral_submitted()->mutable_payload()->set_ciphertext("sealed");
  auto d = ReferFresh(sealed);
  ASSERT_THAT(d, ElementsAre(RoutedTo("r1", "polish-speakers")));
  EXPECT_EQ(d[0].routed().attributes().client_ref(), "c1");
  EXPECT_EQ(d[0].routed().attributes().language(), "pl");
  EXPECT_EQ(d[0].routed().attributes().payload().ciphertext(), "sealed");
  // The open need keeps it for a restore.
  EXPECT_EQ(router_->Snapshot().needs(0).attributes().payload().ciphertext(), "sealed");
  sealed.mutable_referral_submitted()->set_language("en");
  auto hub = ReferFresh(sealed);
  ASSERT_THAT(hub, ElementsAre(RoutedTo("r1", "hub")));
  EXPECT_FALSE(hub[0].routed().attributes().has_payload());
  EXPECT_EQ(hub[0].routed().attributes().client_ref(), "");
  // Without a payload, none is kept.
  auto plain = ReferFresh(Referral("pl"));
  ASSERT_THAT(plain, ElementsAre(RoutedTo("r1", "polish-speakers")));
  EXPECT_FALSE(plain[0].routed().attributes().has_payload());
  EXPECT_FALSE(router_->Snapshot().needs(0).attributes().has_payload());
}

TEST_F(RouterTest, RecordsOutcomeRemedyAndTimeToResolve) {
  Refer("r1", "c1", {"food"});
  Apply(events_.Accept("r1", "food", "food-bath"));
  events_.Advance(5 * kHour);
  Apply(events_.Complete("r1", "food", "food-bath"));
  const ClientState* state = clients_.Find("c1");
  ASSERT_NE(state, nullptr);
  const v1::ClientRecord record = state->ToRecord();
  EXPECT_THAT(record.open(), IsEmpty());
  const v1::ClientHistoryEntry& last = record.history(record.history_size() - 1);
  EXPECT_EQ(last.kind(), v1::HISTORY_KIND_COMPLETED);
  EXPECT_EQ(last.outcome(), v1::OUTCOME_NEED_MET);
  EXPECT_THAT(last.remedies(), ElementsAre("food-parcel"));
  EXPECT_EQ(last.time_to_resolve_ms(), 5 * kHour);
}

TEST_F(RouterTest, MeasuresTimeToAcceptAndTimeToComplete) {
  Refer("r1", "c1", {"food"});
  EXPECT_THAT(router_->Timings(), IsEmpty());
  events_.Advance(2 * kHour);
  Apply(events_.Accept("r1", "food", "food-bath"));
  ASSERT_EQ(router_->Timings().size(), 1u);
  const PodTiming accept = router_->Timings()[0];
  EXPECT_EQ(rules().pods[accept.pod].id, "food-bath");
  EXPECT_EQ(accept.kind, PodTiming::kAccept);
  EXPECT_EQ(accept.ms, 2 * kHour) << "offer to acceptance";
  AdvanceAndTick(kHour);
  EXPECT_THAT(router_->Timings(), IsEmpty()) << "each Apply reports only its own";
  events_.Advance(4 * kHour);
  Apply(events_.Complete("r1", "food", "food-bath"));
  ASSERT_EQ(router_->Timings().size(), 1u);
  EXPECT_EQ(router_->Timings()[0].kind, PodTiming::kComplete);
  EXPECT_EQ(router_->Timings()[0].ms, 5 * kHour) << "acceptance to completion";
  Apply(events_.Complete("r1", "food", "food-bath"));
  EXPECT_THAT(router_->Timings(), IsEmpty()) << "a rejected answer measures nothing";
}

TEST_F(RouterTest, ResponsesMustComeFromThePodHoldingTheNeed) {
  Refer("r1", "c1", {"food"});
  EXPECT_THAT(Apply(events_.Accept("r1", "food", "food-county")),
              ElementsAre(RejectedFor(v1::REJECT_REASON_NOT_ASSIGNED)));
  EXPECT_THAT(Apply(events_.Accept("nope", "food", "food-bath")),
              ElementsAre(RejectedFor(v1::REJECT_REASON_UNKNOWN_REFERRAL)));
  Apply(events_.Accept("r1", "food", "food-bath"));
  EXPECT_THAT(Apply(events_.Accept("r1", "food", "food-bath")),
              ElementsAre(RejectedFor(v1::REJECT_REASON_INVALID_TRANSITION)));
}

TEST_F(RouterTest, OldestWaitIsTheLongestWaitingNeedOfAnyUrgency) {
  const NeedIndex food = rules().need_index.at("food");
  EXPECT_EQ(router_->OldestWaitMs(food), 0);
  Refer("r1", "c1", {"food"});  // placed
  Apply(events_.Accept("r1", "food", "food-bath"));
  Refer("r2", "c2", {"food"});  // waits, routine
  events_.Advance(kHour);
  v1::Envelope urgent = events_.Referral("r3", "c3", {"food"});
  urgent.mutable_referral_submitted()->set_urgency(v1::URGENCY_URGENT);
  Apply(urgent);
  AdvanceAndTick(kHour);  // still within the local target's 4 h
  EXPECT_EQ(router_->QueuedCount(food), 2u);
  EXPECT_EQ(router_->OldestWaitMs(food), 2 * kHour);  // r2, although r3 is ahead of it
}

TEST_F(RouterTest, WithdrawingAWaitingNeedTakesItOutOfTheQueue) {
  Refer("r1", "c1", {"food"});
  Refer("r2", "c2", {"food"});
  EXPECT_THAT(Apply(events_.Withdraw("r2", "food")), IsEmpty());
  EXPECT_EQ(router_->QueuedCount(rules().need_index.at("food")), 0u);
  EXPECT_EQ(router_->OpenNeedCount(), 1u);
}

TEST_F(RouterTest, SkipsOffsetsAtOrBelowTheLastApplied) {
  Refer("r1", "c1", {"food"});
  DecisionBuffer out;
  auto result = router_->Apply(events_.Referral("r2", "c2", {"food"}), Offset(0), out);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, ApplyResult::kSkipped);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(clients_.Find("c2"), nullptr);
}

TEST_F(RouterTest, InvalidRulesChangeIsRejectedAndTheRulesStay) {
  auto d = Apply(events_.Rules("version: x\nneeds: nope\n"));
  ASSERT_THAT(d, ElementsAre(RejectedFor(v1::REJECT_REASON_INVALID_RULES)));
  EXPECT_THAT(d[0].rejected().detail(), ::testing::HasSubstr("rules_changed:"));
  EXPECT_EQ(router_->rules().version, "t1");
}

TEST_F(RouterTest, RulesChangeKeepsOpenWorkAndPlacesWaitingNeeds) {
  Refer("r1", "c1", {"food"});
  Apply(events_.Accept("r1", "food", "food-bath"));
  Refer("r2", "c2", {"food"});
  std::string bigger = kRules;
  bigger.replace(bigger.find("coverage: [BA1, BA2], capacity: 1"),
                 std::string("coverage: [BA1, BA2], capacity: 1").size(),
                 "coverage: [BA1, BA2], capacity: 2");
  bigger.replace(bigger.find("\"t1\""), 4, "\"t2\"");
  auto d = Apply(events_.Rules(bigger));
  EXPECT_THAT(d, ElementsAre(RoutedTo("r2", "food-bath")));
  EXPECT_EQ(router_->rules().version, "t2");
  EXPECT_EQ(router_->Pods()[rules().pod_index.at("food-bath")].open_cost, 2u);
}

TEST_F(RouterTest, ChangesHeldForLongStayBoundedAndAreTakenOnce) {
  constexpr int kNeeds = 100;
  for (int i = 0; i < kNeeds; ++i) {
    Refer(absl::StrCat("r", i), absl::StrCat("c", i), {"housing"});  // three fit, the rest wait
  }
  // Every rules change marks every open need changed: 700 x 100 marks, 100 distinct needs.
  const v1::Envelope same_rules = events_.Rules(kRules);
  for (int i = 0; i < 700; ++i) {
    DecisionBuffer out;
    ASSERT_TRUE(router_->Apply(same_rules, Offset(next_offset_++), out).ok());
    ASSERT_LE(router_->HeldChanges(), std::size_t{1} << 16);
  }
  RouterChanges changes;
  router_->TakeChanges(changes);
  EXPECT_EQ(changes.upserts.size(), kNeeds);
  EXPECT_THAT(changes.erased, IsEmpty());
  EXPECT_EQ(router_->HeldChanges(), 0u);
  ASSERT_EQ(router_->OpenNeedCount(), static_cast<std::size_t>(kNeeds));
}

TEST_F(RouterTest, ChangeSetsHoldEachNeedInProtobufsOwnBytes) {
  v1::Envelope e = events_.Referral("r1", "c1", {"food"});
  v1::ReferralSubmitted& r = *e.mutable_referral_submitted();
  r.set_lsoa("E01014370");
  r.set_language("pl");
  r.add_flags(v1::CLIENT_FLAG_SHIELDING);
  r.add_flags(v1::CLIENT_FLAG_COMPLEX);
  r.add_consent(v1::CONSENT_SCOPE_RESEARCH);
  r.mutable_payload()->set_ciphertext(std::string(300, 's'));  // attributes past 127 bytes
  Apply(e);                                                   // offered to food-bath
  Apply(events_.Decline("r1", "food", "food-bath"));          // to food-county
  Refer("r2", "c2", {"housing"});                             // to over-65s
  Refer("r3", "c3", {"food"});                                // to food-bath
  Refer("r4", "c4", {"food"});                                // waits: every food pod is full
  RouterChanges changes;
  router_->TakeChanges(changes);
  ASSERT_THAT(changes.upserts, SizeIs(4));
  const v1::RouterSnapshot snapshot = router_->Snapshot();
  ASSERT_EQ(snapshot.needs_size(), 4);
  std::vector<v1::OpenNeedSnapshot> needs;
  for (std::size_t i = 0; i < changes.upserts.size(); ++i) {
    const std::string_view bytes = changes.bytes(changes.upserts[i]);
    ASSERT_TRUE(needs.emplace_back().ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    EXPECT_EQ(needs[i].id(), changes.upserts[i].id);
    EXPECT_EQ(needs[i].SerializeAsString(), bytes);  // protobuf's canonical form
    EXPECT_EQ(snapshot.needs(static_cast<int>(i)).SerializeAsString(), bytes);
  }
  const v1::OpenNeedSnapshot& food = needs[0];
  EXPECT_EQ(food.referral_id(), "r1");
  EXPECT_EQ(food.need_code(), "food");
  EXPECT_EQ(food.state(), v1::NEED_STATE_OFFERED);
  EXPECT_EQ(food.pod_id(), "food-county");
  EXPECT_THAT(food.declined_pods(), ElementsAre("food-bath"));
  EXPECT_EQ(food.declines(), 1u);
  EXPECT_GT(food.submitted_ms(), 0);
  const v1::RoutingAttributes& a = food.attributes();
  EXPECT_EQ(a.client_ref(), "c1");
  EXPECT_EQ(a.postcode_outward(), "BA2");
  EXPECT_EQ(a.lsoa(), "E01014370");
  EXPECT_EQ(a.birth_year(), 1950u);
  EXPECT_EQ(a.language(), "pl");
  EXPECT_THAT(a.flags(), ElementsAre(v1::CLIENT_FLAG_SHIELDING, v1::CLIENT_FLAG_COMPLEX));
  EXPECT_THAT(a.consent(),
              ElementsAre(v1::CONSENT_SCOPE_SHARE_WITH_PODS, v1::CONSENT_SCOPE_VOLUNTEER_CONTACT,
                          v1::CONSENT_SCOPE_RESEARCH));
  EXPECT_EQ(a.payload().ciphertext(), std::string(300, 's'));
  const v1::OpenNeedSnapshot& housing = needs[1];
  EXPECT_EQ(housing.state(), v1::NEED_STATE_OFFERED);
  EXPECT_EQ(housing.pod_id(), "over-65s");
  EXPECT_THAT(housing.attributes().flags(), IsEmpty());
  EXPECT_EQ(housing.attributes().lsoa(), "");
  EXPECT_FALSE(housing.attributes().has_payload());
  EXPECT_EQ(needs[2].accept_by_ms(), needs[2].state_since_ms() + 2 * kHour);  // food-bath's
  const v1::OpenNeedSnapshot& waiting = needs[3];
  EXPECT_EQ(waiting.state(), v1::NEED_STATE_QUEUED);
  EXPECT_EQ(waiting.pod_id(), "");
  EXPECT_NE(waiting.pending(), v1::PENDING_REASON_UNSPECIFIED);
}

TEST_F(RouterTest, RejectsReferralWithoutIds) {
  v1::Envelope e = events_.Referral("", "c1", {"food"});
  EXPECT_THAT(Apply(e), ElementsAre(RejectedFor(v1::REJECT_REASON_INVALID_EVENT)));
  v1::Envelope wrong_version = events_.Referral("r1", "c1", {"food"});
  wrong_version.set_schema_version(2);
  EXPECT_THAT(Apply(wrong_version), ElementsAre(RejectedFor(v1::REJECT_REASON_INVALID_EVENT)));
}

TEST_F(RouterTest, SnapshotRestoreContinuesExactlyAsTheOriginal) {
  Refer("r1", "c1", {"food", "housing"});
  Refer("r2", "c2", {"food"});
  Refer("r3", "c3", {"food"}, "BS31");
  InMemoryClientStore copy = clients_;
  auto restored = Router::Restore(router_->Snapshot(), copy);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->Snapshot().SerializeAsString(), router_->Snapshot().SerializeAsString());
  // The same continuation on both gives the same decisions.
  const v1::Envelope tick = [&] {
    events_.Advance(4 * kHour);
    return events_.Tick();
  }();
  DecisionBuffer a;
  DecisionBuffer b;
  ASSERT_TRUE(router_->Apply(tick, Offset(100), a).ok());
  ASSERT_TRUE((*restored)->Apply(tick, Offset(100), b).ok());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 0u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].SerializeAsString(), b[i].SerializeAsString());
  }
  EXPECT_EQ(copy.Fingerprint(), clients_.Fingerprint());
}

}  // namespace
}  // namespace signpost::router

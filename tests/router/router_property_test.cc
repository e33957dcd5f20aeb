// SPDX-License-Identifier: Apache-2.0
// Property tests of the routing core over random, seeded event streams: referrals, responses,
// pod and rules changes, time passing, duplicates and erasures. For every seed:
//   - after every event the ledgers agree with the open work, and no routing pushes a pod above
//     its capacity;
//   - every need is routed, waiting with a reason, escalated or closed by a response: the set of
//     open needs equals a model built from the decisions and the inputs;
//   - replaying the same stream gives byte-identical decisions, state and client records;
//   - snapshot -> restore -> continue gives exactly what the uninterrupted run gave;
//   - the incremental change sets (what storage persists per batch) add up to the snapshot.
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "router/router.h"
#include "tests/testing/events.h"
#include "tests/testing/random_events.h"

namespace signpost::router {
namespace {

struct RunResult {
  std::vector<std::string> decisions;  // serialized, in order
  std::string snapshot;
  std::string clients;
};

std::shared_ptr<const Rules> RulesA() {
  static const std::shared_ptr<const Rules> kLoaded = [] {
    auto rules = LoadRules(testing::kRandomRulesA, "rules-a");
    EXPECT_TRUE(rules.ok()) << rules.status();
    return *rules;
  }();
  return kLoaded;
}

std::set<std::string> OpenKeys(const v1::RouterSnapshot& snapshot) {
  std::set<std::string> keys;
  for (const v1::OpenNeedSnapshot& n : snapshot.needs()) {
    keys.insert(n.referral_id() + "/" + n.need_code());
  }
  return keys;
}

// What a store that applies every change set in order holds.
struct PersistedModel {
  std::map<std::uint64_t, v1::OpenNeedSnapshot> needs;
  v1::RouterSnapshot header;

  void Apply(const RouterChanges& changes) {
    const std::string rules = header.rules_yaml();
    header = changes.header;
    if (!changes.rules_changed) {
      ASSERT_EQ(changes.header.rules_yaml(), rules) << "rules changed without rules_changed";
    }
    for (const RouterChanges::Upsert& u : changes.upserts) {
      v1::OpenNeedSnapshot n;
      const std::string_view bytes = changes.bytes(u);
      ASSERT_TRUE(n.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) << u.id;
      ASSERT_EQ(n.id(), u.id);
      // Written field by field, in protobuf's own canonical form.
      ASSERT_EQ(n.SerializeAsString(), bytes) << u.id;
      needs[n.id()] = n;
    }
    for (std::uint64_t id : changes.erased) {
      needs.erase(id);  // may never have been written: opened and closed in one change set
    }
  }
  std::string Assemble() const {
    v1::RouterSnapshot s = header;
    for (const auto& [id, n] : needs) {
      *s.add_needs() = n;
    }
    return s.SerializeAsString();
  }
};

// Decision `k` of `out` is in protobuf's own serialization, and its body, key, reason, referral
// and need are the ones its message holds.
void CheckWireForm(const DecisionBuffer& out, std::size_t k) {
  const v1::Envelope& d = out[k];
  ASSERT_EQ(d.SerializeAsString(), out.bytes(k)) << d.ShortDebugString();
  ASSERT_EQ(d.body_case(), out.body(k));
  std::string key = d.domain();
  std::string referral_id;
  std::string need_code;
  int reason = 0;
  switch (d.body_case()) {
    case v1::Envelope::kRouted:
      key = d.routed().pod_id();
      referral_id = d.routed().referral_id();
      need_code = d.routed().need_code();
      break;
    case v1::Envelope::kReleased:
      key = d.released().pod_id();
      referral_id = d.released().referral_id();
      need_code = d.released().need_code();
      reason = d.released().reason();
      break;
    case v1::Envelope::kQueued:
      key = d.queued().need_code();
      referral_id = d.queued().referral_id();
      need_code = d.queued().need_code();
      reason = d.queued().reason();
      break;
    case v1::Envelope::kEscalated:
      key = d.escalated().need_code();
      referral_id = d.escalated().referral_id();
      need_code = d.escalated().need_code();
      reason = d.escalated().reason();
      break;
    case v1::Envelope::kRejected:
      reason = d.rejected().reason();
      break;
    default:
      break;
  }
  ASSERT_EQ(out.key(k), key) << d.ShortDebugString();
  ASSERT_EQ(out.reason(k), reason) << d.ShortDebugString();
  ASSERT_EQ(out.referral_id(k), referral_id) << d.ShortDebugString();
  ASSERT_EQ(out.need_code(k), need_code) << d.ShortDebugString();
}

// Applies `stream[from..]` to `router`, checking the per-event properties. Decisions go into
// one recycled buffer, or a new one per event with `fresh_buffers`.
void RunStream(Router& router, InMemoryClientStore& clients, const std::vector<v1::Envelope>& stream,
         std::size_t from, std::size_t to, std::int64_t offset_base, RunResult& result,
         bool check, bool fresh_buffers = false) {
  DecisionBuffer out;
  std::set<std::string> model = check ? OpenKeys(router.Snapshot()) : std::set<std::string>{};
  PersistedModel persisted;
  RouterChanges changes;
  // Which client each open key belongs to, for erasures.
  for (std::size_t i = from; i < to; ++i) {
    const v1::Envelope& event = stream[i];
    std::vector<PodFigures> before;
    if (check) {
      before = router.Pods();
    }
    out.Clear();
    if (fresh_buffers) {
      out = DecisionBuffer();
      // The replay also hints events ahead, as the service does: hints change nothing.
      if (i + 3 < to) {
        router.Prefetch(stream[i + 3]);
      }
    }
    auto applied = router.Apply(event, Offset(offset_base + static_cast<std::int64_t>(i)), out);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(*applied, ApplyResult::kApplied);
    for (std::size_t k = 0; k < out.size(); ++k) {
      result.decisions.emplace_back(out.bytes(k));
      if (check) {
        ASSERT_NO_FATAL_FAILURE(CheckWireForm(out, k));
      }
    }
    if (!check) {
      continue;
    }
    SCOPED_TRACE(::testing::Message() << "event " << i << ": " << event.ShortDebugString());
    ASSERT_TRUE(router.CheckInvariants().ok()) << router.CheckInvariants();
    // Capacity: routing never pushes a pod above its capacity. (Open work may stand above a
    // capacity that was just lowered; it must then not grow.)
    const std::vector<PodFigures> after = router.Pods();
    for (const PodFigures& pod : after) {
      std::uint32_t previous = 0;
      for (const PodFigures& b : before) {
        if (b.id == pod.id) {
          previous = b.open_cost;
        }
      }
      ASSERT_LE(pod.open_cost, std::max(pod.capacity, previous)) << pod.id;
    }
    // Nothing disappears silently: update the model from inputs and decisions, compare.
    bool rejected = false;
    for (std::size_t k = 0; k < out.size(); ++k) {
      const v1::Envelope& d = out[k];
      if (d.has_routed()) {
        model.insert(d.routed().referral_id() + "/" + d.routed().need_code());
      } else if (d.has_queued()) {
        model.insert(d.queued().referral_id() + "/" + d.queued().need_code());
      } else if (d.has_escalated()) {
        model.erase(d.escalated().referral_id() + "/" + d.escalated().need_code());
      } else if (d.has_rejected()) {
        rejected = true;
      }
    }
    if (event.has_pod_response() && !rejected &&
        (event.pod_response().has_completed() || event.pod_response().has_withdrawn())) {
      model.erase(event.pod_response().referral_id() + "/" + event.pod_response().need_code());
    }
    const v1::RouterSnapshot snapshot = router.Snapshot();
    if (event.has_client_erasure_requested()) {
      const std::string& erased = event.client_erasure_requested().client_ref();
      ASSERT_EQ(clients.Find(erased), nullptr);
      for (const v1::OpenNeedSnapshot& n : snapshot.needs()) {
        ASSERT_NE(n.attributes().client_ref(), erased);
      }
      // Everything the client had open is gone; everything else stays.
      for (const std::string& key : OpenKeys(snapshot)) {
        ASSERT_TRUE(model.contains(key)) << key;
      }
      model = OpenKeys(snapshot);
    }
    ASSERT_EQ(OpenKeys(snapshot), model);
    // Incremental persistence: the change sets add up to the snapshot.
    router.TakeChanges(changes);
    persisted.Apply(changes);
    ASSERT_EQ(persisted.Assemble(), snapshot.SerializeAsString());
    for (const v1::OpenNeedSnapshot& n : snapshot.needs()) {
      if (n.state() == v1::NEED_STATE_QUEUED) {
        ASSERT_NE(n.pending(), v1::PENDING_REASON_UNSPECIFIED);
      }
    }
  }
  result.snapshot = router.Snapshot().SerializeAsString();
  result.clients = clients.Fingerprint();
}

class RouterPropertyTest : public ::testing::TestWithParam<int> {};

TEST_P(RouterPropertyTest, InvariantsDeterminismAndSnapshotRestore) {
  constexpr int kSeedsPerShard = 100;
  constexpr int kLength = 250;
  for (int s = 0; s < kSeedsPerShard; ++s) {
    const std::uint64_t seed = static_cast<std::uint64_t>(GetParam()) * kSeedsPerShard + s;
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const std::vector<v1::Envelope> stream = testing::RandomStream(seed, kLength);

    InMemoryClientStore clients;
    Router router(RulesA(), clients);
    RunResult checked;
    RunStream(router, clients, stream, 0, stream.size(), 0, checked, true);
    if (HasFatalFailure()) {
      return;
    }

    InMemoryClientStore clients2;
    Router again(RulesA(), clients2);
    RunResult replay;
    RunStream(again, clients2, stream, 0, stream.size(), 0, replay, false, true);
    // Also: recycled envelopes = fresh ones, and Prefetch hints change nothing.
    ASSERT_EQ(replay.decisions, checked.decisions);
    ASSERT_EQ(replay.snapshot, checked.snapshot);
    ASSERT_EQ(replay.clients, checked.clients);

    const std::size_t cut = seed % stream.size();
    InMemoryClientStore clients3;
    Router first(RulesA(), clients3);
    RunResult resumed;
    RunStream(first, clients3, stream, 0, cut, 0, resumed, false);
    InMemoryClientStore clients4 = clients3;
    auto restored = Router::Restore(first.Snapshot(), clients4);
    ASSERT_TRUE(restored.ok()) << restored.status();
    RunStream(**restored, clients4, stream, cut, stream.size(), 0, resumed, false);
    ASSERT_EQ(resumed.decisions, checked.decisions) << "cut at " << cut;
    ASSERT_EQ(resumed.snapshot, checked.snapshot);
    ASSERT_EQ(resumed.clients, checked.clients);
  }
}

// 20 shards x 100 seeds x 250 events: 2,000 seeded runs, each replayed twice more.
INSTANTIATE_TEST_SUITE_P(Seeds, RouterPropertyTest, ::testing::Range(0, 20));

}  // namespace
}  // namespace signpost::router

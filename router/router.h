// SPDX-License-Identifier: Apache-2.0
// The routing core: folds the event log into routing state and decides, for every need of every
// referral, which pod takes it, why it waits, or where it escalates. A pure, deterministic
// function of the log: no I/O, clocks or threads; time comes from event times and Tick events.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "router/base/strong_id.h"
#include "router/client_store.h"
#include "router/decision_buffer.h"
#include "router/local_time.h"
#include "router/need_keys.h"
#include "router/rules.h"
#include "router/sorted_queue.h"
#include "signpost/v1/envelope.pb.h"
#include "signpost/v1/state.pb.h"

namespace signpost::router {

enum class ApplyResult {
  kApplied,
  kSkipped,  // the offset was at or below LastApplied(): nothing changed
};

// What changed in a Router since the last TakeChanges(), for incremental persistence: storage
// writes it in the same batch as the applied offset. Applying every change set in order to an
// empty map of needs gives exactly Snapshot().
struct RouterChanges {
  v1::RouterSnapshot header;  // the snapshot without its needs (pods, clock, offset, rules)
  bool rules_changed = false;  // header.rules_yaml differs from the last change set's
  // Needs opened or changed, in id order: each a serialized v1::OpenNeedSnapshot (the bytes
  // SerializeToString gives), written from the router's state into one buffer. Clear() keeps
  // the buffers, so a change set taken into the same RouterChanges again allocates only what
  // it outgrows.
  struct Upsert {
    std::uint64_t id = 0;
    std::size_t begin = 0;  // in upsert_bytes
    std::size_t end = 0;
  };
  std::vector<Upsert> upserts;
  WireWriter::Buffer upsert_bytes;
  [[nodiscard]] std::string_view bytes(const Upsert& u) const {
    return upsert_bytes.view().substr(u.begin, u.end - u.begin);
  }
  std::vector<std::uint64_t> erased;  // needs closed, by id
  void Clear();
};

// Live figures of one pod, for metrics and the query API.
struct PodFigures {
  std::string id;
  v1::PodStatus status = v1::POD_STATUS_UNSPECIFIED;
  std::uint32_t capacity = 0;
  std::uint32_t open_cost = 0;
  std::uint32_t open_needs = 0;
};

// How long a pod took to answer, measured in event time by one Apply: from the offer to the
// acceptance, or from the acceptance (or the offer, if never accepted) to the completion.
struct PodTiming {
  enum Kind { kAccept, kComplete };
  PodIndex pod = 0;
  Kind kind = kAccept;
  std::int64_t ms = 0;
};

// Router owns the hot state (pods, capacity ledgers, queues, timers) of one routing domain and
// updates per-client records through a ClientStore it does not own.
// Thread-safety: none; one thread drives one Router.
class Router {
 public:
  Router(std::shared_ptr<const Rules> rules, ClientStore& clients);
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // A hint that `event` will be applied soon (call it a few events ahead): starts loading the
  // client record, referral id and open-need index entries it will look up, so that applying
  // it waits less on memory. Changes nothing.
  void Prefetch(const v1::Envelope& event);

  // Applies `event`, read from the log at `offset`, appending the decisions to `out`.
  // Events at or below LastApplied() are skipped. Malformed or contradictory events are answered
  // with a Rejected decision (a value, not an error) and change nothing else. Returns kInternal
  // only if an invariant broke, which is a bug.
  [[nodiscard]] absl::StatusOr<ApplyResult> Apply(const v1::Envelope& event, Offset offset,
                                                  DecisionBuffer& out);

  [[nodiscard]] Offset LastApplied() const { return last_applied_; }
  [[nodiscard]] std::int64_t NowMs() const { return now_ms_; }
  [[nodiscard]] const Rules& rules() const { return *rules_; }

  // The hot state; client records live in the ClientStore. Snapshot and Restore round-trip:
  // a restored router continues exactly as the original would.
  [[nodiscard]] v1::RouterSnapshot Snapshot() const;
  // Returns kInvalidArgument (bad rules or format) or kDataLoss (inconsistent snapshot).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Router>> Restore(
      const v1::RouterSnapshot& snapshot, ClientStore& clients);

  // Moves the changes since the last call into `out` (replacing its content).
  void TakeChanges(RouterChanges& out);
  // Entries held for the next TakeChanges(), repeats included: bounded by about twice the
  // distinct needs changed (or 65,536), however long no one takes them.
  [[nodiscard]] std::size_t HeldChanges() const { return changed_needs_.size(); }

  [[nodiscard]] std::vector<PodFigures> Pods() const;
  // What the last Apply measured of pods' answers (empty for most events).
  [[nodiscard]] const std::vector<PodTiming>& Timings() const { return timings_; }
  [[nodiscard]] std::size_t QueuedCount(NeedIndex need) const { return queues_[need].size(); }
  // Time since submission of the longest-waiting need of `need`'s queue; 0 when empty.
  [[nodiscard]] std::int64_t OldestWaitMs(NeedIndex need) const;
  [[nodiscard]] std::size_t OpenNeedCount() const { return needs_.size(); }

  // Recomputes the ledgers and queues from the open needs and compares: kInternal on mismatch.
  [[nodiscard]] absl::Status CheckInvariants() const;

 private:
  static constexpr PodIndex kNoPod = 0xffff;

  // The routing attributes of a referral, shared by its needs while any is open. A bulk import
  // keeps one per open need, so it holds nothing derivable and no empty payload.
  struct Facts {
    std::string client_ref;
    std::string postcode_outward;  // as submitted
    std::string lsoa;
    std::string language;          // as submitted
    std::uint32_t birth_year = 0;
    std::uint32_t flags = 0;    // bit per v1::ClientFlag
    std::uint32_t consent = 0;  // bit per v1::ConsentScope
    std::unique_ptr<const v1::SealedPayload> payload;  // null when none was given
    std::unique_ptr<const std::string> upper_outward;  // only when not upper case already

    // The outward code in upper case, for coverage.
    [[nodiscard]] std::string_view Outward() const {
      return upper_outward != nullptr ? *upper_outward : postcode_outward;
    }

    // The language's primary subtag ("en" when none was given), as submitted: compare it
    // ignoring case.
    [[nodiscard]] std::string_view PrimaryLanguage() const;
  };
  template <typename FlagList, typename ConsentList>
  static std::shared_ptr<const Facts> MakeFacts(const std::string& client_ref,
                                                const std::string& postcode_outward,
                                                const std::string& lsoa, std::uint32_t birth_year,
                                                const FlagList& flags,
                                                const std::string& language,
                                                const ConsentList& consent,
                                                const v1::SealedPayload* payload);

  // One per open need, so packed without padding, the fields routing reads most first.
  struct OpenNeed {
    std::uint64_t id = 0;
    NeedIndex need = 0;
    PodIndex pod = kNoPod;
    v1::NeedState state = v1::NEED_STATE_UNSPECIFIED;
    v1::Urgency urgency = v1::URGENCY_ROUTINE;
    std::uint32_t generation = 0;  // bumped on every state change; stale timers carry old ones
    std::uint32_t step = 0;
    v1::PendingReason pending = v1::PENDING_REASON_UNSPECIFIED;
    std::shared_ptr<const Facts> facts;
    std::string referral_id;
    std::int64_t submitted_ms = 0;
    std::int64_t step_started_ms = 0;
    std::int64_t state_since_ms = 0;
    std::int64_t accept_by_ms = 0;
    std::vector<PodIndex> declined;
    std::uint32_t attempt = 0;
    std::uint32_t declines = 0;
  };

  struct PodState {
    v1::PodStatus status = v1::POD_STATUS_OPEN;
    std::uint32_t capacity = 0;
    std::uint32_t daily_intake = 0;
    bool capacity_overridden = false;
    bool intake_overridden = false;
    std::uint32_t open_cost = 0;
    std::int64_t intake_day = 0;
    std::uint32_t intake_count = 0;
    absl::flat_hash_set<std::uint64_t> open_ids;  // unordered: sort before walking it
  };

  enum class TimerKind : std::uint8_t { kAcceptTimeout, kStepDeadline, kEscalate };
  struct Timer {
    std::int64_t at;
    std::uint64_t id;
    TimerKind kind;
    std::uint32_t generation;
    friend bool operator<(const Timer& a, const Timer& b) {
      return std::tie(a.at, a.id, a.kind, a.generation) <
             std::tie(b.at, b.id, b.kind, b.generation);
    }
  };
  // A waiting need's place in its queue and waiting sets, more urgent first, then older (lower
  // id) first, as one integer so the B-trees compare integers: EMERGENCY - urgency in the top
  // byte, the need id below it. Urgency is 1-4 (Effective) and ids stay under kIdLimit.
  using QueueKey = std::uint64_t;
  static constexpr std::uint64_t kIdLimit = std::uint64_t{1} << 56;
  static QueueKey KeyOf(v1::Urgency urgency, std::uint64_t id) {
    return (static_cast<std::uint64_t>(v1::URGENCY_EMERGENCY - urgency) << 56) | id;
  }
  static std::uint64_t IdOf(QueueKey key) { return key & (kIdLimit - 1); }
  struct Candidate {
    PodIndex pod;
    v1::CandidateRejection reason;
  };
  // A placement's score parts (v1::ScoreParts), compared in this order.
  struct Score {
    bool continuity = false;
    std::uint32_t specificity = 0;
    std::uint32_t headroom_permille = 0;
    std::uint32_t weight = 0;
    friend bool operator<(const Score& a, const Score& b) {
      return std::tie(a.continuity, a.specificity, a.headroom_permille, a.weight) <
             std::tie(b.continuity, b.specificity, b.headroom_permille, b.weight);
    }
  };

  // Event handlers.
  void OnReferral(const v1::Envelope& event, DecisionBuffer& out);
  void OnPodResponse(const v1::Envelope& event, DecisionBuffer& out);
  void OnPodChanged(const v1::Envelope& event, DecisionBuffer& out);
  void OnRulesChanged(const v1::Envelope& event, DecisionBuffer& out);
  void OnTick(DecisionBuffer& out);
  void OnErasure(const v1::Envelope& event, DecisionBuffer& out);

  // Routing.
  void Route(OpenNeed& need, bool announce_unchanged_wait, DecisionBuffer& out);
  bool Evaluate(const OpenNeed& need, std::span<const PodIndex> pods, PodIndex continuity_pod,
                PodIndex& best, Score& best_score);
  // The pod that last accepted this client's need, if it is in one of the need's targets.
  [[nodiscard]] PodIndex ContinuityPod(const OpenNeed& need);
  [[nodiscard]] v1::CandidateRejection StaticRejection(const OpenNeed& need, PodIndex pod,
                                                       std::uint32_t specificity) const;
  void Place(OpenNeed& need, PodIndex pod, const Target& target, const Score& score,
             DecisionBuffer& out);
  void Wait(OpenNeed& need, v1::PendingReason reason, bool announce, DecisionBuffer& out);
  void Escalate(OpenNeed& need, v1::EscalationReason reason, DecisionBuffer& out);
  void Release(OpenNeed& need, v1::ReleaseReason reason, DecisionBuffer& out);
  void WriteReleased(const OpenNeed& need, std::string_view pod_id, v1::ReleaseReason reason,
                     DecisionBuffer& out);
  void DeclineAndReroute(OpenNeed& need, v1::HistoryKind kind, DecisionBuffer& out);
  void Drain(PodIndex pod, DecisionBuffer& out);
  void DrainAll(DecisionBuffer& out);
  void Close(std::uint64_t id);

  // Helpers.
  void Reject(v1::RejectReason reason, std::string_view referral_id, std::string_view detail,
              DecisionBuffer& out);
  // Starts a decision: writes the envelope's header, opens its body and returns the writer for
  // the body's fields, in field order; out.End() completes it.
  WireWriter NewDecision(DecisionBuffer& out, v1::Envelope::BodyCase body);
  bool NextPrefix(std::string_view domain);
  void BuildHeader(std::string_view domain);
  bool PatchHeader();
  // Starts a decision about `need` whose body begins with referral_id = 1, client_ref = 2 and
  // need_code = 3 (Routed, Queued, Escalated), keyed by the need until SetKey() says otherwise.
  WireWriter NewNeedDecision(DecisionBuffer& out, v1::Envelope::BodyCase body,
                             const OpenNeed& need);
  // The candidates a Routed or Queued lists (field `field` of its body).
  void WriteRejected(WireWriter& w, int field) const;
  // Puts `need` in its queue and in the waiting set of each pod of its current target that
  // could take it once free (StaticRejection finds nothing).
  void Enqueue(const OpenNeed& need);
  // The same, when candidates_ holds the evaluation of that target just made: no pod is checked
  // again.
  void EnqueueEvaluated(const OpenNeed& need);
  void Dequeue(const OpenNeed& need);
  void AddTimer(std::int64_t at, const OpenNeed& need, TimerKind kind);
  void RebuildDerived();
  [[nodiscard]] std::uint32_t IntakeToday(PodIndex pod) const;
  [[nodiscard]] std::string_view NeedCode(const OpenNeed& need) const {
    return rules_->needs[need.need].code;
  }
  // The open need of (referral id, need code), if any.
  [[nodiscard]] std::optional<std::uint64_t> FindNeed(std::string_view referral_id,
                                                      std::string_view need_code) const;
  // The same, as the need itself (one lookup less for a caller that needs it).
  [[nodiscard]] const OpenNeed* FindOpenNeed(std::string_view referral_id,
                                             std::string_view need_code) const;
  [[nodiscard]] OpenNeed* FindOpenNeed(std::string_view referral_id, std::string_view need_code);
  // Open need `id` if it is the one of (referral id, need code), else null: confirms an
  // index hit.
  [[nodiscard]] const OpenNeed* NeedOf(std::uint64_t id, std::string_view referral_id,
                                       std::string_view need_code) const;
  // Indexes need `id` under its (referral id, need code); false if that pair is open already.
  bool IndexNeed(std::uint64_t id, std::string_view referral_id, std::string_view need_code);
  void NoteChanged(std::uint64_t id) {
    changed_needs_.push_back(id);
    if (changed_needs_.size() >= dedup_changed_at_) [[unlikely]] {
      CompactChanged();
    }
  }
  void CompactChanged();  // a caller that rarely takes changes keeps the distinct ids only
  void DedupChanged();
  void ResetPods(const std::vector<PodState>* previous, const Rules* previous_rules);
  void SnapshotHeader(v1::RouterSnapshot& s) const;
  void WriteNeed(const OpenNeed& need, WireWriter& w) const;
  [[nodiscard]] const LocalTime& Local() const;
  ClientState& RecordOf(std::string_view client_ref);
  ClientState& RecordOf(const OpenNeed& need);
  void UpdateClientOpen(const OpenNeed& need);
  void RemoveClientOpen(const OpenNeed& need);
  ClientState::History& AddHistory(const OpenNeed& need, v1::HistoryKind kind, Symbol pod);

  std::shared_ptr<const Rules> rules_;
  ClientStore& clients_;
  Offset last_applied_{-1};
  std::int64_t now_ms_ = 0;
  std::uint64_t next_id_ = 1;

  std::vector<PodState> pods_;  // by PodIndex
  absl::node_hash_map<std::uint64_t, OpenNeed> needs_;
  NeedKeys keys_;  // (referral id, need code) -> id
  std::vector<absl::btree_set<QueueKey>> queues_;           // by NeedIndex
  std::vector<absl::btree_set<QueueKey>> pod_waiting_;      // by PodIndex
  // Pending timers, one queue per TimerKind: within a kind, new timers mostly fall after all the
  // others (a pod's accept timeout, a step's wait and a need's maximum wait are fixed lengths
  // from now), so an insert near the back is nearly free. Stale ones stay until due.
  std::array<SortedQueue<Timer>, 3> timers_;  // by TimerKind
  // Needs changed since the last TakeChanges(), with repeats (cheaper than a set per change),
  // deduplicated whenever it doubles past its distinct count.
  static constexpr std::size_t kMinDedupChangedAt = 1 << 16;
  std::vector<std::uint64_t> changed_needs_;
  std::size_t dedup_changed_at_ = kMinDedupChangedAt;
  bool rules_changed_ = true;

  std::vector<PodTiming> timings_;  // of the last Apply
  // Per-Apply scratch, kept to avoid allocating on the hot path.
  const v1::Envelope* cause_ = nullptr;
  int decisions_in_apply_ = 0;
  std::vector<Candidate> candidates_;
  std::vector<std::uint64_t> scratch_ids_;
  ClientState* cached_record_ = nullptr;
  mutable LocalTime local_;
  mutable std::int64_t local_from_ms_ = 0;  // local_ holds for event times in [from, until)
  mutable std::int64_t local_until_ms_ = 0;
  mutable TimeZone local_zone_ = TimeZone::kUtc;
  // NewDecision's header parts, made at the first decision of each Apply.
  std::string id_prefix_;  // "<domain>/<offset>/" of the last header built
  std::int64_t prefix_offset_ = -1;  // that offset
  std::size_t prefix_domain_size_ = 0;  // and its domain's length
  WireWriter::Buffer header_;
  std::size_t digit_in_header_ = 0;  // the event id's last byte
  std::size_t tail_in_header_ = 0;   // the fields after the event id
  std::size_t domain_in_header_ = 0;
  std::size_t time_in_header_ = 0;       // event_time_ms's value
  std::size_t time_size_in_header_ = 0;  // field 3 with its key; 0 if not written
  std::size_t trace_in_header_ = 0;       // trace_id's value
  std::size_t trace_size_in_header_ = 0;  // and its size
};

}  // namespace signpost::router

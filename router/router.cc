// SPDX-License-Identifier: Apache-2.0
#include "router/router.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <iterator>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "router/base/short_bytes.h"
#include "router/local_time.h"

namespace signpost::router {
namespace {

constexpr std::size_t kMaxIdLength = 128;
constexpr std::string_view kProducer = "router";
constexpr int kMaxHistory = 32;
constexpr int kMaxDrainMisses = 64;  // waiting needs tried per drain that still cannot be placed

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Unspecified, and any value this build does not know, is ROUTINE.
v1::Urgency Effective(v1::Urgency u) {
  return u >= v1::URGENCY_ROUTINE && u <= v1::URGENCY_EMERGENCY ? u : v1::URGENCY_ROUTINE;
}

bool Temporary(v1::CandidateRejection reason) {
  switch (reason) {
    case v1::CANDIDATE_REJECTION_AT_CAPACITY:
    case v1::CANDIDATE_REJECTION_DAILY_INTAKE_REACHED:
    case v1::CANDIDATE_REJECTION_OUTSIDE_OPENING_HOURS:
    case v1::CANDIDATE_REJECTION_NO_CONSENT:
      return true;
    default:
      return false;
  }
}

// Whether Router::StaticRejection gives `reason`: the pod can never take the need as it stands.
bool Static(v1::CandidateRejection reason) {
  switch (reason) {
    case v1::CANDIDATE_REJECTION_OUTSIDE_COVERAGE:
    case v1::CANDIDATE_REJECTION_MISSING_REQUIRED_FLAG:
    case v1::CANDIDATE_REJECTION_EXCLUDED_FLAG:
    case v1::CANDIDATE_REJECTION_LANGUAGE_NOT_SUPPORTED:
    case v1::CANDIDATE_REJECTION_PREVIOUSLY_DECLINED:
    case v1::CANDIDATE_REJECTION_NO_CONSENT:
      return true;
    default:
      return false;
  }
}

}  // namespace

Router::Router(std::shared_ptr<const Rules> rules, ClientStore& clients)
    : rules_(std::move(rules)), clients_(clients) {
  ResetPods(nullptr, nullptr);
  queues_.resize(rules_->needs.size());
  pod_waiting_.resize(rules_->pods.size());
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline const Router::OpenNeed* Router::NeedOf(
    std::uint64_t id, std::string_view referral_id, std::string_view need_code) const {
  auto it = needs_.find(id);
  return it != needs_.end() && EqualBytes(it->second.referral_id, referral_id) &&
                 EqualBytes(NeedCode(it->second), need_code)
             ? &it->second
             : nullptr;
}

std::optional<std::uint64_t> Router::FindNeed(std::string_view referral_id,
                                              std::string_view need_code) const {
  const OpenNeed* open = FindOpenNeed(referral_id, need_code);
  return open == nullptr ? std::nullopt : std::optional<std::uint64_t>(open->id);
}

const Router::OpenNeed* Router::FindOpenNeed(std::string_view referral_id,
                                             std::string_view need_code) const {
  const OpenNeed* found = nullptr;
  static_cast<void>(keys_.Find(referral_id, need_code, [&](std::uint64_t id) {
    found = NeedOf(id, referral_id, need_code);
    return found != nullptr;
  }));
  return found;
}

Router::OpenNeed* Router::FindOpenNeed(std::string_view referral_id,
                                       std::string_view need_code) {
  return const_cast<OpenNeed*>(std::as_const(*this).FindOpenNeed(referral_id, need_code));
}

bool Router::IndexNeed(std::uint64_t id, std::string_view referral_id,
                       std::string_view need_code) {
  return keys_.Insert(referral_id, need_code, id, [&](std::uint64_t other) {
    return NeedOf(other, referral_id, need_code) != nullptr;
  });
}

// Pods take their values from the rules; a previous runtime (same pod id) keeps its live
// status, overrides and today's intake count.
void Router::ResetPods(const std::vector<PodState>* previous, const Rules* previous_rules) {
  std::vector<PodState> pods(rules_->pods.size());
  for (PodIndex p = 0; p < pods.size(); ++p) {
    const PodRule& rule = rules_->pods[p];
    pods[p].status = rule.status;
    pods[p].capacity = rule.capacity;
    pods[p].daily_intake = rule.daily_intake;
    if (previous != nullptr) {
      if (const PodIndex* old = previous_rules->FindPod(rule.id)) {
        const PodState& before = (*previous)[*old];
        pods[p].intake_day = before.intake_day;
        pods[p].intake_count = before.intake_count;
      }
    }
  }
  pods_ = std::move(pods);
}

absl::StatusOr<ApplyResult> Router::Apply(const v1::Envelope& event, Offset offset,
                                          DecisionBuffer& out) {
  if (offset <= last_applied_) {
    return ApplyResult::kSkipped;
  }
  last_applied_ = offset;
  now_ms_ = std::max(now_ms_, event.event_time_ms());
  cause_ = &event;
  decisions_in_apply_ = 0;
  cached_record_ = nullptr;
  timings_.clear();
  if (event.schema_version() != 1) {
    Reject(v1::REJECT_REASON_INVALID_EVENT, "", "unsupported schema_version", out);
    return ApplyResult::kApplied;
  }
  switch (event.body_case()) {
    case v1::Envelope::kReferralSubmitted:
      OnReferral(event, out);
      break;
    case v1::Envelope::kPodResponse:
      OnPodResponse(event, out);
      break;
    case v1::Envelope::kPodChanged:
      OnPodChanged(event, out);
      break;
    case v1::Envelope::kRulesChanged:
      OnRulesChanged(event, out);
      break;
    case v1::Envelope::kTick:
      OnTick(out);
      break;
    case v1::Envelope::kClientErasureRequested:
      OnErasure(event, out);
      break;
    default:
      Reject(v1::REJECT_REASON_INVALID_EVENT, "", "not an input event", out);
      break;
  }
  cause_ = nullptr;
  return ApplyResult::kApplied;
}

WireWriter Router::NewDecision(DecisionBuffer& out, v1::Envelope::BodyCase body) {
  // event_id, <domain>/<log offset>/<n>: unique and the same on every replay, even when inputs
  // reuse an event id (a retried submission, a restarted ticker).
  if (decisions_in_apply_ == 0) {
    // The header every decision of this Apply shares, as decision 0's: schema version, event
    // id, time, producer, trace id and domain. Decisions 1-9 differ from it in one byte.
    const std::string& domain = cause_->domain();
    const bool next = NextPrefix(domain);
    if (!next) {
      char number[24];  // any int64 in decimal
      id_prefix_.assign(domain);
      id_prefix_.push_back('/');
      id_prefix_.append(number,
                        std::to_chars(number, std::end(number), last_applied_.Value()).ptr);
      id_prefix_.push_back('/');
    }
    prefix_offset_ = last_applied_.Value();
    prefix_domain_size_ = domain.size();
    if (!next || !PatchHeader()) {
      BuildHeader(domain);
    }
  }
  WireWriter w = out.Begin(body);
  std::size_t header_at;
  if (decisions_in_apply_ < 10) {  // nearly always: an Apply makes one or two decisions
    header_at = w.Raw(header_.view());
    w.Set(header_at + digit_in_header_, static_cast<char>('0' + decisions_in_apply_));
  } else {
    w.Varint(1, 1);
    char n[24];
    w.String(2, id_prefix_,
             std::string_view(n, std::to_chars(n, std::end(n), decisions_in_apply_).ptr - n));
    header_at = w.Raw(header_.view().substr(tail_in_header_)) - tail_in_header_;
  }
  ++decisions_in_apply_;
  // The domain is the key unless the body names another.
  out.SetKey(header_at + domain_in_header_, cause_->domain().size());
  out.OpenBody();
  return w;
}

// Writes header_ for this Apply from scratch.
ABSL_ATTRIBUTE_NOINLINE void Router::BuildHeader(std::string_view domain) {
  header_.Clear();
  WireWriter h(header_);
  h.Varint(1, 1);  // schema_version
  digit_in_header_ = h.String(2, id_prefix_, "0") + id_prefix_.size();
  tail_in_header_ = header_.size;
  time_in_header_ = header_.size + 1;  // after field 3's key
  h.Signed(3, now_ms_);
  time_size_in_header_ = header_.size - tail_in_header_;  // with the key; 0 if not written
  h.String(4, kProducer);
  trace_in_header_ = h.String(5, cause_->trace_id());
  trace_size_in_header_ = cause_->trace_id().size();
  domain_in_header_ = h.String(6, domain);
}

// Turns the last header into this Apply's in place when only its offset digits and time moved:
// NextPrefix() kept the id's length, and the time takes as many bytes as before. False when it
// must be built anew.
bool Router::PatchHeader() {
  const std::string_view trace = cause_->trace_id();
  if (time_size_in_header_ == 0 || now_ms_ == 0 || trace.size() != trace_size_in_header_ ||
      !EqualBytes(header_.view().substr(trace_in_header_, trace.size()), trace)) {
    return false;
  }
  char varint[10];
  const std::size_t size = static_cast<std::size_t>(
      google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(
          static_cast<std::uint64_t>(now_ms_), reinterpret_cast<std::uint8_t*>(varint)) -
      reinterpret_cast<std::uint8_t*>(varint));
  if (size + 1 != time_size_in_header_) {
    return false;
  }
  char* bytes = header_.bytes.data();
  CopyBytes(bytes + digit_in_header_ - id_prefix_.size(), id_prefix_.data(), id_prefix_.size());
  std::memcpy(bytes + time_in_header_, varint, size);
  return true;
}

// Turns id_prefix_ into this Apply's when it is the previous offset's in the same domain, by
// adding one to its decimal digits; false when it must be written anew (another domain, a gap,
// or all nines).
bool Router::NextPrefix(std::string_view domain) {
  if (prefix_offset_ < 0 || prefix_offset_ + 1 != last_applied_.Value() ||
      prefix_domain_size_ != domain.size() ||
      !EqualBytes(std::string_view(id_prefix_).substr(0, domain.size()), domain)) {
    return false;
  }
  for (std::size_t i = id_prefix_.size() - 2; i > domain.size(); --i) {
    if (id_prefix_[i] != '9') {
      ++id_prefix_[i];
      return true;
    }
    id_prefix_[i] = '0';
  }
  return false;  // 99...9 + 1 has one digit more
}

WireWriter Router::NewNeedDecision(DecisionBuffer& out, v1::Envelope::BodyCase body,
                                   const OpenNeed& need) {
  const std::string& code = rules_->needs[need.need].code;
  WireWriter w = NewDecision(out, body);
  const std::size_t referral_at = w.String(1, need.referral_id);
  w.String(2, need.facts->client_ref);
  const std::size_t code_at = w.String(3, code);
  out.SetKey(code_at, code.size());
  out.SetNeed(referral_at, need.referral_id.size(), code_at, code.size());
  return w;
}

void Router::WriteRejected(WireWriter& w, int field) const {
  for (const Candidate& c : candidates_) {  // RejectedCandidate
    const std::size_t at = w.Open(field);
    w.String(1, rules_->pods[c.pod].id);
    w.Signed(2, c.reason);
    w.Close(at);
  }
}

void Router::Reject(v1::RejectReason reason, std::string_view referral_id,
                    std::string_view detail, DecisionBuffer& out) {
  WireWriter w = NewDecision(out, v1::Envelope::kRejected);  // Rejected
  w.String(1, cause_->event_id());
  w.String(2, referral_id);
  w.Signed(3, reason);
  w.String(4, detail);
  out.SetReason(reason);
  out.End();
}

template <typename FlagList, typename ConsentList>
std::shared_ptr<const Router::Facts> Router::MakeFacts(
    const std::string& client_ref, const std::string& postcode_outward, const std::string& lsoa,
    std::uint32_t birth_year, const FlagList& flags, const std::string& language,
    const ConsentList& consent, const v1::SealedPayload* payload) {
  auto facts = std::make_shared<Facts>();
  facts->client_ref = client_ref;
  facts->postcode_outward = postcode_outward;
  if (std::any_of(postcode_outward.begin(), postcode_outward.end(), absl::ascii_islower)) {
    facts->upper_outward =
        std::make_unique<const std::string>(absl::AsciiStrToUpper(AbslView(postcode_outward)));
  }
  facts->lsoa = lsoa;
  facts->birth_year = birth_year;
  for (int f : flags) {
    if (f > 0 && f < 32) {
      facts->flags |= 1u << f;
    }
  }
  facts->language = language;
  for (int c : consent) {
    if (c > 0 && c < 32) {
      facts->consent |= 1u << c;
    }
  }
  if (payload != nullptr) {
    facts->payload = std::make_unique<const v1::SealedPayload>(*payload);
  }
  return facts;
}

std::string_view Router::Facts::PrimaryLanguage() const {
  if (language.empty()) {
    return "en";
  }
  return std::string_view(language).substr(0, language.find('-'));
}

// ---------------------------------------------------------------------------------------------
// Referrals

void Router::Prefetch(const v1::Envelope& event) {
  switch (event.body_case()) {
    case v1::Envelope::kReferralSubmitted: {
      const v1::ReferralSubmitted& r = event.referral_submitted();
      clients_.PrefetchRecord(r.client_ref(), r.referral_id());
      for (const v1::Need& n : r.needs()) {
        if (const NeedIndex* index = rules_->FindNeed(n.code())) {
          keys_.Prefetch(r.referral_id(), rules_->needs[*index].code);
        }
      }
      break;
    }
    case v1::Envelope::kPodResponse:
      keys_.Prefetch(event.pod_response().referral_id(), event.pod_response().need_code());
      break;
    default:
      break;
  }
}

void Router::OnReferral(const v1::Envelope& event, DecisionBuffer& out) {
  const v1::ReferralSubmitted& r = event.referral_submitted();
  if (r.referral_id().empty() || r.referral_id().size() > kMaxIdLength) {
    Reject(v1::REJECT_REASON_INVALID_EVENT, "", "referral_id must be 1-128 bytes", out);
    return;
  }
  if (r.client_ref().empty() || r.client_ref().size() > kMaxIdLength) {
    Reject(v1::REJECT_REASON_INVALID_EVENT, r.referral_id(), "client_ref must be 1-128 bytes",
           out);
    return;
  }
  if (const std::string* owner = clients_.ClaimReferral(r.referral_id(), r.client_ref())) {
    ClientState& record = clients_.Mutable(*owner);
    record.set_duplicate_count(record.duplicate_count() + 1);
    Reject(v1::REJECT_REASON_DUPLICATE_REFERRAL, r.referral_id(), "referral id seen before", out);
    return;
  }
  ClientState& record = RecordOf(r.client_ref());
  if (record.referral_count() == 0) {
    record.set_first_contact_ms(now_ms_);
  }
  record.set_last_contact_ms(now_ms_);
  record.set_referral_count(record.referral_count() + 1);
  record.AddReferral(r.referral_id());

  const std::shared_ptr<const Facts> facts =
      MakeFacts(r.client_ref(), r.postcode_outward(), r.lsoa(), r.birth_year(), r.flags(),
                r.language(), r.consent(), r.has_payload() ? &r.payload() : nullptr);

  // Fan out: one open need per distinct routed need; unknown or blank codes go to triage.
  auto route_one = [&](NeedIndex need_index, v1::Urgency urgency) {
    if (!IndexNeed(next_id_, r.referral_id(), rules_->needs[need_index].code)) {
      return;  // the same need twice in one referral is one need
    }
    const std::uint64_t id = next_id_++;
    OpenNeed& need = needs_[id];
    need.id = id;
    need.referral_id = r.referral_id();
    need.need = need_index;
    need.urgency = Effective(urgency == v1::URGENCY_UNSPECIFIED ? r.urgency() : urgency);
    need.submitted_ms = now_ms_;
    need.step_started_ms = now_ms_;
    need.state_since_ms = now_ms_;
    need.facts = facts;
    Route(need, true, out);
  };
  if (r.needs_size() == 0) {
    route_one(rules_->triage_need, v1::URGENCY_UNSPECIFIED);
  }
  for (const v1::Need& n : r.needs()) {
    const NeedIndex* index = rules_->FindNeed(n.code());
    route_one(index != nullptr ? *index : rules_->triage_need, n.urgency());
  }
}

// What keeps `pod` from ever taking `need` under the current rules, whatever its load or the
// time: coverage, flags, language, consent, an earlier decline. UNSPECIFIED if nothing does.
v1::CandidateRejection Router::StaticRejection(const OpenNeed& need, PodIndex pod,
                                               std::uint32_t specificity) const {
  const PodRule& rule = rules_->pods[pod];
  const Facts& facts = *need.facts;
  if (specificity == 0) {
    return v1::CANDIDATE_REJECTION_OUTSIDE_COVERAGE;
  }
  if ((facts.flags & rule.required_flags) != rule.required_flags) {
    return v1::CANDIDATE_REJECTION_MISSING_REQUIRED_FLAG;
  }
  if ((facts.flags & rule.excluded_flags) != 0) {
    return v1::CANDIDATE_REJECTION_EXCLUDED_FLAG;
  }
  if (!rule.languages.empty() &&
      std::none_of(rule.languages.begin(), rule.languages.end(),
                   [primary = facts.PrimaryLanguage()](const std::string& l) {
                     return absl::EqualsIgnoreCase(l, AbslView(primary));
                   })) {
    return v1::CANDIDATE_REJECTION_LANGUAGE_NOT_SUPPORTED;
  }
  if (std::find(need.declined.begin(), need.declined.end(), pod) != need.declined.end()) {
    return v1::CANDIDATE_REJECTION_PREVIOUSLY_DECLINED;
  }
  if ((facts.consent & rule.required_consent) != rule.required_consent) {
    return v1::CANDIDATE_REJECTION_NO_CONSENT;
  }
  return v1::CANDIDATE_REJECTION_UNSPECIFIED;
}

// Filters the target's pods for `need` into candidates_, and picks the best eligible one.
// Score order: continuity, locality specificity, headroom, weight; ties go to the lower pod id
// (target pods are sorted by id and only a strictly better score replaces the best).
bool Router::Evaluate(const OpenNeed& need, std::span<const PodIndex> pods,
                      PodIndex continuity_pod, PodIndex& best, Score& best_score) {
  candidates_.clear();
  const Facts& facts = *need.facts;
  const LocalTime& local = Local();
  bool found = false;
  for (PodIndex p : pods) {
    const PodRule& rule = rules_->pods[p];
    const PodState& state = pods_[p];
    const std::uint32_t cost = rule.cost[need.need];
    const std::uint32_t specificity = rule.coverage.Specificity(facts.Outward());
    v1::CandidateRejection reason = StaticRejection(need, p, specificity);
    const int age =
        facts.birth_year == 0 ? -1 : local.year - static_cast<int>(facts.birth_year);
    if (reason != v1::CANDIDATE_REJECTION_UNSPECIFIED) {
    } else if (state.status != v1::POD_STATUS_OPEN) {
      reason = state.status == v1::POD_STATUS_PAUSED ? v1::CANDIDATE_REJECTION_AT_CAPACITY
                                                     : v1::CANDIDATE_REJECTION_NOT_OPEN;
    } else if (age >= 0 && ((rule.min_age >= 0 && age < rule.min_age) ||
                            (rule.max_age >= 0 && age > rule.max_age))) {
      reason = v1::CANDIDATE_REJECTION_AGE_OUT_OF_RANGE;
    } else if (!rule.hours.always &&
               (!(rule.hours.days & (1u << local.weekday)) ||
                local.minute < rule.hours.open_minute || local.minute >= rule.hours.close_minute)) {
      reason = v1::CANDIDATE_REJECTION_OUTSIDE_OPENING_HOURS;
    } else if (state.open_cost + cost > state.capacity) {
      reason = v1::CANDIDATE_REJECTION_AT_CAPACITY;
    } else if (state.daily_intake > 0 && IntakeToday(p) >= state.daily_intake) {
      reason = v1::CANDIDATE_REJECTION_DAILY_INTAKE_REACHED;
    }
    if (reason != v1::CANDIDATE_REJECTION_UNSPECIFIED) {
      candidates_.push_back({p, reason});
      continue;
    }
    const bool continuity = p == continuity_pod;
    const std::uint32_t headroom =
        static_cast<std::uint32_t>((std::uint64_t{state.capacity - state.open_cost - cost} * 1000) /
                                   std::max<std::uint32_t>(state.capacity, 1));
    const Score score{continuity, specificity, headroom, rule.weight};
    if (!found || best_score < score) {
      if (found) {
        candidates_.push_back({best, v1::CANDIDATE_REJECTION_LOWER_SCORE});
      }
      found = true;
      best = p;
      best_score = score;
    } else {
      candidates_.push_back({p, v1::CANDIDATE_REJECTION_LOWER_SCORE});
    }
  }
  return found;
}

PodIndex Router::ContinuityPod(const OpenNeed& need) {
  const ClientState& record = RecordOf(need);
  const Symbol code = rules_->needs[need.need].symbol;
  for (const ClientState::Continuity& c : record.continuity()) {
    if (c.need != code) {
      continue;
    }
    const PodIndex* pod = rules_->FindPod(c.pod.view());
    if (pod == nullptr) {
      return kNoPod;
    }
    for (const Target& target : rules_->need_rules[need.need].targets) {
      if (std::binary_search(target.pods.begin(), target.pods.end(), *pod)) {
        return *pod;
      }
    }
    return kNoPod;
  }
  return kNoPod;
}

// Routes `need` from its current step: placed, waiting (with a reason), or escalated.
// `announce_unchanged_wait`: emit Queued even if the need was already waiting at this step for
// the same reason (false when a drain retries a waiting need).
void Router::Route(OpenNeed& need, bool announce_unchanged_wait, DecisionBuffer& out) {
  NoteChanged(need.id);
  const NeedRule& rule = rules_->need_rules[need.need];
  if (rule.targets.empty()) {
    Escalate(need, v1::ESCALATION_REASON_RULE, out);
    return;
  }
  PodIndex best = kNoPod;
  Score score;
  // Continuity of care first: the pod that last accepted this client's need takes it again if
  // it is in any of the need's targets and can take it now.
  const PodIndex continuity = ContinuityPod(need);
  if (continuity != kNoPod) {
    const PodIndex one[] = {continuity};
    if (Evaluate(need, one, continuity, best, score)) {
      static const Target kContinuity{"continuity", {}, 0};
      Place(need, best, kContinuity, score, out);
      return;
    }
  }
  while (true) {
    const Target& target = rule.targets[need.step];
    if (Evaluate(need, target.pods, continuity, best, score)) {
      Place(need, best, target, score, out);
      return;
    }
    v1::PendingReason reason = v1::PENDING_REASON_NO_ELIGIBLE_POD;
    for (const Candidate& c : candidates_) {
      if (c.reason == v1::CANDIDATE_REJECTION_AT_CAPACITY ||
          c.reason == v1::CANDIDATE_REJECTION_DAILY_INTAKE_REACHED) {
        reason = v1::PENDING_REASON_ALL_AT_CAPACITY;
        break;
      }
      if (c.reason == v1::CANDIDATE_REJECTION_OUTSIDE_OPENING_HOURS) {
        reason = v1::PENDING_REASON_OUTSIDE_OPENING_HOURS;
      } else if (c.reason == v1::CANDIDATE_REJECTION_NO_CONSENT &&
                 reason == v1::PENDING_REASON_NO_ELIGIBLE_POD) {
        reason = v1::PENDING_REASON_AWAITING_CONSENT;
      }
    }
    const bool waiting_helps = std::any_of(candidates_.begin(), candidates_.end(),
                                           [](const Candidate& c) { return Temporary(c.reason); });
    if (waiting_helps) {
      const bool changed = need.state != v1::NEED_STATE_QUEUED || need.pending != reason;
      Wait(need, reason, announce_unchanged_wait || changed, out);
      return;
    }
    // Nobody in this target can ever take it: move on at once, or escalate after the last.
    if (need.step + 1 >= rule.targets.size()) {
      Escalate(need, v1::ESCALATION_REASON_NO_TARGET_LEFT, out);
      return;
    }
    if (need.state == v1::NEED_STATE_QUEUED) {
      Dequeue(need);
      need.state = v1::NEED_STATE_UNSPECIFIED;
    }
    ++need.step;
    need.step_started_ms = now_ms_;
  }
}

void Router::Place(OpenNeed& need, PodIndex pod, const Target& target,
                   const Score& score, DecisionBuffer& out) {
  if (need.state == v1::NEED_STATE_QUEUED) {
    Dequeue(need);
  }
  const PodRule& rule = rules_->pods[pod];
  PodState& state = pods_[pod];
  state.open_cost += rule.cost[need.need];
  state.open_ids.insert(need.id);
  const std::int64_t today = Local().day;
  if (state.intake_day != today) {
    state.intake_day = today;
    state.intake_count = 0;
  }
  ++state.intake_count;

  need.state = v1::NEED_STATE_OFFERED;
  need.state_since_ms = now_ms_;
  need.pod = pod;
  need.pending = v1::PENDING_REASON_UNSPECIFIED;
  ++need.attempt;
  ++need.generation;
  need.accept_by_ms = rule.accept_timeout_ms > 0 ? now_ms_ + rule.accept_timeout_ms : 0;
  if (need.accept_by_ms > 0) {
    AddTimer(need.accept_by_ms, need, TimerKind::kAcceptTimeout);
  }

  const Facts& facts = *need.facts;
  const std::string& code = rules_->needs[need.need].code;
  WireWriter w = NewNeedDecision(out, v1::Envelope::kRouted, need);  // Routed
  out.SetKey(w.String(4, rule.id), rule.id.size());  // keyed by its pod
  w.Varint(5, need.step);
  w.String(6, target.name);
  w.String(7, code);  // matched_rule
  std::size_t at = w.Open(8);  // ScoreParts
  w.Varint(1, score.continuity ? 1 : 0);
  w.Varint(2, score.specificity);
  w.Varint(3, score.headroom_permille);
  w.Varint(4, score.weight);
  w.Close(at);
  WriteRejected(w, 9);
  w.Signed(10, need.urgency);
  w.Varint(11, need.attempt);
  w.Signed(12, now_ms_ - need.submitted_ms);
  w.Signed(13, need.accept_by_ms);
  at = w.Open(14);  // ScopedAttributes, the fields the pod's data scope allows
  const std::uint32_t scope = rule.data_scope;
  if (scope & kScopeClientRef) w.String(1, facts.client_ref);
  if (scope & kScopePostcode) w.String(2, facts.postcode_outward);
  if (scope & kScopeLsoa) w.String(3, facts.lsoa);
  if (scope & kScopeBirthYear) w.Varint(4, facts.birth_year);
  if ((scope & kScopeFlags) && (facts.flags & ~1u) != 0) {
    const std::size_t flags = w.Open(5);  // packed
    for (int f = 1; f < 32; ++f) {
      if (facts.flags & (1u << f)) {
        w.RawVarint(static_cast<std::uint64_t>(f));
      }
    }
    w.Close(flags);
  }
  if (scope & kScopeLanguage) w.String(6, facts.language);
  if ((scope & kScopePayload) && facts.payload != nullptr) w.Message(7, *facts.payload);
  w.Close(at);
  out.End();

  UpdateClientOpen(need);
}

void Router::Wait(OpenNeed& need, v1::PendingReason reason, bool announce, DecisionBuffer& out) {
  const NeedRule& rule = rules_->need_rules[need.need];
  const Target& target = rule.targets[need.step];
  const bool newly_waiting = need.state != v1::NEED_STATE_QUEUED;
  const std::int64_t next_step_at = target.max_wait_ms > 0 && need.step + 1 < rule.targets.size()
                                        ? need.step_started_ms + target.max_wait_ms
                                        : 0;
  const std::int64_t escalate_at = need.submitted_ms + rule.max_wait_ms;
  need.pending = reason;
  if (newly_waiting) {
    need.state = v1::NEED_STATE_QUEUED;
    need.state_since_ms = now_ms_;
    need.pod = kNoPod;
    ++need.generation;
    EnqueueEvaluated(need);
    if (next_step_at > 0) {
      AddTimer(next_step_at, need, TimerKind::kStepDeadline);
    }
    AddTimer(escalate_at, need, TimerKind::kEscalate);
    UpdateClientOpen(need);
  }
  if (!announce) {
    return;
  }
  WireWriter w = NewNeedDecision(out, v1::Envelope::kQueued, need);  // Queued
  w.Signed(4, reason);
  w.Varint(5, need.step);
  w.String(6, target.name);
  WriteRejected(w, 7);
  w.Signed(8, need.urgency);
  w.Signed(9, next_step_at);
  w.Signed(10, escalate_at);
  out.SetReason(reason);
  out.End();
}

void Router::Escalate(OpenNeed& need, v1::EscalationReason reason, DecisionBuffer& out) {
  const NeedRule& rule = rules_->need_rules[need.need];
  WireWriter w = NewNeedDecision(out, v1::Envelope::kEscalated, need);  // Escalated
  w.String(4, rule.escalate_to);
  w.Signed(5, reason);
  w.Signed(6, now_ms_ - need.submitted_ms);
  w.Varint(7, need.declines);
  out.SetReason(reason);
  out.End();
  AddHistory(need, v1::HISTORY_KIND_ESCALATED, Symbol()).escalation_target =
      rule.escalate_symbol;
  Close(need.id);
}

void Router::Release(OpenNeed& need, v1::ReleaseReason reason, DecisionBuffer& out) {
  PodState& state = pods_[need.pod];
  state.open_cost -= rules_->pods[need.pod].cost[need.need];
  state.open_ids.erase(need.id);
  WriteReleased(need, rules_->pods[need.pod].id, reason, out);
}

void Router::WriteReleased(const OpenNeed& need, std::string_view pod_id,
                           v1::ReleaseReason reason, DecisionBuffer& out) {
  WireWriter w = NewDecision(out, v1::Envelope::kReleased);  // Released
  const std::string& code = rules_->needs[need.need].code;
  const std::size_t referral_at = w.String(1, need.referral_id);  // before field 2
  out.SetNeed(referral_at, need.referral_id.size(), w.String(2, code), code.size());
  out.SetKey(w.String(3, pod_id), pod_id.size());
  w.Signed(4, reason);
  out.SetReason(reason);
  out.End();
}

// Closes a need for good: out of the queues, the key index and the client's open work.
void Router::Close(std::uint64_t id) {
  NoteChanged(id);
  auto it = needs_.find(id);
  OpenNeed& need = it->second;
  if (need.state == v1::NEED_STATE_QUEUED) {
    Dequeue(need);
  }
  RemoveClientOpen(need);
  keys_.Erase(need.referral_id, NeedCode(need), id);
  needs_.erase(it);
}

// A decline or an accept timeout: give the slot back, then re-route without that pod, or
// escalate once the need has been declined too often.
void Router::DeclineAndReroute(OpenNeed& need, v1::HistoryKind kind, DecisionBuffer& out) {
  const PodIndex pod = need.pod;
  Release(need,
          kind == v1::HISTORY_KIND_DECLINED ? v1::RELEASE_REASON_DECLINED
                                            : v1::RELEASE_REASON_ACCEPT_TIMEOUT,
          out);
  AddHistory(need, kind, rules_->pods[pod].symbol);
  need.declined.push_back(pod);
  ++need.declines;
  need.pod = kNoPod;
  need.state = v1::NEED_STATE_UNSPECIFIED;
  ++need.generation;
  if (need.declines >= rules_->need_rules[need.need].max_declines) {
    Escalate(need, v1::ESCALATION_REASON_TOO_MANY_DECLINES, out);
  } else {
    need.step_started_ms = now_ms_;
    Route(need, true, out);
  }
  Drain(pod, out);
}

// Offers freed capacity at `pod` to the needs waiting for it, most urgent and oldest first.
void Router::Drain(PodIndex pod, DecisionBuffer& out) {
  const PodState& state = pods_[pod];
  if (state.status != v1::POD_STATUS_OPEN) {
    return;
  }
  auto& waiting = pod_waiting_[pod];
  int misses = 0;
  auto it = waiting.begin();
  while (it != waiting.end() && state.open_cost < state.capacity && misses < kMaxDrainMisses) {
    const QueueKey key = *it;
    Route(needs_.find(IdOf(key))->second, false, out);
    auto still = needs_.find(IdOf(key));
    if (still != needs_.end() && still->second.state == v1::NEED_STATE_QUEUED) {
      ++misses;  // e.g. its cost is more than the room left, or the pod is closed for the day
    }
    it = waiting.upper_bound(key);
  }
}

void Router::DrainAll(DecisionBuffer& out) {
  for (PodIndex p = 0; p < pods_.size(); ++p) {
    if (pods_[p].open_cost < pods_[p].capacity && !pod_waiting_[p].empty()) {
      Drain(p, out);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pod responses

void Router::OnPodResponse(const v1::Envelope& event, DecisionBuffer& out) {
  const v1::PodResponse& r = event.pod_response();
  OpenNeed* const open = FindOpenNeed(r.referral_id(), r.need_code());
  if (open == nullptr) {
    const bool known = clients_.FindReferral(r.referral_id()) != nullptr;
    Reject(known ? v1::REJECT_REASON_INVALID_TRANSITION : v1::REJECT_REASON_UNKNOWN_REFERRAL,
           r.referral_id(), known ? "need is not open" : "unknown referral", out);
    return;
  }
  OpenNeed& need = *open;
  const bool holds = need.state == v1::NEED_STATE_OFFERED || need.state == v1::NEED_STATE_ACCEPTED;
  const bool from_holder = holds && rules_->pods[need.pod].id == r.pod_id();
  switch (r.response_case()) {
    case v1::PodResponse::kAccepted:
      if (!from_holder) {
        Reject(v1::REJECT_REASON_NOT_ASSIGNED, r.referral_id(), "pod does not hold the need", out);
      } else if (need.state != v1::NEED_STATE_OFFERED) {
        Reject(v1::REJECT_REASON_INVALID_TRANSITION, r.referral_id(), "already accepted", out);
      } else {
        timings_.push_back({need.pod, PodTiming::kAccept, now_ms_ - need.state_since_ms});
        need.state = v1::NEED_STATE_ACCEPTED;
        NoteChanged(need.id);
        need.state_since_ms = now_ms_;
        ++need.generation;  // cancels the accept timeout
        UpdateClientOpen(need);
        const Symbol pod = rules_->pods[need.pod].symbol;  // the holder: r.pod_id()
        AddHistory(need, v1::HISTORY_KIND_ACCEPTED, pod);
        ClientState& record = RecordOf(need);
        const Symbol code = rules_->needs[need.need].symbol;
        ClientState::Continuity* entry = nullptr;
        for (ClientState::Continuity& c : record.mutable_continuity()) {
          if (c.need == code) {
            entry = &c;
          }
        }
        if (entry == nullptr) {
          entry = &record.mutable_continuity().emplace_back();
          entry->need = code;
        }
        entry->pod = pod;
      }
      return;
    case v1::PodResponse::kDeclined:
      if (!from_holder) {
        Reject(v1::REJECT_REASON_NOT_ASSIGNED, r.referral_id(), "pod does not hold the need", out);
      } else {
        DeclineAndReroute(need, v1::HISTORY_KIND_DECLINED, out);
      }
      return;
    case v1::PodResponse::kCompleted: {
      if (!from_holder) {
        Reject(v1::REJECT_REASON_NOT_ASSIGNED, r.referral_id(), "pod does not hold the need", out);
        return;
      }
      const PodIndex pod = need.pod;
      timings_.push_back({pod, PodTiming::kComplete, now_ms_ - need.state_since_ms});
      Release(need, v1::RELEASE_REASON_COMPLETED, out);
      ClientState::History& h =
          AddHistory(need, v1::HISTORY_KIND_COMPLETED, rules_->pods[pod].symbol);
      h.outcome = r.completed().outcome();
      h.remedies.assign(r.completed().remedies().begin(), r.completed().remedies().end());
      h.time_to_resolve_ms = now_ms_ - need.submitted_ms;
      Close(need.id);
      Drain(pod, out);
      return;
    }
    case v1::PodResponse::kWithdrawn: {
      if (!r.pod_id().empty() && holds && !from_holder) {
        Reject(v1::REJECT_REASON_NOT_ASSIGNED, r.referral_id(), "pod does not hold the need", out);
        return;
      }
      const PodIndex pod = holds ? need.pod : kNoPod;
      if (holds) {
        Release(need, v1::RELEASE_REASON_WITHDRAWN, out);
      }
      AddHistory(need, v1::HISTORY_KIND_WITHDRAWN, holds ? rules_->pods[pod].symbol : Symbol());
      Close(need.id);
      if (pod != kNoPod) {
        Drain(pod, out);
      }
      return;
    }
    default:
      Reject(v1::REJECT_REASON_INVALID_EVENT, r.referral_id(), "pod response without a response",
             out);
  }
}

// ---------------------------------------------------------------------------------------------
// Pods, rules, time, erasure

void Router::OnPodChanged(const v1::Envelope& event, DecisionBuffer& out) {
  const v1::PodChanged& c = event.pod_changed();
  const PodIndex* found = rules_->FindPod(c.pod_id());
  if (found == nullptr) {
    Reject(v1::REJECT_REASON_UNKNOWN_POD, "", "unknown pod", out);
    return;
  }
  const PodIndex pod = *found;
  PodState& state = pods_[pod];
  if (c.has_capacity()) {
    state.capacity = c.capacity();
    state.capacity_overridden = true;
  }
  if (c.has_daily_intake()) {
    state.daily_intake = c.daily_intake();
    state.intake_overridden = true;
  }
  if (c.status() != v1::POD_STATUS_UNSPECIFIED) {
    state.status = c.status();
  }
  if (state.status == v1::POD_STATUS_CLOSED && !state.open_ids.empty()) {
    // Closing gives every open need back and re-routes it elsewhere.
    scratch_ids_.assign(state.open_ids.begin(), state.open_ids.end());
    std::sort(scratch_ids_.begin(), scratch_ids_.end());  // in the order they were made
    for (std::uint64_t id : scratch_ids_) {
      OpenNeed& need = needs_.find(id)->second;
      Release(need, v1::RELEASE_REASON_POD_CLOSED, out);
      AddHistory(need, v1::HISTORY_KIND_POD_CLOSED, rules_->pods[pod].symbol);
      need.pod = kNoPod;
      need.state = v1::NEED_STATE_UNSPECIFIED;
      ++need.generation;
      need.step_started_ms = now_ms_;
      Route(need, true, out);
    }
  }
  Drain(pod, out);
}

void Router::OnRulesChanged(const v1::Envelope& event, DecisionBuffer& out) {
  absl::StatusOr<std::shared_ptr<const Rules>> loaded =
      LoadRules(event.rules_changed().rules_yaml(), "rules_changed");
  if (!loaded.ok()) {
    Reject(v1::REJECT_REASON_INVALID_RULES, "", std::string(loaded.status().message()), out);
    return;
  }
  std::shared_ptr<const Rules> previous = std::move(rules_);
  rules_ = std::move(*loaded);
  std::vector<PodState> old_pods = std::move(pods_);
  ResetPods(&old_pods, previous.get());

  // Re-express every open need in the new rules; needs whose pod is gone are re-routed.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, need] : needs_) {
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  std::vector<std::pair<std::uint64_t, std::string>> reroute;  // id, old pod id
  keys_.clear();
  for (std::uint64_t id : ids) {
    OpenNeed& need = needs_.find(id)->second;
    const std::string& old_code = previous->needs[need.need].code;
    const NeedIndex* index = rules_->FindNeed(old_code);
    need.need = index != nullptr ? *index : rules_->triage_need;
    const std::size_t targets = rules_->need_rules[need.need].targets.size();
    need.step = targets == 0 ? 0 : std::min<std::uint32_t>(need.step, targets - 1);
    std::vector<PodIndex> declined;
    for (PodIndex p : need.declined) {
      if (const PodIndex* q = rules_->FindPod(previous->pods[p].id)) {
        declined.push_back(*q);
      }
    }
    need.declined = std::move(declined);
    std::string old_pod;
    if (need.pod != kNoPod) {
      old_pod = previous->pods[need.pod].id;
      const PodIndex* q = rules_->FindPod(old_pod);
      need.pod = q != nullptr && rules_->pods[*q].Serves(need.need) ? *q : kNoPod;
    }
    if (need.pod == kNoPod &&
        (need.state == v1::NEED_STATE_OFFERED || need.state == v1::NEED_STATE_ACCEPTED)) {
      need.state = v1::NEED_STATE_UNSPECIFIED;
      reroute.emplace_back(id, std::move(old_pod));
    } else if (index == nullptr || targets == 0) {
      if (need.state == v1::NEED_STATE_QUEUED) {
        need.state = v1::NEED_STATE_UNSPECIFIED;
        reroute.emplace_back(id, "");
      }
    }
    ++need.generation;
    if (!IndexNeed(id, need.referral_id, NeedCode(need))) {
      // Two needs of one referral now share a code (both fell back to triage): the later one
      // is indexed, as it always was.
      keys_.Erase(need.referral_id, NeedCode(need), *FindNeed(need.referral_id, NeedCode(need)));
      IndexNeed(id, need.referral_id, NeedCode(need));
    }
  }
  queues_.assign(rules_->needs.size(), {});
  RebuildDerived();
  rules_changed_ = true;
  for (std::uint64_t id : ids) {
    NoteChanged(id);
  }
  for (auto& [id, old_pod] : reroute) {
    OpenNeed& need = needs_.find(id)->second;
    if (!old_pod.empty()) {
      WriteReleased(need, old_pod, v1::RELEASE_REASON_POD_CLOSED, out);
    }
    need.step_started_ms = now_ms_;
    Route(need, true, out);
  }
  DrainAll(out);
}

void Router::OnTick(DecisionBuffer& out) {
  while (true) {
    // The first due timer over all kinds: the order one set of all timers would give.
    SortedQueue<Timer>* due = nullptr;
    for (SortedQueue<Timer>& kind : timers_) {
      if (!kind.empty() && kind.front().at <= now_ms_ &&
          (due == nullptr || kind.front() < due->front())) {
        due = &kind;
      }
    }
    if (due == nullptr) {
      break;
    }
    const Timer timer = due->front();
    due->pop_front();
    auto it = needs_.find(timer.id);
    if (it == needs_.end() || it->second.generation != timer.generation) {
      continue;  // stale: the need moved on since the timer was set
    }
    OpenNeed& need = it->second;
    switch (timer.kind) {
      case TimerKind::kAcceptTimeout:
        if (need.state == v1::NEED_STATE_OFFERED) {
          DeclineAndReroute(need, v1::HISTORY_KIND_ACCEPT_TIMEOUT, out);
        }
        break;
      case TimerKind::kStepDeadline:
        if (need.state == v1::NEED_STATE_QUEUED) {
          Dequeue(need);
          need.state = v1::NEED_STATE_UNSPECIFIED;
          ++need.generation;
          ++need.step;
          need.step_started_ms = now_ms_;
          Route(need, true, out);
        }
        break;
      case TimerKind::kEscalate:
        if (need.state == v1::NEED_STATE_QUEUED) {
          Escalate(need, v1::ESCALATION_REASON_MAX_WAIT_EXCEEDED, out);
        }
        break;
    }
  }
  // Opening hours, intake days and capacity all move with time: offer what is free.
  DrainAll(out);
}

void Router::OnErasure(const v1::Envelope& event, DecisionBuffer& out) {
  const std::string& client_ref = event.client_erasure_requested().client_ref();
  const ClientState* record = clients_.Find(client_ref);
  std::uint32_t released = 0;
  std::vector<PodIndex> freed;
  if (record != nullptr) {
    scratch_ids_.clear();
    for (const ClientState::Open& open : record->open()) {
      if (const std::optional<std::uint64_t> id =
              FindNeed(record->ReferralId(open.referral), open.need.view())) {
        scratch_ids_.push_back(*id);
      }
    }
    std::sort(scratch_ids_.begin(), scratch_ids_.end());
    for (std::uint64_t id : scratch_ids_) {
      OpenNeed& need = needs_.find(id)->second;
      if (need.state == v1::NEED_STATE_OFFERED || need.state == v1::NEED_STATE_ACCEPTED) {
        Release(need, v1::RELEASE_REASON_CLIENT_ERASED, out);
        freed.push_back(need.pod);
        ++released;
      }
      Close(id);
    }
    for (const std::string& referral_id : clients_.Find(client_ref)->referral_ids()) {
      clients_.EraseReferral(referral_id);
    }
    clients_.Erase(client_ref);
    cached_record_ = nullptr;
  }
  WireWriter w = NewDecision(out, v1::Envelope::kClientErased);  // ClientErased
  w.String(1, client_ref);
  w.Varint(2, released);
  out.End();
  std::sort(freed.begin(), freed.end());
  freed.erase(std::unique(freed.begin(), freed.end()), freed.end());
  for (PodIndex pod : freed) {
    Drain(pod, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping

// A waiting need is in its need's queue and in the waiting set of every pod of its current
// target that could take it once free (open, capacity, intake, hours): a pod that frees up looks
// only at needs it could serve, most urgent and oldest first.
void Router::Enqueue(const OpenNeed& need) {
  const QueueKey key = KeyOf(need.urgency, need.id);
  queues_[need.need].insert(key);
  for (PodIndex p : rules_->need_rules[need.need].targets[need.step].pods) {
    const std::uint32_t specificity = rules_->pods[p].coverage.Specificity(need.facts->Outward());
    if (StaticRejection(need, p, specificity) == v1::CANDIDATE_REJECTION_UNSPECIFIED) {
      pod_waiting_[p].insert(key);
    }
  }
}

void Router::EnqueueEvaluated(const OpenNeed& need) {
  const QueueKey key = KeyOf(need.urgency, need.id);
  queues_[need.need].insert(key);
  for (const Candidate& c : candidates_) {
    if (!Static(c.reason)) {
      pod_waiting_[c.pod].insert(key);
    }
  }
}

void Router::Dequeue(const OpenNeed& need) {
  const QueueKey key = KeyOf(need.urgency, need.id);
  queues_[need.need].erase(key);
  for (PodIndex p : rules_->need_rules[need.need].targets[need.step].pods) {
    pod_waiting_[p].erase(key);
  }
}

void Router::AddTimer(std::int64_t at, const OpenNeed& need, TimerKind kind) {
  timers_[static_cast<std::size_t>(kind)].Insert({at, need.id, kind, need.generation});
}

std::uint32_t Router::IntakeToday(PodIndex pod) const {
  const PodState& state = pods_[pod];
  return state.intake_day == Local().day ? state.intake_count : 0;
}

void Router::UpdateClientOpen(const OpenNeed& need) {
  ClientState& record = RecordOf(need);
  const Symbol code = rules_->needs[need.need].symbol;
  ClientState::Open* entry = nullptr;
  for (ClientState::Open& open : record.mutable_open()) {
    if (open.need == code && EqualBytes(record.ReferralId(open.referral), need.referral_id)) {
      entry = &open;
      break;
    }
  }
  if (entry == nullptr) {
    entry = &record.mutable_open().emplace_back();
    entry->referral = record.ReferralPosition(need.referral_id);
    entry->need = code;
  }
  entry->pod = need.pod != kNoPod ? rules_->pods[need.pod].symbol : Symbol();
  entry->state = need.state;
  entry->since_ms = need.state_since_ms;
}

void Router::RemoveClientOpen(const OpenNeed& need) {
  ClientState& record = RecordOf(need);
  const Symbol code = rules_->needs[need.need].symbol;
  ClientState::OpenList& open = record.mutable_open();
  for (std::size_t i = 0; i < open.size(); ++i) {
    if (open[i].need == code && EqualBytes(record.ReferralId(open[i].referral), need.referral_id)) {
      // Swap to the end and drop it.
      std::swap(open[i], open.back());
      open.pop_back();
      return;
    }
  }
}

ClientState::History& Router::AddHistory(const OpenNeed& need, v1::HistoryKind kind,
                                         Symbol pod) {
  ClientState& record = RecordOf(need);
  ClientState::History& entry = record.AddHistory(kMaxHistory);
  entry.referral = record.ReferralPosition(need.referral_id);
  entry.need = rules_->needs[need.need].symbol;
  entry.pod = pod;
  entry.kind = kind;
  entry.at_ms = now_ms_;
  return entry;
}

// Local time of now_ms_, computed once per UTC minute and zone.
const LocalTime& Router::Local() const {
  if (now_ms_ < local_from_ms_ || now_ms_ >= local_until_ms_ ||
      local_zone_ != rules_->time_zone) {
    local_ = ToLocalTime(now_ms_, rules_->time_zone);
    const std::int64_t into_minute =
        (now_ms_ % kMsPerMinute + kMsPerMinute) % kMsPerMinute;
    local_from_ms_ = now_ms_ - into_minute;
    // The last minute before the int64 limit is not cached rather than overflow.
    constexpr std::int64_t kLastFrom =
        std::numeric_limits<std::int64_t>::max() - kMsPerMinute;
    local_until_ms_ = local_from_ms_ <= kLastFrom ? local_from_ms_ + kMsPerMinute
                                                  : local_from_ms_;
    local_zone_ = rules_->time_zone;
  }
  return local_;
}

// The client record being worked on, looked up once per Apply and client.
ClientState& Router::RecordOf(std::string_view client_ref) {
  if (cached_record_ == nullptr || !EqualBytes(cached_record_->client_ref(), client_ref)) {
    cached_record_ = &clients_.Mutable(client_ref);
  }
  return *cached_record_;
}

ClientState& Router::RecordOf(const OpenNeed& need) {
  return RecordOf(need.facts->client_ref);
}

// Ledgers, queues and timers follow from the open needs.
void Router::RebuildDerived() {
  for (PodState& pod : pods_) {
    pod.open_cost = 0;
    pod.open_ids.clear();
  }
  for (auto& queue : queues_) {
    queue.clear();
  }
  pod_waiting_.assign(pods_.size(), {});
  for (SortedQueue<Timer>& kind : timers_) {
    kind.clear();
  }
  std::vector<std::uint64_t> ids;
  ids.reserve(needs_.size());
  for (const auto& [id, need] : needs_) {
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  for (std::uint64_t id : ids) {
    const OpenNeed& need = needs_.find(id)->second;
    if (need.state == v1::NEED_STATE_OFFERED || need.state == v1::NEED_STATE_ACCEPTED) {
      pods_[need.pod].open_cost += rules_->pods[need.pod].cost[need.need];
      pods_[need.pod].open_ids.insert(id);
      if (need.state == v1::NEED_STATE_OFFERED && need.accept_by_ms > 0) {
        AddTimer(need.accept_by_ms, need, TimerKind::kAcceptTimeout);
      }
    } else if (need.state == v1::NEED_STATE_QUEUED) {
      Enqueue(need);
      const NeedRule& rule = rules_->need_rules[need.need];
      const Target& target = rule.targets[need.step];
      if (target.max_wait_ms > 0 && need.step + 1 < rule.targets.size()) {
        AddTimer(need.step_started_ms + target.max_wait_ms, need, TimerKind::kStepDeadline);
      }
      AddTimer(need.submitted_ms + rule.max_wait_ms, need, TimerKind::kEscalate);
    }
  }
}

std::vector<PodFigures> Router::Pods() const {
  std::vector<PodFigures> out;
  out.reserve(pods_.size());
  for (PodIndex p = 0; p < pods_.size(); ++p) {
    out.push_back({rules_->pods[p].id, pods_[p].status, pods_[p].capacity, pods_[p].open_cost,
                   static_cast<std::uint32_t>(pods_[p].open_ids.size())});
  }
  return out;
}

std::int64_t Router::OldestWaitMs(NeedIndex need) const {
  // Ids grow with submission, so the first entry of each urgency level is that level's oldest:
  // at most five lookups, whatever the queue's length.
  std::int64_t oldest = 0;
  const auto& queue = queues_[need];
  for (int urgency = v1::URGENCY_EMERGENCY; urgency >= v1::URGENCY_ROUTINE; --urgency) {
    const QueueKey first = KeyOf(static_cast<v1::Urgency>(urgency), 0);
    auto it = queue.lower_bound(first);
    if (it != queue.end() && *it - first < kIdLimit) {
      oldest = std::max(oldest, now_ms_ - needs_.find(IdOf(*it))->second.submitted_ms);
    }
  }
  return oldest;
}

absl::Status Router::CheckInvariants() const {
  std::vector<std::uint32_t> cost(pods_.size(), 0);
  std::vector<std::size_t> queued(queues_.size(), 0);
  for (const auto& [id, need] : needs_) {
    if (need.state == v1::NEED_STATE_OFFERED || need.state == v1::NEED_STATE_ACCEPTED) {
      if (need.pod >= pods_.size()) {
        return absl::InternalError(absl::StrCat("need ", id, " holds no valid pod"));
      }
      cost[need.pod] += rules_->pods[need.pod].cost[need.need];
    } else if (need.state == v1::NEED_STATE_QUEUED) {
      ++queued[need.need];
      const QueueKey key = KeyOf(need.urgency, id);
      if (!queues_[need.need].contains(key)) {
        return absl::InternalError(absl::StrCat("need ", id, " waits outside its queue"));
      }
      // It waits for exactly the pods of its target that could take it once free.
      for (PodIndex p : rules_->need_rules[need.need].targets[need.step].pods) {
        const std::uint32_t specificity =
            rules_->pods[p].coverage.Specificity(need.facts->Outward());
        const bool could = StaticRejection(need, p, specificity) ==
                           v1::CANDIDATE_REJECTION_UNSPECIFIED;
        if (pod_waiting_[p].contains(key) != could) {
          return absl::InternalError(absl::StrCat("need ", id, " is ", could ? "not " : "",
                                                  "in the waiting set of pod ",
                                                  rules_->pods[p].id));
        }
      }
    } else {
      return absl::InternalError(absl::StrCat("need ", id, " is in no state"));
    }
  }
  for (PodIndex p = 0; p < pods_.size(); ++p) {
    if (cost[p] != pods_[p].open_cost) {
      return absl::InternalError(absl::StrCat("pod ", rules_->pods[p].id, " ledger ",
                                              pods_[p].open_cost, " != open work ", cost[p]));
    }
  }
  for (NeedIndex n = 0; n < queues_.size(); ++n) {
    if (queued[n] != queues_[n].size()) {
      return absl::InternalError(absl::StrCat("queue of ", rules_->needs[n].code, " has ",
                                              queues_[n].size(), " entries for ", queued[n]));
    }
  }
  if (keys_.size() != needs_.size()) {
    return absl::InternalError("key index and open needs differ");
  }
  for (PodIndex p = 0; p < pod_waiting_.size(); ++p) {
    for (const QueueKey key : pod_waiting_[p]) {
      auto it = needs_.find(IdOf(key));
      if (it == needs_.end() || it->second.state != v1::NEED_STATE_QUEUED) {
        return absl::InternalError(absl::StrCat("pod ", rules_->pods[p].id,
                                                " lists a need that is not waiting"));
      }
      const auto& pods = rules_->need_rules[it->second.need].targets[it->second.step].pods;
      if (!std::binary_search(pods.begin(), pods.end(), p)) {
        return absl::InternalError(absl::StrCat("pod ", rules_->pods[p].id,
                                                " lists a need waiting elsewhere"));
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Snapshots

void Router::SnapshotHeader(v1::RouterSnapshot& s) const {
  s.set_format(1);
  s.set_last_applied_offset(last_applied_.Value());
  s.set_now_ms(now_ms_);
  s.set_next_id(next_id_);
  s.set_rules_yaml(rules_->yaml);
  for (PodIndex p = 0; p < pods_.size(); ++p) {
    const PodState& state = pods_[p];
    v1::PodRuntimeSnapshot* pod = s.add_pods();
    pod->set_pod_id(rules_->pods[p].id);
    pod->set_status(state.status);
    if (state.capacity_overridden) {
      pod->set_capacity(state.capacity);
    }
    if (state.intake_overridden) {
      pod->set_daily_intake(state.daily_intake);
    }
    pod->set_intake_day(state.intake_day);
    pod->set_intake_count(state.intake_count);
  }
}

// A v1::OpenNeedSnapshot, field by field in protobuf's canonical form (the bytes
// SerializeToString gives for the same message).
void Router::WriteNeed(const OpenNeed& need, WireWriter& w) const {
  w.Varint(1, need.id);
  w.String(2, need.referral_id);
  w.String(3, rules_->needs[need.need].code);
  w.Signed(4, need.state);
  w.Signed(5, need.urgency);
  w.Signed(6, need.submitted_ms);
  w.Varint(7, need.step);
  w.Signed(8, need.step_started_ms);
  if (need.pod != kNoPod) {
    w.String(9, rules_->pods[need.pod].id);
  }
  w.Signed(10, need.accept_by_ms);
  for (PodIndex p : need.declined) {
    w.RepeatedString(11, rules_->pods[p].id);
  }
  w.Varint(12, need.attempt);
  w.Varint(13, need.declines);
  w.Signed(14, need.pending);
  const Facts& facts = *need.facts;
  const std::size_t attributes = w.Open(15);  // v1::RoutingAttributes, always present
  w.String(1, facts.client_ref);
  w.String(2, facts.postcode_outward);
  w.String(3, facts.lsoa);
  w.Varint(4, facts.birth_year);
  const auto packed_bits = [&w](int field, std::uint32_t bits) {  // a packed repeated enum
    if ((bits & ~1u) == 0) {
      return;  // bit 0 is the UNSPECIFIED value, never stored
    }
    const std::size_t at = w.Open(field);
    for (int b = 1; b < 32; ++b) {
      if (bits & (1u << b)) {
        w.RawVarint(static_cast<std::uint64_t>(b));
      }
    }
    w.Close(at);
  };
  packed_bits(5, facts.flags);
  w.String(6, facts.language);
  packed_bits(7, facts.consent);
  if (facts.payload != nullptr) {
    w.Message(8, *facts.payload);
  }
  w.Close(attributes);
  w.Signed(16, need.state_since_ms);
  // The generation is not stored: restore starts every need at 0 with fresh timers.
}

v1::RouterSnapshot Router::Snapshot() const {
  v1::RouterSnapshot s;
  SnapshotHeader(s);
  std::vector<std::uint64_t> ids;
  ids.reserve(needs_.size());
  for (const auto& [id, need] : needs_) {
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  WireWriter::Buffer bytes;
  for (std::uint64_t id : ids) {
    bytes.Clear();
    WireWriter w(bytes);
    WriteNeed(needs_.find(id)->second, w);
    const std::string_view need = bytes.view();
    const bool parsed = s.add_needs()->ParseFromArray(need.data(), static_cast<int>(need.size()));
    assert(parsed);
    static_cast<void>(parsed);
  }
  return s;
}

void RouterChanges::Clear() {
  header.Clear();
  rules_changed = false;
  upserts.clear();
  upsert_bytes.Clear();
  erased.clear();
}

void Router::TakeChanges(RouterChanges& out) {
  out.Clear();
  SnapshotHeader(out.header);
  out.rules_changed = rules_changed_;
  DedupChanged();
  WireWriter w(out.upsert_bytes);
  for (std::uint64_t id : changed_needs_) {
    auto it = needs_.find(id);
    if (it == needs_.end()) {
      out.erased.push_back(id);
    } else {
      const std::size_t begin = out.upsert_bytes.size;
      WriteNeed(it->second, w);
      out.upserts.push_back({id, begin, out.upsert_bytes.size});
    }
  }
  changed_needs_.clear();
  dedup_changed_at_ = kMinDedupChangedAt;
  rules_changed_ = false;
}

void Router::DedupChanged() {
  std::sort(changed_needs_.begin(), changed_needs_.end());
  changed_needs_.erase(std::unique(changed_needs_.begin(), changed_needs_.end()),
                       changed_needs_.end());
}

void Router::CompactChanged() {
  DedupChanged();
  dedup_changed_at_ = std::max(kMinDedupChangedAt, 2 * changed_needs_.size());
}

absl::StatusOr<std::unique_ptr<Router>> Router::Restore(const v1::RouterSnapshot& s,
                                                         ClientStore& clients) {
  if (s.format() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("unknown snapshot format ", s.format()));
  }
  absl::StatusOr<std::shared_ptr<const Rules>> rules = LoadRules(s.rules_yaml(), "snapshot");
  if (!rules.ok()) {
    return rules.status();
  }
  auto router = std::make_unique<Router>(*std::move(rules), clients);
  Router& r = *router;
  r.last_applied_ = Offset(s.last_applied_offset());
  r.now_ms_ = s.now_ms();
  r.next_id_ = s.next_id();
  if (r.next_id_ >= kIdLimit) {
    return absl::DataLossError(absl::StrCat("snapshot's next need id ", r.next_id_,
                                            " is out of range"));
  }
  for (const v1::PodRuntimeSnapshot& pod : s.pods()) {
    const PodIndex* p = r.rules_->FindPod(pod.pod_id());
    if (p == nullptr) {
      return absl::DataLossError(absl::StrCat("snapshot names unknown pod ", pod.pod_id()));
    }
    PodState& state = r.pods_[*p];
    state.status = pod.status();
    if (pod.has_capacity()) {
      state.capacity = pod.capacity();
      state.capacity_overridden = true;
    }
    if (pod.has_daily_intake()) {
      state.daily_intake = pod.daily_intake();
      state.intake_overridden = true;
    }
    state.intake_day = pod.intake_day();
    state.intake_count = pod.intake_count();
  }
  // Needs of one referral share their facts, as they did before the snapshot.
  absl::flat_hash_map<std::string, std::shared_ptr<const Facts>> facts_by_referral;
  for (const v1::OpenNeedSnapshot& n : s.needs()) {
    const NeedIndex* need_index = r.rules_->FindNeed(n.need_code());
    if (need_index == nullptr) {
      return absl::DataLossError(absl::StrCat("snapshot names unknown need ", n.need_code()));
    }
    OpenNeed need;
    need.id = n.id();
    need.referral_id = n.referral_id();
    need.need = *need_index;
    need.state = n.state();
    need.urgency = Effective(n.urgency());
    need.submitted_ms = n.submitted_ms();
    need.step = n.step();
    need.step_started_ms = n.step_started_ms();
    need.state_since_ms = n.state_since_ms();
    if (!n.pod_id().empty()) {
      const PodIndex* p = r.rules_->FindPod(n.pod_id());
      if (p == nullptr) {
        return absl::DataLossError(absl::StrCat("snapshot names unknown pod ", n.pod_id()));
      }
      need.pod = *p;
    }
    need.accept_by_ms = n.accept_by_ms();
    for (const std::string& pod_id : n.declined_pods()) {
      if (const PodIndex* p = r.rules_->FindPod(pod_id)) {
        need.declined.push_back(*p);
      }
    }
    need.attempt = n.attempt();
    need.declines = n.declines();
    need.pending = n.pending();
    std::shared_ptr<const Facts>& facts = facts_by_referral[n.referral_id()];
    if (facts == nullptr) {
      const v1::RoutingAttributes& a = n.attributes();
      facts = MakeFacts(a.client_ref(), a.postcode_outward(), a.lsoa(), a.birth_year(), a.flags(),
                        a.language(), a.consent(), a.has_payload() ? &a.payload() : nullptr);
    }
    need.facts = facts;
    if ((need.state == v1::NEED_STATE_OFFERED || need.state == v1::NEED_STATE_ACCEPTED) &&
        need.pod == kNoPod) {
      return absl::DataLossError(absl::StrCat("need ", n.id(), " is held by no pod"));
    }
    const std::size_t targets = r.rules_->need_rules[need.need].targets.size();
    if (need.state == v1::NEED_STATE_QUEUED && need.step >= targets) {
      return absl::DataLossError(absl::StrCat("need ", n.id(), " waits at a missing step"));
    }
    if (need.id >= r.next_id_) {
      return absl::DataLossError(absl::StrCat("need ", n.id(), " is not below the next id"));
    }
    const std::uint64_t id = need.id;
    const std::string& referral_id =
        r.needs_.emplace(id, std::move(need)).first->second.referral_id;
    r.IndexNeed(id, referral_id, n.need_code());
  }
  r.RebuildDerived();
  r.changed_needs_.clear();
  r.rules_changed_ = false;
  return router;
}

}  // namespace signpost::router

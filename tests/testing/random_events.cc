// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/random_events.h"

#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/testing/events.h"

namespace signpost::testing {

const char kRandomRulesA[] = R"(
version: "a"
timezone: Europe/London
triage_need: triage
needs:
  - {code: triage, max_wait: 1d, escalate_to: duty, targets: [{name: hub}]}
  - code: food
    max_wait: 2d
    escalate_to: enhanced-triage
    max_declines: 2
    targets:
      - {name: local, pods: [food-a, food-b], max_wait: 3h}
      - {name: county, pods: [food-county], max_wait: 6h}
      - {name: overflow, pods: [volunteers]}
  - code: housing
    max_wait: 1d
    escalate_to: mdt
    targets: [{name: county}]
  - code: money
    max_wait: 3d
    escalate_to: enhanced-triage
    targets: [{name: county}]
  - {code: safeguarding, max_wait: 1h, escalate_to: statutory}
pods:
  - {id: hub, needs: [triage], coverage: ["*"], capacity: 2, accept_timeout: 2h}
  - {id: food-a, needs: [food], coverage: [BA1, BA2], capacity: 2, accept_timeout: 2h,
     daily_intake: 5}
  - {id: food-b, needs: [food], coverage: ["BS*"], capacity: 1, accept_timeout: 1h}
  - {id: food-county, needs: [food], coverage: ["*"], capacity: 2, accept_timeout: 3h}
  - {id: volunteers, needs: [food], coverage: ["*"], capacity: 3,
     eligibility: {consent: [volunteer-contact], exclude_flags: [safeguarding]},
     data_scope: [postcode_outward]}
  - {id: housing-a, needs: [housing], coverage: ["*"], capacity: 3, cost: {housing: 2},
     accept_timeout: 1d}
  - {id: housing-older, needs: [housing], coverage: ["BA*"], capacity: 1, weight: 3,
     eligibility: {min_age: 65},
     data_scope: [client_ref, postcode_outward, lsoa, birth_year, flags, language, payload]}
  - id: money
    needs: [money]
    coverage: ["*"]
    capacity: 2
    accept_timeout: 4h
    hours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
)";

// The same taxonomy with other pods: one removed, one added, capacities changed.
const char kRandomRulesB[] = R"(
version: "b"
timezone: Europe/London
triage_need: triage
needs:
  - {code: triage, max_wait: 1d, escalate_to: duty, targets: [{name: hub}]}
  - code: food
    max_wait: 1d
    escalate_to: enhanced-triage
    targets:
      - {name: local, pods: [food-a, food-c], max_wait: 2h}
      - {name: county, pods: [food-county]}
  - code: housing
    max_wait: 1d
    escalate_to: mdt
    targets: [{name: county}]
  - {code: money, max_wait: 3d, escalate_to: enhanced-triage}
  - {code: safeguarding, max_wait: 1h, escalate_to: statutory}
pods:
  - {id: hub, needs: [triage], coverage: ["*"], capacity: 3, accept_timeout: 2h}
  - {id: food-a, needs: [food], coverage: [BA1, BA2], capacity: 1, accept_timeout: 2h}
  - {id: food-c, needs: [food], coverage: ["*"], capacity: 2, accept_timeout: 1h}
  - {id: food-county, needs: [food], coverage: ["*"], capacity: 3}
  - {id: housing-a, needs: [housing], coverage: ["*"], capacity: 4, cost: {housing: 2}}
)";

constexpr std::int64_t kMinute = 60'000;

// Generates a random stream of input events from `seed`. It keeps a rough idea of what is open
// (from nothing but its own inputs) so responses often hit real needs.
std::vector<v1::Envelope> RandomStream(std::uint64_t seed, int length) {
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t n) { return rng() % n; };
  testing::EventFactory events(1'767'261'600'000 + static_cast<std::int64_t>(pick(400)) * 3'600'000);
  static const char* kNeeds[] = {"food", "food", "food", "housing", "money", "triage",
                                 "safeguarding", "knitting", ""};
  static const char* kPods[] = {"hub", "food-a", "food-b", "food-c", "food-county", "volunteers",
                                "housing-a", "housing-older", "money", "nope"};
  static const char* kOutward[] = {"BA1", "BA2", "BS31", "BS40", "SN1", ""};
  std::vector<std::pair<std::string, std::string>> submitted;  // referral, need
  std::vector<v1::Envelope> stream;
  int referrals = 0;
  for (int i = 0; i < length; ++i) {
    const std::uint64_t kind = pick(100);
    if (kind < 35 || submitted.empty()) {
      const std::string id = "r" + std::to_string(referrals++);
      // One client in twelve has a long reference, so some decisions outgrow 127 bytes.
      const std::uint64_t c = pick(12);
      const std::string client = "c" + std::to_string(c) + (c == 11 ? std::string(120, 'x') : "");
      v1::Envelope e = events.Referral(id, client, {kNeeds[pick(9)]}, kOutward[pick(6)]);
      v1::ReferralSubmitted* r = e.mutable_referral_submitted();
      if (pick(4) == 0) {
        r->add_needs()->set_code(kNeeds[pick(9)]);
      }
      r->set_urgency(static_cast<v1::Urgency>(pick(5)));
      r->set_birth_year(1930 + static_cast<std::uint32_t>(pick(90)));
      if (pick(5) == 0) {
        r->clear_consent();
      }
      if (pick(8) == 0) {
        r->add_flags(v1::CLIENT_FLAG_SAFEGUARDING);
      }
      if (pick(6) == 0) {
        r->set_language("pl");
      }
      if (pick(6) == 0) {
        r->set_lsoa("E01014370");
      }
      if (pick(6) == 0) {
        r->mutable_payload()->set_ciphertext(std::string(pick(2) == 0 ? 40 : 200, '\x7f'));
        r->mutable_payload()->set_key_version(1);
      }
      for (const v1::Need& n : r->needs()) {
        submitted.emplace_back(id, n.code());
      }
      stream.push_back(std::move(e));
    } else if (kind < 70) {
      const auto& [referral, need] = submitted[pick(submitted.size())];
      const std::string code = pick(4) == 0 ? "triage" : need;
      const std::string pod = kPods[pick(10)];
      switch (pick(5)) {
        case 0:
        case 1:
          stream.push_back(events.Accept(referral, code, pod));
          break;
        case 2:
          stream.push_back(events.Decline(referral, code, pod));
          break;
        case 3:
          stream.push_back(events.Complete(referral, code, pod));
          break;
        default:
          stream.push_back(events.Withdraw(referral, code, pick(2) ? pod : ""));
      }
    } else if (kind < 88) {
      events.Advance(static_cast<std::int64_t>(pick(240)) * kMinute);
      stream.push_back(events.Tick());
    } else if (kind < 93) {
      static const v1::PodStatus kStatus[] = {v1::POD_STATUS_UNSPECIFIED, v1::POD_STATUS_OPEN,
                                              v1::POD_STATUS_PAUSED, v1::POD_STATUS_CLOSED};
      stream.push_back(events.PodChange(kPods[pick(10)], kStatus[pick(4)],
                                        pick(2) ? static_cast<int>(pick(4)) : -1));
    } else if (kind < 95) {
      stream.push_back(events.Rules(pick(2) ? kRandomRulesA : kRandomRulesB));
    } else if (kind < 97) {
      stream.push_back(events.Erase("c" + std::to_string(pick(12))));
    } else {
      // A duplicate of an earlier referral.
      stream.push_back(events.Referral(submitted[pick(submitted.size())].first, "c0", {"food"}));
    }
    // Trace ids differ (some events have none) and a few events name another domain, so the
    // header of a decision built in a recycled envelope is checked against a fresh one.
    v1::Envelope& last = stream.back();
    switch (pick(4)) {
      case 0:
        last.clear_trace_id();
        break;
      case 1:
        last.set_trace_id(absl::StrCat("trace-", i));
        break;
      default:
        break;
    }
    if (pick(10) == 0) {
      last.set_domain("wiltshire");
    }
  }
  return stream;
}

}  // namespace signpost::testing

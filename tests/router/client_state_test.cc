// SPDX-License-Identifier: Apache-2.0
#include "router/client_state.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace signpost::router {
namespace {

std::string Bytes(const ClientState& state) {
  WireWriter::Buffer out;
  state.SerializeTo(out);
  return std::string(out.view());
}

// A record with every field, sometimes empty or zero, and strings short and long (lengths over
// 127 bytes take two-byte varints). History entries sometimes name a referral the record does
// not list.
v1::ClientRecord RandomRecord(std::mt19937_64& rng) {
  auto text = [&](std::size_t max) {
    const std::size_t n = rng() % (max + 1);
    std::string s(n, 'a');
    for (char& c : s) {
      c = static_cast<char>('a' + rng() % 26);
    }
    return s;
  };
  auto time = [&]() -> std::int64_t {
    return rng() % 4 == 0 ? 0 : static_cast<std::int64_t>(rng() % 4'000'000'000'000) - 1'000;
  };
  v1::ClientRecord r;
  r.set_client_ref(text(rng() % 5 == 0 ? 200 : 20));
  r.set_first_contact_ms(time());
  r.set_last_contact_ms(time());
  r.set_referral_count(static_cast<std::uint32_t>(rng() % 3 == 0 ? 0 : rng() % 100'000));
  r.set_duplicate_count(static_cast<std::uint32_t>(rng() % 3));
  const int referrals = static_cast<int>(rng() % 6);
  for (int i = 0; i < referrals; ++i) {
    r.add_referral_ids(rng() % 10 == 0 ? "" : text(rng() % 4 == 0 ? 150 : 16));
  }
  auto referral = [&]() {
    return referrals > 0 && rng() % 5 != 0 ? r.referral_ids(static_cast<int>(rng() % referrals))
                                           : text(12);
  };
  const std::string pods[] = {"", "food-bath", "over-65s", std::string(140, 'p')};
  const std::string needs[] = {"", "food", "housing", "triage"};
  for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
    v1::ClientOpenNeed* o = r.add_open();
    o->set_referral_id(referral());
    o->set_need_code(needs[rng() % 4]);
    o->set_pod_id(pods[rng() % 4]);
    o->set_state(static_cast<v1::NeedState>(rng() % 5));
    o->set_since_ms(time());
  }
  for (int i = static_cast<int>(rng() % 40); i > 0; --i) {
    v1::ClientHistoryEntry* h = r.add_history();
    h->set_referral_id(referral());
    h->set_need_code(needs[rng() % 4]);
    h->set_pod_id(pods[rng() % 4]);
    h->set_kind(static_cast<v1::HistoryKind>(rng() % 8));
    h->set_at_ms(time());
    h->set_outcome(static_cast<v1::Outcome>(rng() % 3));
    for (int k = static_cast<int>(rng() % 3); k > 0; --k) {
      h->add_remedies(rng() % 4 == 0 ? "" : text(20));
    }
    h->set_time_to_resolve_ms(time());
    h->set_escalation_target(rng() % 3 == 0 ? "statutory" : "");
  }
  for (int i = static_cast<int>(rng() % 3); i > 0; --i) {
    v1::ContinuityEntry* c = r.add_continuity();
    c->set_need_code(needs[rng() % 4]);
    c->set_pod_id(pods[rng() % 4]);
  }
  return r;
}

TEST(ClientStateTest, WritesTheBytesProtobufWritesForRandomRecords) {
  std::mt19937_64 rng(7);
  ClientState state;  // reused, as a cache entry is
  for (int i = 0; i < 3000; ++i) {
    const v1::ClientRecord record = RandomRecord(rng);
    const std::string want = record.SerializeAsString();
    state.Assign(record);
    ASSERT_EQ(Bytes(state), want) << i << ": " << record.ShortDebugString();
    ClientState parsed;
    ASSERT_TRUE(parsed.ParseFrom(want));
    ASSERT_EQ(Bytes(parsed), want) << i;
    ASSERT_EQ(parsed.ToRecord().SerializeAsString(), want) << i;
  }
}

TEST(ClientStateTest, RejectsBytesThatDoNotParse) {
  ClientState state;
  EXPECT_FALSE(state.ParseFrom(std::string("\x0a\x05" "ab", 4)));  // a string cut short
  EXPECT_FALSE(state.ParseFrom(std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11)));
}

// The history keeps the newest `max` entries, oldest first, as a protobuf record rotated by
// the router did; a reused entry carries nothing of the one it replaced.
TEST(ClientStateTest, HistoryKeepsTheNewestEntriesInOrder) {
  ClientState state;
  state.set_client_ref("c1");
  v1::ClientRecord model;
  model.set_client_ref("c1");
  for (int i = 0; i < 100; ++i) {
    const std::string referral = "r" + std::to_string(i % 7);
    if (i < 7) {
      state.AddReferral(referral);
      model.add_referral_ids(referral);
    }
    ClientState::History& h = state.AddHistory(5);
    h.referral = state.ReferralPosition(referral);
    h.kind = i % 2 == 0 ? v1::HISTORY_KIND_COMPLETED : v1::HISTORY_KIND_ESCALATED;
    h.at_ms = i;
    h.need = Symbol::Of("food");
    if (i % 2 == 0) {
      h.remedies = {"remedy-" + std::to_string(i)};
    } else {
      h.escalation_target = Symbol::Of("statutory");
    }
    if (model.history_size() == 5) {
      model.mutable_history()->DeleteSubrange(0, 1);
    }
    v1::ClientHistoryEntry* e = model.add_history();
    e->set_referral_id(referral);
    e->set_need_code("food");
    e->set_kind(h.kind);
    e->set_at_ms(i);
    if (i % 2 == 0) {
      e->add_remedies("remedy-" + std::to_string(i));
    } else {
      e->set_escalation_target("statutory");
    }
    ASSERT_EQ(Bytes(state), model.SerializeAsString()) << i;
  }
  ASSERT_EQ(state.history_size(), 5u);
  EXPECT_EQ(state.history(0).at_ms, 95);
  EXPECT_EQ(state.history(4).at_ms, 99);
}

TEST(ClientStateTest, NamesReferralsByPositionAndKeepsUnlistedOnesAside) {
  ClientState state;
  EXPECT_EQ(state.AddReferral("r1"), 0u);
  EXPECT_EQ(state.AddReferral("r2"), 1u);
  EXPECT_EQ(state.ReferralPosition("r2"), 1u);
  EXPECT_EQ(state.ReferralPosition("r1"), 0u);
  const std::uint32_t unlisted = state.ReferralPosition("r9");
  EXPECT_EQ(state.ReferralId(unlisted), "r9");
  EXPECT_EQ(state.ReferralPosition("r9"), unlisted);  // kept once
  EXPECT_EQ(state.referral_ids().size(), 2u);          // and not listed
  state.mutable_open().push_back({unlisted, Symbol::Of("food"), Symbol(), v1::NEED_STATE_QUEUED, 5});
  EXPECT_EQ(state.ToRecord().open(0).referral_id(), "r9");
  EXPECT_EQ(state.ToRecord().referral_ids_size(), 2);
  state.Clear();
  EXPECT_EQ(Bytes(state), "");
}

TEST(SymbolTest, InternsEachTextOnce) {
  EXPECT_EQ(Symbol::Of("food"), Symbol::Of(std::string("fo") + "od"));
  EXPECT_FALSE(Symbol::Of("food") == Symbol::Of("housing"));
  EXPECT_EQ(Symbol::Of("food").view(), "food");
  EXPECT_TRUE(Symbol::Of("").empty());
  EXPECT_EQ(Symbol::Of(""), Symbol());
  EXPECT_EQ(Symbol().view(), "");
}

}  // namespace
}  // namespace signpost::router

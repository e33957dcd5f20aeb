// SPDX-License-Identifier: Apache-2.0
#include "router/decision_buffer.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace signpost::router {
namespace {

// Writes `d` (a Routed decision) with WireWriter as the router does, field by field.
void WriteRouted(const v1::Envelope& d, DecisionBuffer& out) {
  WireWriter w = out.Begin(v1::Envelope::kRouted);
  w.Varint(1, d.schema_version());
  w.String(2, d.event_id());
  w.Signed(3, d.event_time_ms());
  w.String(4, d.producer());
  w.String(5, d.trace_id());
  w.String(6, d.domain());
  out.OpenBody();
  const v1::Routed& r = d.routed();
  const std::size_t referral_at = w.String(1, r.referral_id());
  w.String(2, r.client_ref());
  out.SetNeed(referral_at, r.referral_id().size(), w.String(3, r.need_code()),
              r.need_code().size());
  out.SetKey(w.String(4, r.pod_id()), r.pod_id().size());
  w.Varint(5, r.target_step());
  w.String(6, r.target_name());
  w.String(7, r.matched_rule());
  std::size_t at = w.Open(8);
  w.Varint(1, r.score().continuity() ? 1 : 0);
  w.Varint(2, r.score().locality_specificity());
  w.Varint(3, r.score().headroom_permille());
  w.Varint(4, r.score().weight());
  w.Close(at);
  for (const v1::RejectedCandidate& c : r.rejected()) {
    at = w.Open(9);
    w.String(1, c.pod_id());
    w.Signed(2, c.reason());
    w.Close(at);
  }
  w.Signed(10, r.urgency());
  w.Varint(11, r.attempt());
  w.Signed(12, r.waited_ms());
  w.Signed(13, r.accept_by_ms());
  at = w.Open(14);
  const v1::ScopedAttributes& a = r.attributes();
  w.String(1, a.client_ref());
  w.String(2, a.postcode_outward());
  w.String(3, a.lsoa());
  w.Varint(4, a.birth_year());
  if (a.flags_size() > 0) {
    const std::size_t flags = w.Open(5);
    for (int f : a.flags()) {
      w.RawVarint(static_cast<std::uint64_t>(f));
    }
    w.Close(flags);
  }
  w.String(6, a.language());
  if (a.has_payload()) {
    w.Message(7, a.payload());
  }
  w.Close(at);
  out.End();
}

v1::Envelope SmallRouted() {
  v1::Envelope d;
  d.set_schema_version(1);
  d.set_event_id("bench/7/0");
  d.set_event_time_ms(1'767'261'600'000);
  d.set_producer("router");
  d.set_domain("bench");
  v1::Routed* r = d.mutable_routed();
  r->set_referral_id("r1");
  r->set_client_ref("c1");
  r->set_need_code("food");
  r->set_pod_id("food-a");
  r->set_target_name("local");
  r->set_matched_rule("food");
  r->mutable_score();  // present and empty: written as an empty message
  r->set_attempt(1);
  r->mutable_attributes();
  return d;
}

TEST(WireWriterTest, SmallDecisionIsProtobufsOwnSerialization) {
  const v1::Envelope d = SmallRouted();
  DecisionBuffer out;
  WriteRouted(d, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_LT(out.bytes(0).size(), 128u);
  EXPECT_EQ(out.bytes(0), d.SerializeAsString());
  EXPECT_EQ(out.key(0), "food-a");
  EXPECT_EQ(out.body(0), v1::Envelope::kRouted);
  EXPECT_EQ(out[0].routed().pod_id(), "food-a");
}

// Lengths of two and three bytes move the content after them; negative numbers take ten bytes;
// packed flags and a nested payload; the key must follow the bytes it names.
TEST(WireWriterTest, LongNegativeAndNestedFieldsAreProtobufsOwnSerialization) {
  v1::Envelope d = SmallRouted();
  d.set_event_time_ms(-86'400'000);  // 1969
  d.set_trace_id(std::string(32, 'a'));
  v1::Routed* r = d.mutable_routed();
  r->set_referral_id(std::string(300, 'r'));  // a two-byte length inside the body
  r->set_pod_id("pod-" + std::string(130, 'p'));
  r->set_target_step(3);
  r->mutable_score()->set_continuity(true);
  r->mutable_score()->set_locality_specificity(3);
  r->mutable_score()->set_headroom_permille(999);
  r->mutable_score()->set_weight(2);
  for (int i = 0; i < 200; ++i) {  // a body over 16 KiB: a three-byte length
    v1::RejectedCandidate* c = r->add_rejected();
    c->set_pod_id("candidate-" + std::to_string(i) + std::string(90, 'z'));
    c->set_reason(static_cast<v1::CandidateRejection>(1 + i % 13));
  }
  r->set_urgency(v1::URGENCY_EMERGENCY);
  r->set_waited_ms(-5);
  r->set_accept_by_ms(std::numeric_limits<std::int64_t>::max());
  v1::ScopedAttributes* a = r->mutable_attributes();
  a->set_client_ref("c1");
  a->set_postcode_outward("BA1");
  a->set_lsoa("E01014370");
  a->set_birth_year(1950);
  a->add_flags(v1::CLIENT_FLAG_SAFEGUARDING);
  a->add_flags(static_cast<v1::ClientFlag>(31));
  a->set_language("pl");
  a->mutable_payload()->set_ciphertext(std::string(200, '\x7f'));
  a->mutable_payload()->set_key_version(3);
  ASSERT_GT(d.routed().ByteSizeLong(), 16'384u);

  DecisionBuffer out;
  WriteRouted(SmallRouted(), out);  // a decision before it, so offsets do not start at 0
  WriteRouted(d, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out.bytes(0), SmallRouted().SerializeAsString());
  EXPECT_EQ(out.bytes(1), d.SerializeAsString());
  EXPECT_EQ(out.key(1), d.routed().pod_id());
  EXPECT_EQ(out.referral_id(1), d.routed().referral_id());
  EXPECT_EQ(out.need_code(1), "food");
  EXPECT_EQ(out[1].routed().rejected_size(), 200);
  EXPECT_EQ(out[0].routed().pod_id(), "food-a");
}

TEST(DecisionBufferTest, ClearForgetsDecisionsAndTheirParsedForms) {
  DecisionBuffer out;
  WriteRouted(SmallRouted(), out);
  EXPECT_EQ(out[0].routed().referral_id(), "r1");
  out.Clear();
  EXPECT_TRUE(out.empty());
  v1::Envelope other = SmallRouted();
  other.mutable_routed()->set_referral_id("r2");
  WriteRouted(other, out);
  EXPECT_EQ(out[0].routed().referral_id(), "r2");  // parsed again, not the earlier message
  EXPECT_EQ(out.bytes(0), other.SerializeAsString());
}

TEST(DecisionBufferTest, KeyDefaultsToNothingAndReasonToZero) {
  DecisionBuffer out;
  WireWriter w = out.Begin(v1::Envelope::kClientErased);
  w.Varint(1, 1);
  out.OpenBody();
  w.String(1, "c1");
  out.End();
  v1::Envelope want;
  want.set_schema_version(1);
  want.mutable_client_erased()->set_client_ref("c1");
  EXPECT_EQ(out.bytes(0), want.SerializeAsString());
  EXPECT_EQ(out.key(0), "");
  EXPECT_EQ(out.reason(0), 0);
  EXPECT_EQ(out.referral_id(0), "");
  EXPECT_EQ(out.need_code(0), "");
}

}  // namespace
}  // namespace signpost::router

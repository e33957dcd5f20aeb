// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/events.h"

#include "absl/strings/str_cat.h"

namespace signpost::testing {

v1::Envelope EventFactory::Base() {
  v1::Envelope e;
  e.set_schema_version(1);
  e.set_event_id(absl::StrCat("e", next_++));
  e.set_event_time_ms(now_ms_);
  e.set_producer("test");
  e.set_trace_id("0af7651916cd43dd8448eb211c80319c");
  e.set_domain("banes");
  return e;
}

v1::Envelope EventFactory::Referral(const std::string& referral_id, const std::string& client,
                                    std::initializer_list<const char*> needs,
                                    const std::string& outward) {
  v1::Envelope e = Base();
  v1::ReferralSubmitted* r = e.mutable_referral_submitted();
  r->set_referral_id(referral_id);
  r->set_client_ref(client);
  r->set_source(v1::SOURCE_GP_PRACTICE);
  for (const char* need : needs) {
    r->add_needs()->set_code(need);
  }
  r->set_urgency(v1::URGENCY_ROUTINE);
  r->set_postcode_outward(outward);
  r->set_birth_year(1950);
  r->set_language("en");
  r->add_consent(v1::CONSENT_SCOPE_SHARE_WITH_PODS);
  r->add_consent(v1::CONSENT_SCOPE_VOLUNTEER_CONTACT);
  return e;
}

namespace {
v1::PodResponse* Response(v1::Envelope& e, const std::string& referral_id,
                          const std::string& need, const std::string& pod) {
  v1::PodResponse* r = e.mutable_pod_response();
  r->set_referral_id(referral_id);
  r->set_need_code(need);
  r->set_pod_id(pod);
  return r;
}
}  // namespace

v1::Envelope EventFactory::Accept(const std::string& referral_id, const std::string& need,
                                  const std::string& pod) {
  v1::Envelope e = Base();
  Response(e, referral_id, need, pod)->mutable_accepted();
  return e;
}

v1::Envelope EventFactory::Decline(const std::string& referral_id, const std::string& need,
                                   const std::string& pod) {
  v1::Envelope e = Base();
  Response(e, referral_id, need, pod)->mutable_declined()->set_reason(
      v1::DECLINE_REASON_AT_CAPACITY);
  return e;
}

v1::Envelope EventFactory::Complete(const std::string& referral_id, const std::string& need,
                                    const std::string& pod) {
  v1::Envelope e = Base();
  v1::Completed* c = Response(e, referral_id, need, pod)->mutable_completed();
  c->set_outcome(v1::OUTCOME_NEED_MET);
  c->add_remedies("food-parcel");
  return e;
}

v1::Envelope EventFactory::Withdraw(const std::string& referral_id, const std::string& need,
                                    const std::string& pod) {
  v1::Envelope e = Base();
  Response(e, referral_id, need, pod)->mutable_withdrawn()->set_reason(
      v1::WITHDRAW_REASON_CLIENT_REQUEST);
  return e;
}

v1::Envelope EventFactory::PodChange(const std::string& pod, v1::PodStatus status, int capacity) {
  v1::Envelope e = Base();
  v1::PodChanged* c = e.mutable_pod_changed();
  c->set_pod_id(pod);
  c->set_status(status);
  if (capacity >= 0) {
    c->set_capacity(static_cast<std::uint32_t>(capacity));
  }
  return e;
}

v1::Envelope EventFactory::Rules(const std::string& yaml) {
  v1::Envelope e = Base();
  e.mutable_rules_changed()->set_version("test");
  e.mutable_rules_changed()->set_rules_yaml(yaml);
  return e;
}

v1::Envelope EventFactory::Tick() {
  v1::Envelope e = Base();
  e.mutable_tick()->set_sequence(next_);
  return e;
}

v1::Envelope EventFactory::Erase(const std::string& client) {
  v1::Envelope e = Base();
  e.mutable_client_erasure_requested()->set_client_ref(client);
  e.mutable_client_erasure_requested()->set_basis("uk-gdpr-art17");
  return e;
}

}  // namespace signpost::testing

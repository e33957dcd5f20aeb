// SPDX-License-Identifier: Apache-2.0
// The cost of the envelope on the wire: serialize and parse a typical referral, the floor under
// every stage that touches an event.
#include <benchmark/benchmark.h>

#include "signpost/v1/envelope.pb.h"

namespace {

signpost::v1::Envelope TypicalReferral() {
  signpost::v1::Envelope envelope;
  envelope.set_schema_version(1);
  envelope.set_event_id("0b7e4c1e-6f35-4a43-9a0e-2b1f1d3c9a77");
  envelope.set_event_time_ms(1'764'000'000'000);
  envelope.set_producer("gateway");
  envelope.set_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
  envelope.set_domain("banes");
  auto* r = envelope.mutable_referral_submitted();
  r->set_referral_id("ref-000123456");
  r->set_client_ref("c5f0d1a8e7b24c3f9d6e");
  r->set_source(signpost::v1::SOURCE_GP_PRACTICE);
  r->set_source_org("L81004");
  r->add_needs()->set_code("emergency-food");
  r->add_needs()->set_code("welfare-check");
  r->set_urgency(signpost::v1::URGENCY_URGENT);
  r->set_postcode_outward("BA2");
  r->set_birth_year(1941);
  r->add_flags(signpost::v1::CLIENT_FLAG_SHIELDING);
  r->set_language("en");
  r->add_consent(signpost::v1::CONSENT_SCOPE_SHARE_WITH_PODS);
  return envelope;
}

void BM_SerializeEnvelope(benchmark::State& state) {
  const signpost::v1::Envelope envelope = TypicalReferral();
  std::string out;
  for (auto _ : state) {
    out.clear();
    envelope.SerializeToString(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_SerializeEnvelope);

void BM_ParseEnvelope(benchmark::State& state) {
  const std::string bytes = TypicalReferral().SerializeAsString();
  signpost::v1::Envelope envelope;
  for (auto _ : state) {
    if (!envelope.ParseFromString(bytes)) {
      state.SkipWithError("parse failed");
      break;
    }
    benchmark::DoNotOptimize(envelope.event_id().data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_ParseEnvelope);

}  // namespace

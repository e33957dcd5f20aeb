// SPDX-License-Identifier: Apache-2.0
// Routing decisions per second in the pure core: 60 pods, 20 needs, 1 million clients already
// known (in memory), referrals in the B&NES needs mix, each later completed so capacity turns
// over. Setup (rules, clients, the referral stream) happens before the timed loop; envelopes are
// made from the stream a batch at a time, with the timer paused (see Fixture).
//
// SIGNPOST_BENCH_SMOKE=1 (set by the ctest smoke test) shrinks the fixture so Debug builds
// finish in a moment; real figures come from the release preset without it.
#include <benchmark/benchmark.h>
#if SIGNPOST_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "router/router.h"

namespace signpost::router {
namespace {

bool Smoke() { return std::getenv("SIGNPOST_BENCH_SMOKE") != nullptr; }
std::int64_t EnvOr(const char* name, std::int64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::atoll(value) : fallback;
}
// SIGNPOST_BENCH_CLIENTS / SIGNPOST_BENCH_REFERRALS override the sizes for experiments.
std::int64_t Clients() { return EnvOr("SIGNPOST_BENCH_CLIENTS", Smoke() ? 20'000 : 1'000'000); }
std::int64_t Referrals() {
  return EnvOr("SIGNPOST_BENCH_REFERRALS", Smoke() ? 20'000 : 1'000'000);
}

constexpr const char* kOutward[] = {"BA1", "BA2", "BA3", "BS31", "BS39", "BS40", "BA11", "SN14"};
constexpr int kNeeds = 20;

// 20 needs; per need two local pods (four outward codes each) and one county-wide pod: 60 pods.
std::string BenchRules() {
  std::string yaml = "version: bench\ntimezone: Europe/London\ntriage_need: need-0\nneeds:\n";
  for (int n = 0; n < kNeeds; ++n) {
    absl::StrAppend(&yaml, "  - code: need-", n, "\n    max_wait: 3d\n    escalate_to: mdt\n",
                    "    targets:\n      - {name: local, pods: [pod-", n, "-a, pod-", n,
                    "-b], max_wait: 4h}\n      - {name: county, pods: [pod-", n, "-county]}\n");
  }
  absl::StrAppend(&yaml, "pods:\n");
  for (int n = 0; n < kNeeds; ++n) {
    absl::StrAppend(&yaml, "  - {id: pod-", n, "-a, needs: [need-", n,
                    "], coverage: [BA1, BA2, BA3, BS31], capacity: 400, accept_timeout: 1d,",
                    " data_scope: [client_ref, postcode_outward, birth_year, flags]}\n");
    absl::StrAppend(&yaml, "  - {id: pod-", n, "-b, needs: [need-", n,
                    "], coverage: [BS39, BS40, BA11, \"SN*\"], capacity: 400, accept_timeout: 1d,",
                    " data_scope: [postcode_outward]}\n");
    absl::StrAppend(&yaml, "  - {id: pod-", n, "-county, needs: [need-", n,
                    "], coverage: [\"*\"], capacity: 400, weight: 2, accept_timeout: 1d}\n");
  }
  return yaml;
}

// The April-June 2020 mix over 20 needs: a few needs take most referrals.
int PickNeed(std::mt19937_64& rng) {
  static const int kWeights[kNeeds] = {424, 142, 109, 101, 93, 53, 48, 10, 6, 4,
                                       3,   2,   2,   1,   1,  1,  1,  1,  1, 1};
  static const int kTotal = [] {
    int t = 0;
    for (int w : kWeights) t += w;
    return t;
  }();
  int r = static_cast<int>(rng() % kTotal);
  for (int n = 0; n < kNeeds; ++n) {
    if ((r -= kWeights[n]) < 0) {
      return n;
    }
  }
  return 0;
}

// One referral of the stream, kept compact; Fill() turns it into an envelope.
struct Spec {
  std::uint32_t client = 0;
  std::uint8_t need = 0;
  std::uint8_t outward = 0;
  std::uint16_t birth_year = 0;
};

constexpr std::int64_t kStartMs = 1'767'261'600'000;

// The referrals reach the router as the service hands them over: a batch parsed from Kafka just
// before it is routed, so the envelopes are in cache. The timed loop refills a window of
// kBatch envelopes between batches, with the timer paused. SIGNPOST_BENCH_COLD_INPUT=1 builds
// the whole stream before timing instead (the harness before the fifteenth session): each
// envelope is then read from memory, which adds about five cache misses per referral.
constexpr std::size_t kBatch = 1024;
bool ColdInput() { return std::getenv("SIGNPOST_BENCH_COLD_INPUT") != nullptr; }

struct Fixture {
  std::shared_ptr<const Rules> rules;
  InMemoryClientStore clients;
  std::unique_ptr<Router> router;
  std::vector<Spec> specs;           // the referrals, in order
  std::vector<v1::Envelope> window;  // envelopes of referrals [window_begin, +window.size())
  std::size_t window_begin = 0;

  // Referral i as an envelope, reusing the strings of `e`.
  void Fill(std::size_t i, v1::Envelope& e) const {
    const Spec& spec = specs[i];
    char number[24];
    const auto decimal = [&](std::uint64_t n) {
      return std::string_view(number, static_cast<std::size_t>(
                                          std::to_chars(number, std::end(number), n).ptr - number));
    };
    e.set_schema_version(1);
    e.mutable_event_id()->assign("in-").append(decimal(i));
    e.set_event_time_ms(kStartMs + static_cast<std::int64_t>(i) * 10);
    e.set_producer("bench");
    e.set_domain("bench");
    v1::ReferralSubmitted* r = e.mutable_referral_submitted();
    r->mutable_referral_id()->assign("ref-").append(decimal(i));
    r->mutable_client_ref()->assign("client-").append(decimal(spec.client));
    r->set_source(v1::SOURCE_GP_PRACTICE);
    v1::Need* need = r->needs_size() == 0 ? r->add_needs() : r->mutable_needs(0);
    need->mutable_code()->assign("need-").append(decimal(spec.need));
    r->set_urgency(v1::URGENCY_ROUTINE);
    r->set_postcode_outward(kOutward[spec.outward]);
    r->set_birth_year(spec.birth_year);
    if (r->consent_size() == 0) {
      r->add_consent(v1::CONSENT_SCOPE_SHARE_WITH_PODS);
    }
  }
  // Envelopes for referrals [begin, begin + window.size()) (fewer at the end of the stream).
  void Refill(std::size_t begin) {
    window_begin = begin;
    for (std::size_t i = begin; i < std::min(specs.size(), begin + window.size()); ++i) {
      Fill(i, window[i - begin]);
    }
  }
  // Referral i's envelope, refilling the window (timer paused) when i is past it.
  const v1::Envelope& Referral(std::size_t i, benchmark::State& state) {
    if (i >= window_begin + window.size()) {
      state.PauseTiming();
      Refill(i);
      state.ResumeTiming();
    }
    return window[i - window_begin];
  }
};

std::unique_ptr<Fixture> MakeFixture() {
  auto f = std::make_unique<Fixture>();
  auto rules = LoadRules(BenchRules(), "bench");
  if (!rules.ok()) {
    return nullptr;
  }
  f->rules = *rules;
  f->router = std::make_unique<Router>(f->rules, f->clients);
  std::mt19937_64 rng(42);
  f->clients.Reserve(static_cast<std::size_t>(Clients()),
                     static_cast<std::size_t>(Clients() + Referrals()));
  // A million known clients, each with an earlier (closed) referral on record.
  for (std::int64_t c = 0; c < Clients(); ++c) {
    ClientState& record = f->clients.Mutable(absl::StrCat("client-", c));
    record.set_first_contact_ms(kStartMs - 86'400'000);
    record.set_last_contact_ms(kStartMs - 86'400'000);
    record.set_referral_count(1);
    record.AddReferral(absl::StrCat("old-", c));
  }
  // The referrals; the timed loop completes each one 2,000 referrals later.
  f->specs.resize(static_cast<std::size_t>(Referrals()));
  for (Spec& spec : f->specs) {
    spec.client = static_cast<std::uint32_t>(rng() % static_cast<std::uint64_t>(Clients()));
    spec.need = static_cast<std::uint8_t>(PickNeed(rng));
    spec.outward = static_cast<std::uint8_t>(rng() % 8);
    spec.birth_year = static_cast<std::uint16_t>(1930 + rng() % 80);
  }
  f->window.resize(ColdInput() ? f->specs.size() : kBatch);
  f->Refill(0);
  return f;
}

void BM_RouteReferrals(benchmark::State& state) {
  std::unique_ptr<Fixture> f = MakeFixture();
  if (f == nullptr) {
    state.SkipWithError("bench rules do not load");
    return;
  }
  DecisionBuffer out;
  std::int64_t offset = 0;
  std::size_t next = 0;
  std::int64_t decisions = 0;
  std::int64_t routed = 0;
  std::int64_t bytes = 0;
  // Every routed need is completed once 2,000 later placements have been made: a FIFO ring of
  // reusable completion envelopes, so the harness does not allocate in the loop either.
  constexpr std::size_t kLag = 2000;
  // How far ahead Router::Prefetch is called (SIGNPOST_BENCH_PREFETCH; 0: not at all).
  const std::size_t kAhead = std::getenv("SIGNPOST_BENCH_PREFETCH") != nullptr
                                 ? std::strtoull(std::getenv("SIGNPOST_BENCH_PREFETCH"), nullptr, 10)
                                 : 4;
  std::vector<v1::Envelope> ring(1 << 16);
  std::size_t head = 0;
  std::size_t tail = 0;
  RouterChanges changes;  // taken every batch, timer paused, as the service commits one
  for (auto _ : state) {
    out.Clear();
    if (next % kBatch == 0 && next > 0) {
      state.PauseTiming();
      f->router->TakeChanges(changes);
      state.ResumeTiming();
    }
    const v1::Envelope& referral = f->Referral(next++, state);
    // As the service does within a batch: hint the events a few places ahead.
    if (kAhead > 0 && next - 1 + kAhead < f->window_begin + f->window.size()) {
      f->router->Prefetch(f->window[next - 1 + kAhead - f->window_begin]);
    }
    if (kAhead > 0 && tail - head > kLag && head + kAhead < tail) {
      f->router->Prefetch(ring[(head + kAhead) % ring.size()]);
    }
    if (!f->router->Apply(referral, Offset(offset++), out).ok()) {
      state.SkipWithError("apply failed");
      break;
    }
    if (tail - head > kLag) {
      v1::Envelope& done = ring[head++ % ring.size()];
      done.set_event_time_ms(referral.event_time_ms());
      if (!f->router->Apply(done, Offset(offset++), out).ok()) {
        state.SkipWithError("apply failed");
        break;
      }
    }
    decisions += static_cast<std::int64_t>(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      bytes += static_cast<std::int64_t>(out.bytes(i).size());  // ready to publish
      if (out.body(i) != v1::Envelope::kRouted) {
        continue;
      }
      ++routed;
      v1::Envelope& done = ring[tail++ % ring.size()];
      done.set_schema_version(1);
      done.set_domain("bench");  // as the intake stage resolves it
      done.set_event_id(out.referral_id(i).data(), out.referral_id(i).size());
      v1::PodResponse* response = done.mutable_pod_response();
      response->set_referral_id(out.referral_id(i).data(), out.referral_id(i).size());
      response->set_need_code(out.need_code(i).data(), out.need_code(i).size());
      response->set_pod_id(out.key(i).data(), out.key(i).size());  // a Routed's key: its pod
      response->mutable_completed()->set_outcome(v1::OUTCOME_NEED_MET);
    }
    if (tail - head >= ring.size()) {
      state.SkipWithError("completion ring overflow");
      break;
    }
  }
  state.counters["decisions_per_s"] =
      benchmark::Counter(static_cast<double>(decisions), benchmark::Counter::kIsRate);
  state.counters["referrals_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["routed_share"] =
      static_cast<double>(routed) / static_cast<double>(std::max<std::int64_t>(1, state.iterations()));
  state.counters["clients"] = static_cast<double>(f->clients.ClientCount());
  state.counters["bytes_per_decision"] =
      static_cast<double>(bytes) / static_cast<double>(std::max<std::int64_t>(1, decisions));
}
BENCHMARK(BM_RouteReferrals)->Iterations(Referrals())->Unit(benchmark::kMillisecond);

#if SIGNPOST_HAVE_JEMALLOC  // not in sanitizer builds, which bring their own allocator
// Client records are not the router's: a store that keeps none, so only the hot state grows.
class NoClientStore final : public ClientStore {
 public:
  const ClientState* Find(std::string_view) override { return nullptr; }
  ClientState& Mutable(std::string_view) override {
    scratch_.Clear();
    return scratch_;
  }
  void Erase(std::string_view) override {}
  const std::string* FindReferral(std::string_view) override { return nullptr; }
  void PutReferral(std::string_view, std::string_view) override {}
  const std::string* ClaimReferral(std::string_view, std::string_view) override {
    return nullptr;
  }
  void EraseReferral(std::string_view) override {}

 private:
  ClientState scratch_;
};

// Bytes jemalloc has handed out and not taken back.
std::size_t AllocatedBytes() {
  std::uint64_t epoch = 1;
  std::size_t size = sizeof(epoch);
  mallctl("epoch", &epoch, &size, &epoch, size);  // refreshes the statistics
  std::size_t allocated = 0;
  size = sizeof(allocated);
  return mallctl("stats.allocated", &allocated, &size, nullptr, 0) == 0 ? allocated : 0;
}

// The router's memory per open need, as in a shielding-list import: every referral stays open
// (waiting once the pods are full), nothing completes. Counted by the allocator, so the figure
// is exact and repeats run to run; client records are left out (NoClientStore).
void BM_OpenNeedMemory(benchmark::State& state) {
  std::unique_ptr<Fixture> f = MakeFixture();
  if (f == nullptr) {
    state.SkipWithError("bench rules do not load");
    return;
  }
  NoClientStore no_clients;
  Router router(f->rules, no_clients);
  DecisionBuffer out;
  RouterChanges changes;  // taken every 5,000 referrals, as the service commits a batch
  std::int64_t offset = 0;
  const std::size_t before = AllocatedBytes();
  for (auto _ : state) {
    out.Clear();
    if (!router.Apply(f->Referral(static_cast<std::size_t>(offset), state), Offset(offset), out)
             .ok()) {
      state.SkipWithError("apply failed");
      break;
    }
    if (++offset % 5000 == 0) {
      router.TakeChanges(changes);
    }
  }
  router.TakeChanges(changes);
  out.Clear();
  changes.Clear();
  const std::size_t after = AllocatedBytes();
  state.counters["open_needs"] = static_cast<double>(router.OpenNeedCount());
  state.counters["bytes_per_open_need"] =
      static_cast<double>(after - before) /
      static_cast<double>(std::max<std::size_t>(1, router.OpenNeedCount()));
}
BENCHMARK(BM_OpenNeedMemory)->Iterations(Referrals())->Unit(benchmark::kMillisecond);
#endif

}  // namespace
}  // namespace signpost::router

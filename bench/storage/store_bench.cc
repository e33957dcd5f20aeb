// SPDX-License-Identifier: Apache-2.0
// The partition store on real RocksDB: client-record updates committed in batches (sync:0 as
// the service commits, without the WAL; sync:1 through the WAL with an fsync per batch), and point
// reads of a million stored clients through a cache
// too small to hold them. SIGNPOST_BENCH_SMOKE=1 shrinks the fixtures for the ctest smoke run.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "router/decision_buffer.h"
#include "router/router.h"
#include "storage/partition_store.h"

namespace signpost::storage {
namespace {

bool Smoke() { return std::getenv("SIGNPOST_BENCH_SMOKE") != nullptr; }

struct TempStore {
  explicit TempStore(std::size_t cached_clients, bool sync) {
    char pattern[] = "/tmp/signpost-bench-XXXXXX";
    dir = mkdtemp(pattern);
    StoreOptions options;
    options.path = dir + "/p0";
    options.resources = StoreResources::Create(256 << 20);
    options.cached_clients = cached_clients;
    options.wal = sync;  // an fsync needs the WAL; without one, commits skip it (the default)
    options.sync = sync;
    store = std::move(*PartitionStore::Open(options));
  }
  ~TempStore() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  std::unique_ptr<PartitionStore> store;
};

// One iteration: `batch` client records changed, then one atomic commit with the offset.
void BM_CommitClientUpdates(benchmark::State& state) {
  const bool sync = state.range(0) != 0;
  const int batch = static_cast<int>(state.range(1));
  const int clients = Smoke() ? 2'000 : 100'000;
  TempStore t(static_cast<std::size_t>(clients), sync);
  std::vector<std::string> ids;
  for (int c = 0; c < clients; ++c) {
    ids.push_back(absl::StrCat("client-", c));
  }
  std::mt19937_64 rng(1);
  std::int64_t offset = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      router::ClientState& record = t.store->Clients().Mutable(ids[rng() % ids.size()]);
      record.set_last_contact_ms(offset);
      record.set_referral_count(record.referral_count() + 1);
      if (record.referral_ids().size() < 4) {
        record.AddReferral(absl::StrCat("ref-", offset, "-", i));
      }
    }
    if (!t.store->Commit(nullptr, Offset(offset++)).ok()) {
      state.SkipWithError("commit failed");
      break;
    }
  }
  state.counters["updates_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitClientUpdates)
    ->ArgNames({"sync", "batch"})
    ->Args({0, 1000})
    ->Args({1, 1000})
    ->Args({0, 100})
    ->Unit(benchmark::kMillisecond);

// The write path of a bulk import, as the router's state writer meets it: each iteration is one
// batch of 2,000 referrals of clients not stored yet, each a new client record (one referral id,
// as the core keeps it), its referral id and its open need (a 200-byte serialized need), committed
// with the offset. Counted: referrals per second of the committing thread. The cache holds the
// whole import, as the demo's does.
void BM_CommitImport(benchmark::State& state) {
  constexpr int kBatch = 2'000;
  const int clients = Smoke() ? 20'000 : 1'980'000;
  TempStore t(static_cast<std::size_t>(clients), false);
  std::mt19937_64 rng(3);
  router::RouterChanges changes;
  const std::string need(200, 'n');
  std::int64_t offset = 0;
  std::uint64_t need_id = 0;
  for (auto _ : state) {
    changes.Clear();
    for (int i = 0; i < kBatch; ++i, ++offset) {
      const std::string client = absl::StrCat("client-", rng() % static_cast<std::uint64_t>(clients));
      const std::string referral = absl::StrCat("demo-ref-1-", offset);
      router::ClientState& record = t.store->Clients().Mutable(client);
      record.set_referral_count(record.referral_count() + 1);
      record.set_last_contact_ms(offset);
      record.AddReferral(referral);
      t.store->Clients().PutReferral(referral, client);
      router::WireWriter w(changes.upsert_bytes);
      const std::size_t begin = changes.upsert_bytes.size;
      w.String(1, need);
      changes.upserts.push_back({++need_id, begin, changes.upsert_bytes.size});
    }
    if (!t.store->Commit(&changes, Offset(offset - 1)).ok()) {
      state.SkipWithError("commit failed");
      break;
    }
  }
  state.counters["referrals_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kBatch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitImport)->Iterations(Smoke() ? 10 : 250)->Unit(benchmark::kMillisecond);

// Point reads of random clients among a million on disk, through a 10,000-record cache.
void BM_PointReads(benchmark::State& state) {
  const int clients = Smoke() ? 5'000 : 1'000'000;
  TempStore t(10'000, false);
  for (int c = 0; c < clients; ++c) {
    router::ClientState& r = t.store->Clients().Mutable(absl::StrCat("client-", c));
    r.set_referral_count(1);
    r.AddReferral(absl::StrCat("ref-", c));
    if (c % 1000 == 999 && !t.store->Commit(nullptr, Offset(c)).ok()) {
      state.SkipWithError("load failed");
      return;
    }
  }
  static_cast<void>(t.store->Commit(nullptr, Offset(clients)));
  std::mt19937_64 rng(2);
  std::int64_t found = 0;
  std::int64_t reads = 0;
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i) {
      found += t.store->Clients().Find(absl::StrCat("client-", rng() % clients)) != nullptr;
    }
    reads += 1000;
    // Reads leave nothing dirty; committing lets the cache evict back to its bound.
    static_cast<void>(t.store->Commit(nullptr, Offset(clients)));
  }
  if (found != reads) {
    state.SkipWithError("a stored client was not found");
  }
  state.counters["reads_per_s"] =
      benchmark::Counter(static_cast<double>(reads), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PointReads)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace signpost::storage

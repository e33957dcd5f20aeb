// SPDX-License-Identifier: Apache-2.0
// The partition store on real RocksDB in a temporary directory.
#include "storage/partition_store.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <iostream>
#include <fstream>
#include <random>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "tests/testing/events.h"
#include "tests/testing/random_events.h"
#include "tests/testing/store_driver.h"

namespace signpost::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/signpost-store-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path_); }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class PartitionStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<PartitionStore> Open(std::size_t cached_clients = 100'000,
                                       rocksdb::Env* env = nullptr,
                                       const std::function<void(StoreOptions&)>& tweak = {}) {
    StoreOptions options;
    options.path = dir_.path() + "/p0";
    options.resources = resources_;
    options.cached_clients = cached_clients;
    options.env = env;
    if (tweak) tweak(options);
    auto store = PartitionStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Writes `value` under `key` in column family `cf` of the (closed) store, behind its back.
  void PutRaw(const std::string& cf, const std::string& key, const std::string& value) {
    const std::vector<std::string> names = {"default", "clients", "referrals",
                                            "needs",   "meta",    "keys"};
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir_.path() + "/p0", families, &handles,
                                  &raw)
                    .ok());
    const auto at = std::find(names.begin(), names.end(), cf) - names.begin();
    ASSERT_TRUE(raw->Put({}, handles[static_cast<std::size_t>(at)], key, value).ok());
    for (auto* h : handles) {
      ASSERT_TRUE(raw->DestroyColumnFamilyHandle(h).ok());
    }
    delete raw;
  }

  TempDir dir_;
  std::shared_ptr<StoreResources> resources_ = StoreResources::Create(64 << 20);
};

TEST_F(PartitionStoreTest, EmptyStoreHasNoOffsetAndNoState) {
  auto store = Open();
  EXPECT_EQ(store->AppliedOffset(), Offset(-1));
  auto state = store->LoadRouterState();
  ASSERT_TRUE(state.ok());
  EXPECT_FALSE(state->has_value());
}

TEST_F(PartitionStoreTest, StateAndOffsetSurviveReopenAndMatchACleanReplay) {
  const auto stream = testing::RandomStream(7, 600);
  {
    auto store = Open();
    auto router = testing::OpenRouter(*store, testing::kRandomRulesA);
    ASSERT_TRUE(router.ok()) << router.status();
    ASSERT_TRUE(testing::Drive(**router, *store, stream, 300, 50).ok());
  }
  {
    // Reopen and continue from the stored offset, as after a restart.
    auto store = Open();
    EXPECT_EQ(store->AppliedOffset(), Offset(299));
    auto router = testing::OpenRouter(*store, testing::kRandomRulesA);
    ASSERT_TRUE(router.ok()) << router.status();
    ASSERT_TRUE(testing::Drive(**router, *store, stream, 600, 37).ok());
  }
  auto store = Open();
  EXPECT_EQ(store->AppliedOffset(), Offset(599));
  auto stored = testing::Stored(*store);
  ASSERT_TRUE(stored.ok()) << stored.status();
  const testing::Fingerprints replay = testing::Replay(stream, 600, testing::kRandomRulesA);
  EXPECT_EQ(stored->router, replay.router);
  EXPECT_EQ(stored->clients, replay.clients);
}

// The store against a map over random operations, with reopens in between.
TEST_F(PartitionStoreTest, MatchesAnInMemoryModelOverRandomOperations) {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    fs::remove_all(dir_.path() + "/p0");
    std::mt19937_64 rng(seed);
    std::map<std::string, std::string> clients;    // client -> serialized record
    std::map<std::string, std::string> referrals;  // referral -> client
    auto store = Open(/*cached_clients=*/8);
    std::int64_t offset = -1;
    for (int op = 0; op < 400; ++op) {
      const std::string client = "c" + std::to_string(rng() % 30);
      const std::string referral = "r" + std::to_string(rng() % 40);
      switch (rng() % 20 == 0 ? 7 : rng() % 7) {
        case 0:
        case 1: {
          router::ClientState& state = store->Clients().Mutable(client);
          v1::ClientRecord record = state.ToRecord();
          record.set_referral_count(record.referral_count() + 1);
          record.set_last_contact_ms(op);
          if (rng() % 3 == 0) {
            // Records of different sizes, so one evicted and reused for another would show.
            record.add_referral_ids("r" + std::to_string(op));
            record.add_history()->set_pod_id("pod-" + std::to_string(op % 7));
          }
          state.Assign(record);
          clients[client] = record.SerializeAsString();
          break;
        }
        case 2:
          store->Clients().Erase(client);
          clients.erase(client);
          break;
        case 3:
          if (rng() % 2 == 0) {
            store->Clients().PutReferral(referral, client);
            referrals[referral] = client;
          } else {  // recorded only if new; a known id keeps its client
            const std::string* owner = store->Clients().ClaimReferral(referral, client);
            if (referrals.contains(referral)) {
              ASSERT_NE(owner, nullptr);
              ASSERT_EQ(*owner, referrals[referral]);
            } else {
              ASSERT_EQ(owner, nullptr);
              referrals[referral] = client;
            }
          }
          break;
        case 4:
          store->Clients().EraseReferral(referral);
          referrals.erase(referral);
          break;
        case 5:
          ASSERT_TRUE(store->Commit(nullptr, Offset(++offset)).ok());
          break;
        case 6: {
          // A batched read ahead of lookups, with a repeat, over cached and uncached keys.
          std::vector<std::string> keys = {client, "c" + std::to_string(rng() % 30), client};
          std::vector<std::string_view> client_keys(keys.begin(), keys.end());
          std::vector<std::string_view> referral_keys = {referral};
          store->Prefetch(client_keys, referral_keys);
          break;
        }
        default:
          // Reopen: uncommitted changes are lost, so commit first as the service would.
          ASSERT_TRUE(store->Commit(nullptr, Offset(++offset)).ok());
          store.reset();
          store = Open(8);
          ASSERT_EQ(store->AppliedOffset(), Offset(offset));
      }
      // Reads agree with the model whether they come from the cache or the database.
      const router::ClientState* found = store->Clients().Find(client);
      ASSERT_EQ(found != nullptr, clients.contains(client));
      if (found != nullptr) {
        ASSERT_EQ(found->ToRecord().SerializeAsString(), clients[client]);
      }
      const std::string* owner = store->Clients().FindReferral(referral);
      ASSERT_EQ(owner != nullptr, referrals.contains(referral));
      if (owner != nullptr) {
        ASSERT_EQ(*owner, referrals[referral]);
      }
    }
    ASSERT_TRUE(store->Commit(nullptr, Offset(++offset)).ok());
    EXPECT_LE(store->CachedClientsForTest(), 8u);
    auto dump = store->DumpForTest();
    ASSERT_TRUE(dump.ok());
    EXPECT_EQ((*dump)["clients"], clients);
    EXPECT_EQ((*dump)["referrals"], referrals);
  }
}

TEST_F(PartitionStoreTest, PrefetchCachesStoredRecordsAndAbsencesInOneRead) {
  {
    auto store = Open();
    store->Clients().Mutable("c1").set_referral_count(3);
    store->Clients().PutReferral("r1", "c1");
    ASSERT_TRUE(store->Commit(nullptr, Offset(0)).ok());
  }
  auto store = Open();
  ASSERT_EQ(store->CachedClientsForTest(), 0u);
  std::vector<std::string_view> clients = {"c2", "c1", "c2"};
  std::vector<std::string_view> referrals = {"r1", "r2"};
  store->Prefetch(clients, referrals);
  EXPECT_EQ(store->CachedClientsForTest(), 2u);  // c1 as stored, c2 as absent
  ASSERT_NE(store->Clients().Find("c1"), nullptr);
  EXPECT_EQ(store->Clients().Find("c1")->referral_count(), 3u);
  EXPECT_EQ(store->Clients().Find("c2"), nullptr);
  ASSERT_NE(store->Clients().FindReferral("r1"), nullptr);
  EXPECT_EQ(*store->Clients().FindReferral("r1"), "c1");
  EXPECT_EQ(store->Clients().FindReferral("r2"), nullptr);
  EXPECT_EQ(store->CachedClientsForTest(), 2u);  // the lookups were served from the cache
  // An uncommitted change is not overwritten by reading the stored record again.
  store->Clients().Mutable("c1").set_referral_count(4);
  clients = {"c1"};
  referrals.clear();
  store->Prefetch(clients, referrals);
  EXPECT_EQ(store->Clients().Find("c1")->referral_count(), 4u);
  EXPECT_TRUE(store->ReadStatus().ok());
}

// The cache keeps evicted entries to parse later records into; nothing of a record evicted
// before may show in the record, or the absence, of the client its entry is reused for.
TEST_F(PartitionStoreTest, EvictedEntriesReusedForOtherClientsCarryNothingOver) {
  auto store = Open(/*cached_clients=*/16);
  std::map<std::string, std::string> expected;
  for (int c = 0; c < 200; ++c) {
    const std::string client = "c" + std::to_string(c);
    router::ClientState& state = store->Clients().Mutable(client);
    v1::ClientRecord record = state.ToRecord();
    record.set_referral_count(static_cast<std::uint32_t>(c));
    for (int i = 0; i < c % 9; ++i) {
      record.add_referral_ids(client + "-r" + std::to_string(i));
      v1::ClientHistoryEntry* h = record.add_history();
      h->set_pod_id("pod-" + std::to_string(i));
      h->set_at_ms(c * 100 + i);
    }
    state.Assign(record);
    store->Clients().PutReferral(client + "-r0", client);
    expected[client] = record.SerializeAsString();
    if (c % 10 == 9) {
      ASSERT_TRUE(store->Commit(nullptr, Offset(c)).ok());  // evicts down to 16
    }
  }
  ASSERT_TRUE(store->Commit(nullptr, Offset(200)).ok());
  for (int pass = 0; pass < 2; ++pass) {  // the second pass reads into reused entries
    for (int c = 199; c >= 0; --c) {
      const std::string client = "c" + std::to_string(c);
      const router::ClientState* found = store->Clients().Find(client);
      ASSERT_NE(found, nullptr) << client;
      EXPECT_EQ(found->ToRecord().SerializeAsString(), expected[client]) << client;
      const std::string* owner = store->Clients().FindReferral(client + "-r0");
      ASSERT_NE(owner, nullptr);
      EXPECT_EQ(*owner, client);
      if (c % 20 == 0) {
        ASSERT_TRUE(store->Commit(nullptr, Offset(201 + pass * 200 + (199 - c))).ok());
      }
    }
  }
  // Absent clients and referrals, read into entries that held records.
  for (int c = 0; c < 200; ++c) {
    EXPECT_EQ(store->Clients().Find("absent-" + std::to_string(c)), nullptr);
    EXPECT_EQ(store->Clients().FindReferral("absent-" + std::to_string(c)), nullptr);
    if (c % 20 == 0) {
      ASSERT_TRUE(store->Commit(nullptr, Offset(601 + c)).ok());
    }
  }
  // A new client made from a reused entry holds its ref and nothing else.
  ASSERT_TRUE(store->Commit(nullptr, Offset(1000)).ok());
  const router::ClientState& fresh = store->Clients().Mutable("new-client");
  v1::ClientRecord want;
  want.set_client_ref("new-client");
  EXPECT_EQ(fresh.ToRecord().SerializeAsString(), want.SerializeAsString());
  EXPECT_LE(store->CachedClientsForTest(), 17u);
}

// The writer thread serializes the staged records after CommitAsync returns: records changed
// meanwhile (here, all of them, at once) wait until it has, so the write holds the values as
// staged and the next one the changes. (Under the tsan preset this also checks the hand-over.)
TEST_F(PartitionStoreTest, RecordsChangedWhileTheWriterSerializesThemGoIntoTheNextCommit) {
  constexpr int kClients = 20'000;
  auto store = Open(/*cached_clients=*/kClients);
  for (int c = 0; c < kClients; ++c) {
    store->Clients().Mutable("c" + std::to_string(c)).set_referral_count(1);
    store->Clients().PutReferral("r" + std::to_string(c), "c" + std::to_string(c));
  }
  ASSERT_TRUE(store->CommitAsync(nullptr, Offset(0)).ok());
  for (int c = kClients - 1; c >= 0; --c) {
    store->Clients().Mutable("c" + std::to_string(c)).set_referral_count(2);
    store->Clients().PutReferral("r" + std::to_string(c), "x" + std::to_string(c));
  }
  ASSERT_TRUE(store->FinishWrite().ok());
  auto dump = store->DumpForTest();
  ASSERT_TRUE(dump.ok());
  ASSERT_EQ((*dump)["clients"].size(), static_cast<std::size_t>(kClients));
  for (int c = 0; c < kClients; ++c) {
    v1::ClientRecord stored;
    ASSERT_TRUE(stored.ParseFromString((*dump)["clients"]["c" + std::to_string(c)]));
    ASSERT_EQ(stored.referral_count(), 1u) << c;
    ASSERT_EQ((*dump)["referrals"]["r" + std::to_string(c)], "c" + std::to_string(c)) << c;
  }
  ASSERT_TRUE(store->Commit(nullptr, Offset(1)).ok());
  store.reset();
  store = Open(kClients);
  for (int c = 0; c < kClients; ++c) {
    ASSERT_EQ(store->Clients().Find("c" + std::to_string(c))->referral_count(), 2u) << c;
    ASSERT_EQ(*store->Clients().FindReferral("r" + std::to_string(c)), "x" + std::to_string(c));
  }
}

TEST_F(PartitionStoreTest, ChangesMadeWhileAnAsyncWriteIsInFlightGoIntoTheNextCommit) {
  auto store = Open(/*cached_clients=*/2);
  for (int c = 0; c < 5; ++c) {
    store->Clients().Mutable("c" + std::to_string(c)).set_referral_count(1);
  }
  store->Clients().Erase("c4");
  ASSERT_TRUE(store->CommitAsync(nullptr, Offset(0)).ok());
  // Routing goes on while RocksDB writes: the staged values are already in the batch.
  store->Clients().Mutable("c0").set_referral_count(10);
  store->Clients().PutReferral("r1", "c0");
  ASSERT_TRUE(store->FinishWrite().ok());
  EXPECT_EQ(store->AppliedOffset(), Offset(0));
  EXPECT_EQ(store->Clients().Find("c0")->referral_count(), 10u);  // still cached, not reloaded
  auto dump = store->DumpForTest();
  ASSERT_TRUE(dump.ok());
  v1::ClientRecord stored;
  ASSERT_TRUE(stored.ParseFromString((*dump)["clients"]["c0"]));
  EXPECT_EQ(stored.referral_count(), 1u);  // the first write has the value as staged
  EXPECT_EQ((*dump)["clients"].size(), 4u);
  EXPECT_TRUE((*dump)["referrals"].empty());
  ASSERT_TRUE(store->CommitAsync(nullptr, Offset(1)).ok());
  store.reset();  // closing waits for the write in flight
  store = Open(2);
  EXPECT_EQ(store->AppliedOffset(), Offset(1));
  EXPECT_EQ(store->Clients().Find("c0")->referral_count(), 10u);
  EXPECT_EQ(*store->Clients().FindReferral("r1"), "c0");
  EXPECT_EQ(store->Clients().Find("c4"), nullptr);
}

TEST_F(PartitionStoreTest, ErasureRemovesEveryTraceAndShredsThePayloadKey) {
  const std::string secret_client = "client-7f3a9c2e51";
  auto store = Open();
  auto router = testing::OpenRouter(*store, testing::kRandomRulesA);
  ASSERT_TRUE(router.ok());
  auto sealed = store->Seal(secret_client, "Mrs Example, 12 Example Road, 01234 567890");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  ASSERT_EQ(*store->Unseal(secret_client, *sealed), "Mrs Example, 12 Example Road, 01234 567890");

  testing::EventFactory events;
  std::vector<v1::Envelope> stream = {
      events.Referral("ref-1", secret_client, {"food", "housing"}, "BA2"),
      events.Referral("ref-2", "someone-else", {"food"}, "BA1"),
      events.Referral("ref-3", secret_client, {"money"}, "BA2"),
  };
  *stream[0].mutable_referral_submitted()->mutable_payload() = *sealed;
  ASSERT_TRUE(testing::Drive(**router, *store, stream, stream.size(), 10).ok());
  stream.push_back(events.Erase(secret_client));
  ASSERT_TRUE(testing::Drive(**router, *store, stream, stream.size(), 10).ok());
  ASSERT_TRUE(store->PurgeErased().ok());

  // Nothing readable mentions the client ...
  auto dump = store->DumpForTest();
  ASSERT_TRUE(dump.ok());
  for (const auto& [cf, entries] : *dump) {
    for (const auto& [key, value] : entries) {
      EXPECT_EQ(key.find(secret_client), std::string::npos) << cf;
      EXPECT_EQ(value.find(secret_client), std::string::npos) << cf << " " << key;
    }
  }
  EXPECT_TRUE(dump->at("clients").contains("someone-else"));
  // ... no file of the database holds the bytes any more ...
  store.reset();
  router->reset();
  for (const auto& file : fs::recursive_directory_iterator(dir_.path())) {
    if (!file.is_regular_file()) {
      continue;
    }
    std::ifstream in(file.path(), std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    EXPECT_EQ(bytes.str().find(secret_client), std::string::npos) << file.path();
  }
  // ... and the old payload no longer opens.
  store = Open();
  EXPECT_EQ(store->Unseal(secret_client, *sealed).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PartitionStoreTest, ForgedPayloadIsDataLoss) {
  auto store = Open();
  auto sealed = store->Seal("c1", "detail");
  ASSERT_TRUE(sealed.ok());
  v1::SealedPayload forged = *sealed;
  forged.mutable_ciphertext()->back() ^= 1;
  EXPECT_EQ(store->Unseal("c1", forged).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(PartitionStoreTest, RetentionDropsOldClosedDetailAndKeepsCounts) {
  auto store = Open();
  router::ClientState& state = store->Clients().Mutable("c1");
  v1::ClientRecord record = state.ToRecord();
  record.set_referral_count(3);
  for (std::int64_t at : {1'000, 2'000, 9'000}) {
    v1::ClientHistoryEntry* h = record.add_history();
    h->set_kind(v1::HISTORY_KIND_COMPLETED);
    h->set_at_ms(at);
    h->add_remedies("food-parcel");
  }
  state.Assign(record);
  ASSERT_TRUE(store->Commit(nullptr, Offset(0)).ok());
  auto stats = store->SweepRetention(/*now_ms=*/10'000, /*keep_ms=*/5'000);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->clients_scanned, 1u);
  EXPECT_EQ(stats->entries_dropped, 2u);
  const router::ClientState* after = store->Clients().Find("c1");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->history_size(), 1u);
  EXPECT_EQ(after->history(0).at_ms, 9'000);
  EXPECT_EQ(after->history(0).remedies, std::vector<std::string>{"food-parcel"});
  EXPECT_EQ(after->referral_count(), 3u);
}

// A file system whose writes fail with "no space" once armed.
class FullDisk : public rocksdb::FileSystemWrapper {
 public:
  explicit FullDisk(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "FullDisk"; }
  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
    if (s.ok()) {
      *result = std::make_unique<File>(std::move(*result), full);
    }
    return s;
  }
  std::shared_ptr<std::atomic<bool>> full = std::make_shared<std::atomic<bool>>(false);

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile>&& f, std::shared_ptr<std::atomic<bool>> full)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), full_(std::move(full)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (*full_) {
        return rocksdb::IOStatus::NoSpace("injected: disk full");
      }
      return rocksdb::FSWritableFileOwnerWrapper::Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (*full_) {
        return rocksdb::IOStatus::NoSpace("injected: disk full");
      }
      return rocksdb::FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
    }

   private:
    std::shared_ptr<std::atomic<bool>> full_;
  };
};

// With the WAL, the commit's own write fails.
TEST_F(PartitionStoreTest, FullDiskFailsTheCommitWithoutAdvancingTheOffset) {
  auto fs = std::make_shared<FullDisk>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  {
    auto store = Open(100, env.get(), [](StoreOptions& o) { o.wal = true; });
    store->Clients().Mutable("c1").set_referral_count(1);
    ASSERT_TRUE(store->Commit(nullptr, Offset(0)).ok());
    *fs->full = true;
    store->Clients().Mutable("c1").set_referral_count(2);
    const absl::Status failed = store->Commit(nullptr, Offset(1));
    EXPECT_EQ(failed.code(), absl::StatusCode::kResourceExhausted) << failed;
    EXPECT_THAT(std::string(failed.message()), HasSubstr("disk full"));
    EXPECT_EQ(store->AppliedOffset(), Offset(0));
    // The uncommitted change is gone from the cache too: reads show the stored state.
    EXPECT_EQ(store->Clients().Find("c1")->referral_count(), 1u);
  }
  *fs->full = false;
  auto store = Open();
  EXPECT_EQ(store->AppliedOffset(), Offset(0));
  EXPECT_EQ(store->Clients().Find("c1")->referral_count(), 1u);
}

// Without it (the default), the flush that makes a commit durable fails: that commit fails,
// and the store reopens at the last commit a flush wrote.
TEST_F(PartitionStoreTest, FullDiskFailsTheFlushAndTheStoreReopensAtTheLastFlushedCommit) {
  auto fs = std::make_shared<FullDisk>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  const auto flush_each_commit = [](StoreOptions& o) {
    o.flush_interval = std::chrono::milliseconds(0);
  };
  {
    auto store = Open(100, env.get(), flush_each_commit);
    store->Clients().Mutable("c1").set_referral_count(1);
    ASSERT_TRUE(store->Commit(nullptr, Offset(0)).ok());
    *fs->full = true;
    store->Clients().Mutable("c1").set_referral_count(2);
    const absl::Status failed = store->Commit(nullptr, Offset(1));
    EXPECT_EQ(failed.code(), absl::StatusCode::kResourceExhausted) << failed;
    EXPECT_EQ(store->AppliedOffset(), Offset(0));
    // Later commits fail too (RocksDB stops writing after a failed flush) until it reopens.
    store->Clients().Mutable("c1").set_referral_count(3);
    EXPECT_FALSE(store->Commit(nullptr, Offset(2)).ok());
    EXPECT_EQ(store->AppliedOffset(), Offset(0));
  }
  *fs->full = false;
  auto store = Open(100, env.get(), flush_each_commit);
  EXPECT_EQ(store->AppliedOffset(), Offset(0));
  ASSERT_NE(store->Clients().Find("c1"), nullptr);
  EXPECT_EQ(store->Clients().Find("c1")->referral_count(), 1u);
}

TEST_F(PartitionStoreTest, SyncWithoutTheWalIsRefused) {
  StoreOptions options;
  options.path = dir_.path() + "/p0";
  options.resources = resources_;
  options.sync = true;
  EXPECT_EQ(PartitionStore::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PartitionStoreTest, CorruptStoredValueIsDataLoss) {
  {
    auto store = Open();
    auto router = testing::OpenRouter(*store, testing::kRandomRulesA);
    ASSERT_TRUE(router.ok());
    const auto stream = testing::RandomStream(3, 40);
    ASSERT_TRUE(testing::Drive(**router, *store, stream, 40, 40).ok());
  }
  // Overwrite the router header with bytes that are not a RouterSnapshot.
  PutRaw("meta", "router_header", "\xff\xff\xff garbage");
  auto store = Open();
  EXPECT_EQ(store->LoadRouterState().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(PartitionStoreTest, PrefetchLeavesAnUnparsableRecordForTheLookupToReport) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Commit(nullptr, Offset(0)).ok());
  }
  PutRaw("clients", "c1", "\xff\xff\xff garbage");
  auto store = Open();
  std::vector<std::string_view> clients = {"c1", "c2"};
  std::vector<std::string_view> referrals;
  store->Prefetch(clients, referrals);
  EXPECT_EQ(store->CachedClientsForTest(), 1u);  // only c2, as absent
  EXPECT_TRUE(store->ReadStatus().ok());
  EXPECT_EQ(store->Clients().Find("c1"), nullptr);
  EXPECT_EQ(store->ReadStatus().code(), absl::StatusCode::kDataLoss);
}

TEST_F(PartitionStoreTest, CheckpointsAreListedVerifiedAndRestored) {
  const auto stream = testing::RandomStream(11, 200);
  const std::string checkpoints = dir_.path() + "/checkpoints";
  std::map<std::string, std::map<std::string, std::string>> at_checkpoint;
  {
    auto store = Open();
    auto router = testing::OpenRouter(*store, testing::kRandomRulesA);
    ASSERT_TRUE(router.ok());
    ASSERT_TRUE(testing::Drive(**router, *store, stream, 100, 25).ok());
    auto first = store->CreateCheckpoint(checkpoints);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->applied, Offset(99));
    at_checkpoint = *store->DumpForTest();
    ASSERT_TRUE(testing::Drive(**router, *store, stream, 200, 25).ok());
    ASSERT_TRUE(store->CreateCheckpoint(checkpoints).ok());
  }
  auto listed = PartitionStore::ListCheckpoints(checkpoints);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].applied, Offset(99));
  EXPECT_EQ((*listed)[1].applied, Offset(199));
  EXPECT_GT((*listed)[0].bytes, 0u);
  ASSERT_TRUE(PartitionStore::VerifyCheckpoint((*listed)[0].path).ok());

  ASSERT_TRUE(PartitionStore::RestoreCheckpoint((*listed)[0].path, dir_.path() + "/p0").ok());
  auto store = Open();
  EXPECT_EQ(store->AppliedOffset(), Offset(99));
  EXPECT_EQ(*store->DumpForTest(), at_checkpoint);
  // Replaying on from the checkpoint reaches the same state as a clean replay.
  auto router = testing::OpenRouter(*store, testing::kRandomRulesA);
  ASSERT_TRUE(router.ok());
  ASSERT_TRUE(testing::Drive(**router, *store, stream, 200, 25).ok());
  auto stored = testing::Stored(*store);
  const testing::Fingerprints replay = testing::Replay(stream, 200, testing::kRandomRulesA);
  EXPECT_EQ(stored->router, replay.router);
  EXPECT_EQ(stored->clients, replay.clients);
}

TEST_F(PartitionStoreTest, ScheduledCheckpointsComeEveryIntervalAndKeepTheNewest) {
  auto store = Open();
  const std::string root = dir_.path() + "/scheduled";
  std::vector<std::int64_t> created_at;
  for (std::int64_t minute = 0; minute < 60; ++minute) {
    store->Clients().Mutable("c1").set_last_contact_ms(minute);
    ASSERT_TRUE(store->Commit(nullptr, Offset(minute)).ok());
    auto made = store->MaybeCheckpoint(root, minute * 60'000, 15 * 60'000, 2);
    ASSERT_TRUE(made.ok()) << made.status();
    if (made->has_value()) {
      created_at.push_back(minute);
    }
  }
  EXPECT_EQ(created_at, (std::vector<std::int64_t>{0, 15, 30, 45}));
  auto listed = PartitionStore::ListCheckpoints(root);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].applied, Offset(30));
  EXPECT_EQ((*listed)[1].applied, Offset(45));
}

TEST_F(PartitionStoreTest, VerifyingADamagedCheckpointFails) {
  auto store = Open();
  store->Clients().Mutable("c1").set_referral_count(1);
  ASSERT_TRUE(store->Commit(nullptr, Offset(0)).ok());
  auto info = store->CreateCheckpoint(dir_.path() + "/ck");
  ASSERT_TRUE(info.ok());
  bool damaged = false;
  for (const auto& file : fs::directory_iterator(info->path)) {
    if (file.path().extension() == ".sst") {
      std::fstream f(file.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(10);
      f.put('\x5a');
      f.put('\xa5');
      damaged = true;
    }
  }
  ASSERT_TRUE(damaged) << "a checkpoint holds at least one table file";
  EXPECT_FALSE(PartitionStore::VerifyCheckpoint(info->path).ok());
}

TEST_F(PartitionStoreTest, MemoryStaysWithinTheBudgetWhileLoadingAMillionClients) {
  constexpr std::size_t kBudget = 64 << 20;
  constexpr std::size_t kCached = 50'000;
  auto store = Open(kCached);
  std::size_t peak = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    router::ClientState& r = store->Clients().Mutable("client-" + std::to_string(i));
    r.set_first_contact_ms(1'767'261'600'000 + i);
    r.set_last_contact_ms(1'767'261'600'000 + i);
    r.set_referral_count(1);
    r.AddReferral("ref-" + std::to_string(i));
    if (i % 1000 == 999) {
      ASSERT_TRUE(store->Commit(nullptr, Offset(i / 1000)).ok());
      peak = std::max(peak, resources_->MemoryUsage());
      ASSERT_LE(store->CachedClientsForTest(), kCached);
    }
  }
  RecordProperty("peak_rocksdb_bytes", static_cast<int>(peak));
  std::cout << "peak RocksDB memory " << peak << " bytes of a " << kBudget << " budget\n";
  EXPECT_LE(peak, kBudget);
  EXPECT_GT(peak, 0u);
  // Everything is there, mostly read back from disk rather than the cache.
  for (int i : {0, 123'456, 999'999}) {
    const router::ClientState* r = store->Clients().Find("client-" + std::to_string(i));
    ASSERT_NE(r, nullptr) << i;
    EXPECT_EQ(r->referral_ids()[0], "ref-" + std::to_string(i));
  }
}

}  // namespace
}  // namespace signpost::storage

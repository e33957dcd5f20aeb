// SPDX-License-Identifier: Apache-2.0
#include "storage/partition_store.h"

#include <pthread.h>
#include <sodium.h>

#include <algorithm>
#include <filesystem>
#include <condition_variable>
#include <future>
#include <iterator>
#include <list>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "router/base/status_macros.h"
#include "storage/status.h"

namespace signpost::storage {
namespace {

namespace fs = std::filesystem;

// Column families. Keys never hold personal data: client refs are pseudonymous keyed hashes.
constexpr char kClientsCf[] = "clients";      // client_ref -> ClientRecord
constexpr char kReferralsCf[] = "referrals";  // referral_id -> client_ref
constexpr char kNeedsCf[] = "needs";          // big-endian need id -> OpenNeedSnapshot
constexpr char kMetaCf[] = "meta";            // the keys below
constexpr char kKeysCf[] = "keys";            // client_ref -> payload key (crypto-shredding)

constexpr char kAppliedKey[] = "applied_offset";
constexpr char kHeaderKey[] = "router_header";  // RouterSnapshot without needs and rules
constexpr char kRulesKey[] = "rules_yaml";
constexpr char kSchemaKey[] = "schema_version";
constexpr char kSchemaVersion[] = "1";
constexpr char kCheckpointPrefix[] = "ckpt-";

std::string EncodeU64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::uint64_t DecodeU64(const rocksdb::Slice& s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[i]);
  }
  return v;
}

rocksdb::Slice AsSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

std::vector<std::string> ColumnFamilyNames() {
  return {rocksdb::kDefaultColumnFamilyName, kClientsCf, kReferralsCf, kNeedsCf, kMetaCf, kKeysCf};
}

// The routing thread's view of the write in flight. Its staged entries are serialized into the
// batch on the writer thread while routing goes on; an entry of it is not changed until the
// writer is done reading them (a read-only use does not wait).
struct Staging {
  std::uint64_t write = 0;  // the number of the last write staged
  // While valid, the writer may still be reading that write's entries; ready once it is not.
  std::future<void> read;

  void WaitForWriter() {
    if (read.valid()) {
      read.wait();
      read = {};
    }
  }
};

// A bounded write-through cache of one column family: reads fill it, writes stay in it (dirty)
// until Stage() hands them to the commit's write; after the commit they are clean and the least
// recently used clean entries are evicted down to the capacity. Entries are never evicted
// between commits, so references handed out during a batch stay valid.
template <typename Value>
class CachedTable {
 public:
  struct Entry {
    std::string key;
    Value value;
    bool exists = false;
    bool dirty = false;       // changed since it was last staged
    std::uint64_t staged = 0;  // the write that staged it last (Staging::write)
    typename std::list<Entry*>::iterator lru;
  };

  CachedTable(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::size_t capacity,
              Staging* staging)
      : db_(db), cf_(cf), capacity_(capacity),
        max_free_(std::min<std::size_t>(capacity / 8, 16'384)), staging_(staging) {}

  // The entry for `key`, loading it on a miss; nullptr only on a read error (recorded).
  Entry* Lookup(std::string_view key, absl::Status& read_status) {
    auto it = entries_.find(absl::string_view(key.data(), key.size()));
    if (it != entries_.end()) {
      lru_.splice(lru_.end(), lru_, it->second.lru);
      return &it->second;
    }
    std::string bytes;
    const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf_, AsSlice(key), &bytes);
    if (!s.ok() && !s.IsNotFound()) {
      read_status.Update(ToStatus(s, "read state"));
      return nullptr;
    }
    Entry* entry = Insert(key, s.ok() ? std::optional<rocksdb::Slice>(bytes) : std::nullopt);
    if (entry == nullptr) {
      read_status.Update(absl::DataLossError(absl::StrCat("unparsable value in ", cf_->GetName())));
    }
    return entry;
  }

  // Starts loading the memory a Lookup of `key` will probe first (its slot in the table).
  void PrefetchSlot(std::string_view key) const {
    entries_.prefetch(absl::string_view(key.data(), key.size()));
  }

  // Reads the keys not cached yet in one batched MultiGet (sorted, each key once), so the
  // Lookups that follow find them in memory. Errors are not recorded here: a key that could
  // not be read stays uncached, and its Lookup reads it again and reports.
  void Prefetch(std::vector<std::string_view>& keys) {
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    slices_.clear();
    for (std::string_view key : keys) {
      if (!entries_.contains(absl::string_view(key.data(), key.size()))) {
        slices_.push_back(AsSlice(key));
      }
    }
    if (slices_.empty()) {
      return;
    }
    values_.resize(slices_.size());
    statuses_.resize(slices_.size());
    db_->MultiGet(rocksdb::ReadOptions(), cf_, slices_.size(), slices_.data(), values_.data(),
                  statuses_.data(), /*sorted_input=*/true);
    for (std::size_t i = 0; i < slices_.size(); ++i) {
      if (statuses_[i].ok() || statuses_[i].IsNotFound()) {
        static_cast<void>(Insert(std::string_view(slices_[i].data(), slices_[i].size()),
                                 statuses_[i].ok() ? std::optional<rocksdb::Slice>(values_[i])
                                                   : std::nullopt));
      }
      values_[i].Reset();
    }
  }

  // Lookup, for a change: waits while the write in flight may still be reading the entry.
  Entry* LookupForUpdate(std::string_view key, absl::Status& read_status) {
    Entry* e = Lookup(key, read_status);
    if (e != nullptr && staging_->read.valid() && e->staged == staging_->write) {
      staging_->WaitForWriter();
    }
    return e;
  }

  void MarkDirty(Entry& entry) {
    if (!entry.dirty) {
      entry.dirty = true;
      dirty_.push_back(&entry);
    }
  }

  // Hands the dirty entries to the write numbered staging_->write (the routing thread's part):
  // they are clean from here on (changes made while the write is in flight make them dirty
  // again) and stay cached until Committed().
  void Stage() {
    for (Entry* e : dirty_) {
      e->dirty = false;
      e->staged = staging_->write;
    }
    staged_.swap(dirty_);  // staged_ is empty: the last write took its entries
    dirty_.clear();
  }

  // Puts the staged entries into `batch` (on the writer thread; it only reads them).
  void WriteStaged(rocksdb::WriteBatch& batch, std::vector<std::string>* deleted) {
    // In key order: the memtable's skip list starts each insert from where the previous one
    // ended, so sorted inserts search only the gap between neighbours instead of the whole list.
    std::sort(staged_.begin(), staged_.end(), [](const Entry* a, const Entry* b) {
      return a->key < b->key;
    });
    for (const Entry* e : staged_) {
      if (e->exists) {
        batch.Put(cf_, e->key, Serialize(e->value, bytes_));
      } else {
        batch.Delete(cf_, e->key);
        if (deleted != nullptr) {
          deleted->push_back(e->key);
        }
      }
    }
    staged_.clear();
  }

  // The staged write is durable: clean entries may be evicted, least recently used first.
  // Only called with no write in flight, so no clean entry is waiting on one. Evicted entries
  // (up to a few thousand) are kept, detached, for Insert to reuse: a cleared protobuf record
  // keeps its allocations, so the next batch's records are parsed into warm memory instead of
  // freed here and allocated again there.
  void Committed() {
    while (entries_.size() > capacity_ && !lru_.empty() && !lru_.front()->dirty) {
      Entry* victim = lru_.front();
      if (free_.size() < max_free_) {
        free_lru_.splice(free_lru_.end(), lru_, lru_.begin());
        free_.push_back(entries_.extract(victim->key));
      } else {
        lru_.pop_front();
        entries_.erase(victim->key);
      }
    }
  }

  // Forgets uncommitted changes: those entries reload from the database on next use. Only
  // between writes (nothing in flight).
  void Discard() {
    for (Entry* e : dirty_) {
      lru_.erase(e->lru);
      entries_.erase(e->key);
    }
    dirty_.clear();
  }

  void Clear() {
    dirty_.clear();
    staged_.clear();
    lru_.clear();
    entries_.clear();
    free_.clear();
    free_lru_.clear();
  }

  void Rebind(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    Clear();
    db_ = db;
    cf_ = cf;
  }

  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  // A new entry for `key` holding `stored` (parsed), or absent when `stored` is nullopt;
  // nullptr, and no entry, when the stored bytes do not parse.
  // Only called on a miss, so the key is new to the map.
  Entry* Insert(std::string_view key, std::optional<rocksdb::Slice> stored) {
    typename Map::iterator it;
    if (free_.empty()) {
      it = entries_.try_emplace(absl::string_view(key.data(), key.size())).first;
      lru_.push_back(&it->second);
    } else {  // an evicted entry, with its list node
      free_.back().key().assign(key.data(), key.size());
      it = entries_.insert(std::move(free_.back())).position;
      free_.pop_back();
      lru_.splice(lru_.end(), free_lru_, free_lru_.begin());
      lru_.back() = &it->second;
    }
    Entry& entry = it->second;
    entry.lru = std::prev(lru_.end());
    if (!Fill(entry, stored)) {
      lru_.erase(entry.lru);
      entries_.erase(it);
      return nullptr;
    }
    entry.key = it->first;
    entry.dirty = false;
    return &entry;
  }
  // `entry`'s value and existence from `stored`; false when the bytes do not parse.
  static bool Fill(Entry& entry, const std::optional<rocksdb::Slice>& stored) {
    entry.exists = stored.has_value();
    if (!entry.exists) {
      Reset(entry.value);
      return true;
    }
    return Parse(*stored, entry.value);
  }
  static void Reset(router::ClientState& value) { value.Clear(); }
  static void Reset(std::string& value) { value.clear(); }
  static bool Parse(const rocksdb::Slice& bytes, router::ClientState& out) {
    return out.ParseFrom(std::string_view(bytes.data(), bytes.size()));
  }
  static bool Parse(const rocksdb::Slice& bytes, std::string& out) {
    out.assign(bytes.data(), bytes.size());
    return true;
  }
  // The bytes to store for `value`, in `buffer` if they need one.
  static rocksdb::Slice Serialize(const router::ClientState& value,
                                  router::WireWriter::Buffer& buffer) {
    buffer.Clear();
    value.SerializeTo(buffer);
    return {buffer.bytes.data(), buffer.size};
  }
  static rocksdb::Slice Serialize(const std::string& value, router::WireWriter::Buffer&) {
    return AsSlice(value);
  }

  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
  std::size_t capacity_;
  using Map = absl::node_hash_map<std::string, Entry>;
  Map entries_;
  std::list<Entry*> lru_;  // least recently used first
  // Evicted entries kept for reuse, and as many list nodes (their values are stale).
  std::vector<typename Map::node_type> free_;
  std::list<Entry*> free_lru_;
  std::size_t max_free_ = 0;
  std::vector<Entry*> dirty_;
  // The entries of the write in flight; the writer thread's from Stage() until it has put them
  // into the batch.
  std::vector<Entry*> staged_;
  router::WireWriter::Buffer bytes_;  // the writer's serialization buffer
  Staging* staging_;
  // Prefetch's buffers, kept between calls.
  std::vector<rocksdb::Slice> slices_;
  std::vector<rocksdb::PinnableSlice> values_;
  std::vector<rocksdb::Status> statuses_;
};

// The router's ClientStore over the clients and referrals column families.
class CachedClientStore final : public router::ClientStore {
 public:
  CachedClientStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* clients,
                    rocksdb::ColumnFamilyHandle* referrals, std::size_t clients_capacity,
                    std::size_t referrals_capacity)
      : clients_(db, clients, clients_capacity, &staging_),
        referrals_(db, referrals, referrals_capacity, &staging_) {}

  void PrefetchRecord(std::string_view client_ref, std::string_view referral_id) override {
    clients_.PrefetchSlot(client_ref);
    referrals_.PrefetchSlot(referral_id);
  }

  const router::ClientState* Find(std::string_view client_ref) override {
    auto* e = clients_.Lookup(client_ref, read_status_);
    return e != nullptr && e->exists ? &e->value : nullptr;
  }

  router::ClientState& Mutable(std::string_view client_ref) override {
    auto* e = clients_.LookupForUpdate(client_ref, read_status_);
    if (e == nullptr) {
      // A read error: hand out a scratch record; ReadStatus() fails the commit.
      scratch_.Clear();
      return scratch_;
    }
    if (!e->exists) {
      e->value.Clear();
      e->value.set_client_ref(client_ref);
      e->exists = true;
    }
    clients_.MarkDirty(*e);
    return e->value;
  }

  void Erase(std::string_view client_ref) override {
    auto* e = clients_.LookupForUpdate(client_ref, read_status_);
    if (e != nullptr) {
      e->exists = false;
      e->value.Clear();
      clients_.MarkDirty(*e);
    }
  }

  const std::string* FindReferral(std::string_view referral_id) override {
    auto* e = referrals_.Lookup(referral_id, read_status_);
    return e != nullptr && e->exists ? &e->value : nullptr;
  }

  void PutReferral(std::string_view referral_id, std::string_view client_ref) override {
    auto* e = referrals_.LookupForUpdate(referral_id, read_status_);
    if (e != nullptr) {
      e->value.assign(client_ref);
      e->exists = true;
      referrals_.MarkDirty(*e);
    }
  }

  const std::string* ClaimReferral(std::string_view referral_id,
                                   std::string_view client_ref) override {
    auto* e = referrals_.LookupForUpdate(referral_id, read_status_);
    if (e == nullptr) {
      return nullptr;  // a read error, recorded: the commit fails
    }
    if (e->exists) {
      return &e->value;
    }
    e->value.assign(client_ref);
    e->exists = true;
    referrals_.MarkDirty(*e);
    return nullptr;
  }

  void EraseReferral(std::string_view referral_id) override {
    auto* e = referrals_.LookupForUpdate(referral_id, read_status_);
    if (e != nullptr) {
      e->exists = false;
      e->value.clear();
      referrals_.MarkDirty(*e);
    }
  }

  void Prefetch(std::vector<std::string_view>& client_refs,
                std::vector<std::string_view>& referral_ids) {
    clients_.Prefetch(client_refs);
    referrals_.Prefetch(referral_ids);
  }

  // Hands every change since the last Stage to a new write (the routing thread's part, cheap).
  void Stage() {
    ++staging_.write;
    clients_.Stage();
    referrals_.Stage();
  }
  // The write's part, on the writer thread: puts the staged changes into `batch`; erased
  // clients are appended to `erased`.
  void WriteStaged(rocksdb::WriteBatch& batch, std::vector<std::string>& erased) {
    clients_.WriteStaged(batch, &erased);
    referrals_.WriteStaged(batch, nullptr);
  }
  // The staged entries are being read on the writer thread until `read` is ready.
  void Reading(std::future<void> read) { staging_.read = std::move(read); }
  // The write is over (whatever its result): nothing of it is read any more.
  void WriteOver() { staging_.read = {}; }
  void Committed() {
    clients_.Committed();
    referrals_.Committed();
    read_status_ = absl::OkStatus();
  }
  void Discard() {
    clients_.Discard();
    referrals_.Discard();
    read_status_ = absl::OkStatus();
  }
  void Clear() {
    clients_.Clear();
    referrals_.Clear();
  }
  void Rebind(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* clients,
              rocksdb::ColumnFamilyHandle* referrals) {
    clients_.Rebind(db, clients);
    referrals_.Rebind(db, referrals);
  }
  [[nodiscard]] const absl::Status& read_status() const { return read_status_; }
  [[nodiscard]] std::size_t size() const { return clients_.size(); }

 private:
  Staging staging_;  // before the tables, which refer to it
  CachedTable<router::ClientState> clients_;
  CachedTable<std::string> referrals_;
  absl::Status read_status_;
  router::ClientState scratch_;
};

rocksdb::ColumnFamilyOptions TableOptions(const StoreResources& resources,
                                          const std::shared_ptr<rocksdb::Cache>& cache,
                                          std::size_t write_buffer_bytes) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));  // point lookups of small keys
  table.cache_index_and_filter_blocks = true;                   // charged to the budget
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.block_size = 4096;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.write_buffer_size = write_buffer_bytes;
  // Most lookups of a bulk import are of clients and referral ids not stored yet: a memtable
  // bloom filter answers those without searching the skip list (draining 400,000 pre-loaded
  // referrals: median of five 44,072 -> 46,959 needs/s).
  cf.memtable_prefix_bloom_size_ratio = 0.1;
  cf.memtable_whole_key_filtering = true;
  cf.max_write_buffer_number = 3;
  cf.level_compaction_dynamic_level_bytes = true;
  // CPU before disk: the router shares two cores with the broker, and compaction took a tenth of
  // the router's CPU during a bulk import. Flushed files stay uncompressed and compaction starts
  // at 8 level-0 files instead of 4 (each merge into the last level rewrites all of it; the
  // bloom filters keep lookups of the extra files cheap); the last level gets LZ4, not ZSTD.
  // Draining 1,000,000 pre-loaded referrals, two alternating pairs: RocksDB background CPU
  // 4.77 / 4.50 s -> 2.56 / 2.52 s, router CPU 32 / 34 -> 29 / 30 ms per 1,000.
  cf.compression = rocksdb::kNoCompression;
  cf.bottommost_compression = rocksdb::kLZ4Compression;
  cf.level0_file_num_compaction_trigger = 8;
  static_cast<void>(resources);
  return cf;
}

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::shared_ptr<StoreResources> StoreResources::Create(std::size_t budget_bytes,
                                                       double write_share) {
  auto r = std::make_shared<StoreResources>();
  r->budget_ = budget_bytes;
  rocksdb::LRUCacheOptions cache_options;
  cache_options.capacity = budget_bytes;
  cache_options.num_shard_bits = 4;
  cache_options.strict_capacity_limit = false;
  r->cache_ = rocksdb::NewLRUCache(cache_options);
  // Memtables are charged to the same cache, so cache + memtables stay within the budget.
  r->write_buffers_ = std::make_shared<rocksdb::WriteBufferManager>(
      static_cast<std::size_t>(static_cast<double>(budget_bytes) * write_share), r->cache_);
  return r;
}

void StoreResources::LowerCompactionPriority() {
  static_cast<void>(rocksdb::Env::Default()->LowerThreadPoolCPUPriority(
      rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow));
}

std::size_t StoreResources::MemoryUsage() const {
  // Cache usage includes the memtable reservations made by the write-buffer manager.
  return cache_->GetUsage();
}

class PartitionStore::Impl {
 public:
  StoreOptions options;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // in ColumnFamilyNames() order
  rocksdb::ColumnFamilyHandle* clients = nullptr;
  rocksdb::ColumnFamilyHandle* referrals = nullptr;
  rocksdb::ColumnFamilyHandle* needs = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* keys = nullptr;
  std::unique_ptr<CachedClientStore> client_store;
  std::vector<std::string> erased_since_purge;
  std::vector<std::string> erased_in_batch;
  bool schema_written = false;
  rocksdb::WriteBatch batch;
  // The router's need changes of the write in flight (serialized needs), taken from the
  // caller's RouterChanges, which gets the last write's buffers back for reuse.
  std::vector<router::RouterChanges::Upsert> upserts;
  router::WireWriter::Buffer upsert_bytes;
  // The write of the last CommitAsync, until FinishWrite() collects it.
  std::future<rocksdb::Status> write;
  Offset write_applied{-1};
  std::chrono::steady_clock::time_point last_flush = std::chrono::steady_clock::now();
  // The thread CommitAsync writes on, started at the first one and kept: a thread per write
  // cost more than the write (RocksDB's and the allocator's per-thread state start cold).
  std::mutex writer_mutex;
  std::condition_variable writer_wake;
  std::packaged_task<rocksdb::Status()> writer_job;
  bool writer_stop = false;
  std::thread writer;

  ~Impl() {
    if (write.valid()) {
      write.wait();
    }
    if (writer.joinable()) {
      {
        std::lock_guard<std::mutex> lock(writer_mutex);
        writer_stop = true;
      }
      writer_wake.notify_one();
      writer.join();
    }
    CloseDb();
  }

  // Runs `job` on the writer thread; its future is ready when it has run.
  std::future<rocksdb::Status> Post(std::packaged_task<rocksdb::Status()> job) {
    std::future<rocksdb::Status> done = job.get_future();
    if (!writer.joinable()) {
      writer = std::thread([this] {
        pthread_setname_np(pthread_self(), "state-writer");  // as `top -H` shows it
        std::unique_lock<std::mutex> lock(writer_mutex);
        while (true) {
          writer_wake.wait(lock, [this] { return writer_stop || writer_job.valid(); });
          if (!writer_job.valid()) {
            return;  // stopping, nothing posted
          }
          std::packaged_task<rocksdb::Status()> run = std::move(writer_job);
          lock.unlock();
          run();
          lock.lock();
        }
      });
    }
    {
      std::lock_guard<std::mutex> lock(writer_mutex);
      writer_job = std::move(job);
    }
    writer_wake.notify_one();
    return done;
  }

  // How state (anything but payload keys) is written: through the WAL only when asked to. A
  // state write in the WAL next to flush-only ones could, after a crash, be replayed over an
  // older flushed state than its own.
  rocksdb::WriteOptions StateWrite() const {
    rocksdb::WriteOptions w;
    w.sync = options.sync;
    w.disableWAL = !options.wal;
    return w;
  }

  // Without the WAL: flushes every column family together (one atomic flush, so the files on
  // disk always hold one commit's state and offset) once the last flush is old enough.
  rocksdb::Status MaybeFlush(bool now = false) {
    if (options.wal) {
      return rocksdb::Status::OK();
    }
    const auto at = std::chrono::steady_clock::now();
    if (!now && at - last_flush < options.flush_interval) {
      return rocksdb::Status::OK();
    }
    last_flush = at;
    rocksdb::FlushOptions flush;
    flush.wait = now || options.flush_interval.count() == 0;
    flush.allow_write_stall = true;
    return db->Flush(flush, handles);
  }

  void CloseDb() {
    if (db != nullptr) {
      static_cast<void>(MaybeFlush(/*now=*/true));  // RocksDB would too; not left to chance
    }
    for (auto* h : handles) {
      if (h != nullptr) {
        static_cast<void>(db->DestroyColumnFamilyHandle(h));
      }
    }
    handles.clear();
    if (db != nullptr) {
      static_cast<void>(db->Close());
      db.reset();
    }
  }

  absl::Status OpenDb() {
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.write_buffer_manager = options.resources->write_buffers_;
    db_options.max_background_jobs = 2;
    db_options.paranoid_checks = true;
    // After a crash the WAL is replayed up to the first damaged record: a consistent prefix of
    // commits, each of which carries its offset.
    db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    // Commits skip the WAL (StoreOptions::wal): what is on disk is what a flush wrote, and a
    // flush must then cover every column family at once, or the stored offset could run ahead
    // of (or behind) the client records it describes.
    db_options.atomic_flush = true;
    db_options.keep_log_file_num = 3;
    if (options.env != nullptr) {
      db_options.env = options.env;
    }
    const std::size_t write_buffer =
        std::clamp<std::size_t>(options.resources->Budget() / 16, 1 << 20, 32 << 20);
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : ColumnFamilyNames()) {
      families.emplace_back(name, TableOptions(*options.resources, options.resources->cache_,
                                               write_buffer));
    }
    rocksdb::DB* raw = nullptr;
    SIGNPOST_RETURN_IF_ERROR(
        ToStatus(rocksdb::DB::Open(db_options, options.path, families, &handles, &raw),
                 absl::StrCat("open ", options.path)));
    db.reset(raw);
    clients = handles[1];
    referrals = handles[2];
    needs = handles[3];
    meta = handles[4];
    keys = handles[5];
    if (client_store == nullptr) {
      client_store = std::make_unique<CachedClientStore>(db.get(), clients, referrals,
                                                         options.cached_clients,
                                                         options.cached_referral_ids);
    } else {
      client_store->Rebind(db.get(), clients, referrals);
    }
    return absl::OkStatus();
  }
};

PartitionStore::PartitionStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PartitionStore::~PartitionStore() = default;

absl::StatusOr<std::unique_ptr<PartitionStore>> PartitionStore::Open(const StoreOptions& options) {
  if (options.resources == nullptr) {
    return absl::InvalidArgumentError("StoreOptions.resources is required");
  }
  if (options.sync && !options.wal) {
    return absl::InvalidArgumentError("StoreOptions.sync needs StoreOptions.wal");
  }
  std::error_code ec;
  fs::create_directories(options.path, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("create ", options.path, ": ", ec.message()));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  SIGNPOST_RETURN_IF_ERROR(impl->OpenDb());

  Offset applied{-1};
  std::string value;
  rocksdb::Status s = impl->db->Get({}, impl->meta, kSchemaKey, &value);
  if (s.ok()) {
    if (value != kSchemaVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat(options.path, ": state schema version ", value, " is not ", kSchemaVersion));
    }
    impl->schema_written = true;
  } else if (!s.IsNotFound()) {
    return ToStatus(s, "read schema version");
  }
  s = impl->db->Get({}, impl->meta, kAppliedKey, &value);
  if (s.ok()) {
    applied = Offset(static_cast<std::int64_t>(DecodeU64(value)));
  } else if (!s.IsNotFound()) {
    return ToStatus(s, "read applied offset");
  }
  auto store = std::unique_ptr<PartitionStore>(new PartitionStore(std::move(impl)));
  store->applied_ = applied;
  return store;
}

router::ClientStore& PartitionStore::Clients() { return *impl_->client_store; }

void PartitionStore::DiscardUncommitted() {
  static_cast<void>(FinishWrite());  // a failed write clears the cache itself
  impl_->client_store->Discard();
}

void PartitionStore::Prefetch(std::vector<std::string_view>& client_refs,
                              std::vector<std::string_view>& referral_ids) {
  impl_->client_store->Prefetch(client_refs, referral_ids);
}

absl::Status PartitionStore::ReadStatus() const { return impl_->client_store->read_status(); }

absl::StatusOr<std::optional<v1::RouterSnapshot>> PartitionStore::LoadRouterState() {
  SIGNPOST_RETURN_IF_ERROR(FinishWrite());
  std::string value;
  rocksdb::Status s = impl_->db->Get({}, impl_->meta, kHeaderKey, &value);
  if (s.IsNotFound()) {
    return std::nullopt;
  }
  SIGNPOST_RETURN_IF_ERROR(ToStatus(s, "read router header"));
  v1::RouterSnapshot snapshot;
  if (!snapshot.ParseFromString(value)) {
    return absl::DataLossError("router header does not parse");
  }
  SIGNPOST_RETURN_IF_ERROR(
      ToStatus(impl_->db->Get({}, impl_->meta, kRulesKey, snapshot.mutable_rules_yaml()),
               "read rules"));
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->needs));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!snapshot.add_needs()->ParseFromArray(it->value().data(),
                                              static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("need ", DecodeU64(it->key()), " does not parse"));
    }
  }
  SIGNPOST_RETURN_IF_ERROR(ToStatus(it->status(), "read needs"));
  return snapshot;
}

absl::Status PartitionStore::Commit(router::RouterChanges* changes, Offset applied) {
  // Deferred: the write runs on this thread, inside FinishWrite.
  SIGNPOST_RETURN_IF_ERROR(StartWrite(changes, applied, std::launch::deferred));
  return FinishWrite();
}

absl::Status PartitionStore::CommitAsync(router::RouterChanges* changes, Offset applied) {
  return StartWrite(changes, applied, std::launch::async);
}

absl::Status PartitionStore::StartWrite(router::RouterChanges* changes, Offset applied,
                                        std::launch policy) {
  SIGNPOST_RETURN_IF_ERROR(FinishWrite());
  Impl& impl = *impl_;
  if (!impl.client_store->read_status().ok()) {
    absl::Status failed = impl.client_store->read_status();
    impl.client_store->Discard();
    return failed;
  }
  rocksdb::WriteBatch& batch = impl.batch;
  batch.Clear();
  impl.erased_in_batch.clear();
  impl.upserts.clear();
  impl.upsert_bytes.Clear();
  impl.client_store->Stage();
  if (changes != nullptr) {
    v1::RouterSnapshot header = changes->header;
    header.clear_rules_yaml();
    header.clear_needs();
    batch.Put(impl.meta, kHeaderKey, header.SerializeAsString());
    if (changes->rules_changed) {
      batch.Put(impl.meta, kRulesKey, changes->header.rules_yaml());
    }
    impl.upserts.swap(changes->upserts);
    std::swap(impl.upsert_bytes, changes->upsert_bytes);
    for (std::uint64_t id : changes->erased) {
      batch.Delete(impl.needs, EncodeU64(id));
    }
  }
  if (!impl.schema_written) {
    batch.Put(impl.meta, kSchemaKey, kSchemaVersion);
  }
  batch.Put(impl.meta, kAppliedKey, EncodeU64(static_cast<std::uint64_t>(applied.Value())));
  impl.write_applied = applied;
  // The rest of the batch is serialized by the write itself, on the writer thread while the
  // caller goes on routing: the staged records until `read` is set (a record changed before
  // then waits for it; see Staging), then RocksDB's write of copies of them all.
  std::promise<void> read;
  std::future<void> read_done = read.get_future();
  auto write = [&impl, read = std::move(read)]() mutable {
    impl.client_store->WriteStaged(impl.batch, impl.erased_in_batch);
    for (const std::string& client : impl.erased_in_batch) {
      impl.batch.Delete(impl.keys, client);  // crypto-shredding: the payload key goes too
    }
    const std::string_view bytes = impl.upsert_bytes.view();
    for (const router::RouterChanges::Upsert& need : impl.upserts) {
      impl.batch.Put(impl.needs, EncodeU64(need.id),
                     rocksdb::Slice(bytes.data() + need.begin, need.end - need.begin));
    }
    read.set_value();
    rocksdb::Status written = impl.db->Write(impl.StateWrite(), &impl.batch);
    return written.ok() ? impl.MaybeFlush() : written;
  };
  if (policy == std::launch::async) {
    impl.client_store->Reading(std::move(read_done));
    impl.write = impl.Post(std::packaged_task<rocksdb::Status()>(std::move(write)));
  } else {
    impl.write = std::async(std::launch::deferred, std::move(write));
  }
  return absl::OkStatus();
}

absl::Status PartitionStore::FinishWrite() {
  Impl& impl = *impl_;
  if (!impl.write.valid()) {
    return absl::OkStatus();
  }
  const absl::Status written = ToStatus(impl.write.get(), "commit state");
  impl.client_store->WriteOver();
  if (!written.ok()) {
    // Whether any of the batch is stored is unknown: every cached record is read again.
    impl.client_store->Clear();
    return written;
  }
  impl.client_store->Committed();
  impl.schema_written = true;
  impl.erased_since_purge.insert(impl.erased_since_purge.end(), impl.erased_in_batch.begin(),
                                 impl.erased_in_batch.end());
  applied_ = impl.write_applied;
  return absl::OkStatus();
}

absl::StatusOr<v1::SealedPayload> PartitionStore::Seal(std::string_view client_ref,
                                                      std::string_view plaintext) {
  SIGNPOST_RETURN_IF_ERROR(FinishWrite());
  if (!SodiumReady()) {
    return absl::InternalError("libsodium failed to initialise");
  }
  std::string key;
  rocksdb::Status s = impl_->db->Get({}, impl_->keys, AsSlice(client_ref), &key);
  if (s.IsNotFound()) {
    key.resize(crypto_secretbox_KEYBYTES);
    crypto_secretbox_keygen(reinterpret_cast<unsigned char*>(key.data()));
    rocksdb::WriteOptions write_options;
    write_options.sync = impl_->options.sync;
    SIGNPOST_RETURN_IF_ERROR(
        ToStatus(impl_->db->Put(write_options, impl_->keys, AsSlice(client_ref), key),
                 "store payload key"));
  } else {
    SIGNPOST_RETURN_IF_ERROR(ToStatus(s, "read payload key"));
  }
  std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size(), '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(bytes, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(bytes + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                        bytes, reinterpret_cast<const unsigned char*>(key.data()));
  sodium_memzero(key.data(), key.size());
  v1::SealedPayload sealed;
  sealed.set_ciphertext(std::move(out));
  sealed.set_key_version(1);
  return sealed;
}

absl::StatusOr<std::string> PartitionStore::Unseal(std::string_view client_ref,
                                                   const v1::SealedPayload& sealed) {
  SIGNPOST_RETURN_IF_ERROR(FinishWrite());
  if (!SodiumReady()) {
    return absl::InternalError("libsodium failed to initialise");
  }
  std::string key;
  rocksdb::Status s = impl_->db->Get({}, impl_->keys, AsSlice(client_ref), &key);
  if (s.IsNotFound()) {
    return absl::NotFoundError("the client's payload key is gone (erased)");
  }
  SIGNPOST_RETURN_IF_ERROR(ToStatus(s, "read payload key"));
  const std::string& c = sealed.ciphertext();
  if (c.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
    return absl::DataLossError("sealed payload too short");
  }
  std::string plain(c.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  const auto* bytes = reinterpret_cast<const unsigned char*>(c.data());
  const int rc = crypto_secretbox_open_easy(
      reinterpret_cast<unsigned char*>(plain.data()), bytes + crypto_secretbox_NONCEBYTES,
      c.size() - crypto_secretbox_NONCEBYTES, bytes,
      reinterpret_cast<const unsigned char*>(key.data()));
  sodium_memzero(key.data(), key.size());
  if (rc != 0) {
    return absl::DataLossError("sealed payload does not open with the client's key");
  }
  return plain;
}

absl::Status PartitionStore::PurgeErased() {
  SIGNPOST_RETURN_IF_ERROR(FinishWrite());
  Impl& impl = *impl_;
  if (impl.erased_since_purge.empty()) {
    return absl::OkStatus();
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  SIGNPOST_RETURN_IF_ERROR(ToStatus(impl.db->Flush(flush, impl.handles), "flush"));
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* cf : impl.handles) {
    SIGNPOST_RETURN_IF_ERROR(
        ToStatus(impl.db->CompactRange(compact, cf, nullptr, nullptr), "compact"));
  }
  // The MANIFEST still lists the key ranges of the files compaction removed; reopening writes a
  // fresh one that describes only the live files, and deletes the old one.
  impl.CloseDb();
  SIGNPOST_RETURN_IF_ERROR(impl.OpenDb());
  impl.erased_since_purge.clear();
  return absl::OkStatus();
}

absl::StatusOr<RetentionStats> PartitionStore::SweepRetention(std::int64_t now_ms,
                                                              std::int64_t keep_ms) {
  SIGNPOST_RETURN_IF_ERROR(FinishWrite());
  Impl& impl = *impl_;
  const std::int64_t cutoff = now_ms - keep_ms;
  RetentionStats stats;
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator({}, impl.clients));
  v1::ClientRecord record;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++stats.clients_scanned;
    if (!record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("client record does not parse");
    }
    auto* history = record.mutable_history();
    const int before = history->size();
    history->erase(std::remove_if(history->begin(), history->end(),
                                  [&](const v1::ClientHistoryEntry& e) { return e.at_ms() < cutoff; }),
                   history->end());
    if (history->size() != before) {
      stats.entries_dropped += static_cast<std::uint64_t>(before - history->size());
      batch.Put(impl.clients, it->key(), record.SerializeAsString());
    }
    if (batch.Count() >= 1000) {
      SIGNPOST_RETURN_IF_ERROR(
          ToStatus(impl.db->Write(impl.StateWrite(), &batch), "retention sweep"));
      batch.Clear();
    }
  }
  SIGNPOST_RETURN_IF_ERROR(ToStatus(it->status(), "retention scan"));
  SIGNPOST_RETURN_IF_ERROR(
      ToStatus(impl.db->Write(impl.StateWrite(), &batch), "retention sweep"));
  impl.client_store->Clear();  // cached records may predate the sweep
  return stats;
}

absl::StatusOr<CheckpointInfo> PartitionStore::CreateCheckpoint(const std::string& root) {
  SIGNPOST_RETURN_IF_ERROR(FinishWrite());
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("create ", root, ": ", ec.message()));
  }
  char name[64];
  std::snprintf(name, sizeof name, "%s%020lld", kCheckpointPrefix,
                static_cast<long long>(applied_.Value()));
  const std::string path = (fs::path(root) / name).string();
  if (!fs::exists(path)) {
    rocksdb::Checkpoint* raw = nullptr;
    SIGNPOST_RETURN_IF_ERROR(ToStatus(rocksdb::Checkpoint::Create(impl_->db.get(), &raw),
                                      "checkpoint"));
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    SIGNPOST_RETURN_IF_ERROR(ToStatus(checkpoint->CreateCheckpoint(path), "checkpoint"));
  }
  return VerifyCheckpoint(path);
}

absl::StatusOr<std::optional<CheckpointInfo>> PartitionStore::MaybeCheckpoint(
    const std::string& root, std::int64_t now_ms, std::int64_t every_ms, std::size_t keep) {
  if (last_checkpoint_ms_ >= 0 && now_ms - last_checkpoint_ms_ < every_ms) {
    return std::nullopt;
  }
  SIGNPOST_ASSIGN_OR_RETURN(CheckpointInfo created, CreateCheckpoint(root));
  last_checkpoint_ms_ = now_ms;
  SIGNPOST_ASSIGN_OR_RETURN(std::vector<CheckpointInfo> all, ListCheckpoints(root));
  for (std::size_t i = 0; i + keep < all.size(); ++i) {
    std::error_code ec;
    fs::remove_all(all[i].path, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("prune ", all[i].path, ": ", ec.message()));
    }
  }
  return created;
}

absl::StatusOr<std::vector<CheckpointInfo>> PartitionStore::ListCheckpoints(
    const std::string& root) {
  std::vector<CheckpointInfo> out;
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    return out;
  }
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind(kCheckpointPrefix, 0) != 0) {
      continue;
    }
    CheckpointInfo info;
    info.path = entry.path().string();
    info.applied = Offset(std::atoll(name.c_str() + std::strlen(kCheckpointPrefix)));
    for (const auto& file : fs::directory_iterator(entry.path(), ec)) {
      info.bytes += file.is_regular_file() ? file.file_size() : 0;
    }
    out.push_back(std::move(info));
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("list ", root, ": ", ec.message()));
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.applied < b.applied; });
  return out;
}

absl::StatusOr<CheckpointInfo> PartitionStore::VerifyCheckpoint(const std::string& path) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : ColumnFamilyNames()) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions options;
  SIGNPOST_RETURN_IF_ERROR(ToStatus(
      rocksdb::DB::OpenForReadOnly(options, path, families, &handles, &raw),
      absl::StrCat("open checkpoint ", path)));
  std::unique_ptr<rocksdb::DB> db(raw);
  CheckpointInfo info;
  info.path = path;
  absl::Status status = ToStatus(db->VerifyChecksum(), absl::StrCat("verify ", path));
  std::string value;
  if (status.ok()) {
    rocksdb::Status s = db->Get({}, handles[4], kAppliedKey, &value);
    if (s.ok()) {
      info.applied = Offset(static_cast<std::int64_t>(DecodeU64(value)));
    } else if (!s.IsNotFound()) {
      status = ToStatus(s, "read checkpoint offset");
    }
  }
  for (auto* h : handles) {
    static_cast<void>(db->DestroyColumnFamilyHandle(h));
  }
  static_cast<void>(db->Close());
  SIGNPOST_RETURN_IF_ERROR(status);
  std::error_code ec;
  for (const auto& file : fs::directory_iterator(path, ec)) {
    info.bytes += file.is_regular_file() ? file.file_size() : 0;
  }
  return info;
}

absl::Status PartitionStore::RestoreCheckpoint(const std::string& checkpoint,
                                               const std::string& path) {
  SIGNPOST_ASSIGN_OR_RETURN(CheckpointInfo info, VerifyCheckpoint(checkpoint));
  static_cast<void>(info);
  std::error_code ec;
  fs::remove_all(path, ec);
  if (!ec) {
    fs::copy(checkpoint, path, fs::copy_options::recursive, ec);
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("restore ", checkpoint, " to ", path, ": ",
                                               ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::map<std::string, std::string>>>
PartitionStore::DumpForTest() const {
  if (impl_->write.valid()) {
    impl_->write.wait();
  }
  std::map<std::string, std::map<std::string, std::string>> out;
  for (std::size_t i = 0; i < impl_->handles.size(); ++i) {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->handles[i]));
    auto& cf = out[ColumnFamilyNames()[i]];
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      cf.emplace(it->key().ToString(), it->value().ToString());
    }
    SIGNPOST_RETURN_IF_ERROR(ToStatus(it->status(), "dump"));
  }
  return out;
}

std::size_t PartitionStore::CachedClientsForTest() const {
  if (impl_->write.valid()) {
    impl_->write.wait();  // its entries become evictable at the next FinishWrite
  }
  return impl_->client_store->size();
}

}  // namespace signpost::storage

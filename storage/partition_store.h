// SPDX-License-Identifier: Apache-2.0
// The state store of one Kafka partition of signpost.log.v1: a RocksDB database holding the
// client records, the referral index, the router's open needs and pods, the payload keys, and the
// offset all of it reflects. One WriteBatch per commit keeps state and offset in step, so after a
// crash the store is exactly the state after its stored offset.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "router/base/strong_id.h"
#include "router/client_store.h"
#include "router/router.h"
#include "signpost/v1/state.pb.h"

namespace rocksdb {
class Cache;
class DB;
class Env;
class WriteBufferManager;
}  // namespace rocksdb

namespace signpost::storage {

// The process-wide memory budget: one block cache and one write-buffer manager (charged to the
// cache) shared by every partition's database. Thread-safe.
class StoreResources {
 public:
  // `budget_bytes` bounds block cache + memtables together; memtables get `write_share` of it.
  static std::shared_ptr<StoreResources> Create(std::size_t budget_bytes,
                                                double write_share = 0.25);
  [[nodiscard]] std::size_t Budget() const { return budget_; }
  // Bytes held now: cached blocks, index and filter blocks, and memtables.
  [[nodiscard]] std::size_t MemoryUsage() const;
  // Runs compactions, in every store of the process, at the lowest CPU priority (nice 19):
  // the routing and Kafka threads get the cores first, compaction the time they leave. Flushes
  // keep their priority, so memtables still empty at the rate they fill.
  static void LowerCompactionPriority();

 private:
  friend class PartitionStore;
  std::size_t budget_ = 0;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
};

struct StoreOptions {
  std::string path;  // the partition's database directory; created if missing
  std::shared_ptr<StoreResources> resources;  // required
  // Client records, and referral ids, kept in memory in front of RocksDB (write-through).
  // A repeat client found here costs no RocksDB read; a new referral id is looked up in RocksDB
  // whatever the cache holds, so referral ids gain little from a larger cache.
  std::size_t cached_clients = 100'000;
  std::size_t cached_referral_ids = 100'000;
  // Whether commits go through RocksDB's write-ahead log. Default: false, as Kafka Streams'
  // stores do: the state on disk is then that of the last memtable flush, made atomically
  // across the column families together with its offset, and a crash costs a silent replay
  // of the log from that offset (the log keeps everything). Payload keys (Seal) always use the
  // WAL. Without it a bulk import's commits ran 16 % faster (store_bench BM_CommitImport).
  bool wal = false;
  // Without the WAL: the memtables are flushed once the last flush is this old, which bounds
  // the replay after a crash (0: after every commit, waiting for it). The write-buffer budget
  // flushes sooner under load. Closing the store flushes.
  std::chrono::milliseconds flush_interval{30'000};
  // fsync the WAL on every commit (needs `wal`). Default: false (the WAL is written, the OS
  // flushes it; a machine crash can lose the last commits, which replay from Kafka restores).
  bool sync = false;
  rocksdb::Env* env = nullptr;  // for fault-injection tests; default: the process default
};

struct CheckpointInfo {
  std::string path;
  Offset applied{-1};
  std::uint64_t bytes = 0;
};

struct RetentionStats {
  std::uint64_t clients_scanned = 0;
  std::uint64_t entries_dropped = 0;
};

// Lifecycle: Open, then any number of Apply-and-Commit rounds on one thread, then destroy.
// Not thread-safe. Errors: kDataLoss (corruption), kResourceExhausted (disk full), kUnavailable
// or kInternal (I/O); after any error the store's stored offset and state are unchanged and the
// caller must stop processing (and reopen to continue).
class PartitionStore {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PartitionStore>> Open(
      const StoreOptions& options);
  ~PartitionStore();
  PartitionStore(const PartitionStore&) = delete;
  PartitionStore& operator=(const PartitionStore&) = delete;

  // The offset of the last log record the stored state includes (as of the last completed
  // write); -1 when empty.
  [[nodiscard]] Offset AppliedOffset() const { return applied_; }

  // Per-client state for the router: a bounded write-through cache in front of RocksDB.
  [[nodiscard]] router::ClientStore& Clients();

  // Reads the records of these clients and referral ids into the cache in one batched read
  // (RocksDB MultiGet), ahead of a chunk of log records that will look them up one by one.
  // Sorts and dedupes both vectors in place. Errors surface at the lookups, not here.
  void Prefetch(std::vector<std::string_view>& client_refs,
                std::vector<std::string_view>& referral_ids);

  // The router's hot state as of AppliedOffset(), or nullopt when nothing was stored yet.
  [[nodiscard]] absl::StatusOr<std::optional<v1::RouterSnapshot>> LoadRouterState();

  // Writes, in one atomic batch: every client and referral change since the last commit, the
  // router's change set (may be null), and `applied`. On error nothing is written and the
  // uncommitted client changes are dropped from the cache (reopen before continuing).
  // The need changes are taken from `changes` (it gets those of an earlier write in exchange, to
  // reuse their allocations: take the next changes into it with Router::TakeChanges).
  [[nodiscard]] absl::Status Commit(router::RouterChanges* changes, Offset applied);

  // Commit's batch, serialized and written on another thread while the caller goes on routing:
  // the batch holds the state as of this call, later changes do not leak into it (a client
  // record or referral changed before the writer has serialized it waits for that; reads do
  // not wait). Returns the result of the previous write (and waits for it first). The write
  // completes at the next CommitAsync, Commit or FinishWrite, or at any other call below that
  // reads or changes the database; AppliedOffset() moves then. Reads through Clients() go on
  // meanwhile, from the cache. Nothing else changes in meaning: the stored state may lag the
  // log, and restores replay.
  [[nodiscard]] absl::Status CommitAsync(router::RouterChanges* changes, Offset applied);
  // Waits for the write of the last CommitAsync and returns its result. After a failure every
  // cached record is dropped (it is read again from what was stored).
  [[nodiscard]] absl::Status FinishWrite();

  // Drops every client and referral change since the last commit (after an aborted transaction:
  // the router is then restored from LoadRouterState()).
  void DiscardUncommitted();

  // A read error seen by Clients() since the last commit (it returns "absent" meanwhile), so the
  // caller can abort the batch instead of committing decisions made without the data.
  [[nodiscard]] absl::Status ReadStatus() const;

  // Payloads sealed with the client's own key (libsodium secretbox). The key is created on
  // first use and written at once; erasing the client destroys it (crypto-shredding).
  [[nodiscard]] absl::StatusOr<v1::SealedPayload> Seal(std::string_view client_ref,
                                                       std::string_view plaintext);
  // kNotFound when the client's key is gone (erased); kDataLoss when the payload is forged.
  [[nodiscard]] absl::StatusOr<std::string> Unseal(std::string_view client_ref,
                                                   const v1::SealedPayload& sealed);

  // Physically removes what erasures deleted: flushes, compacts, and reopens the database (which
  // rewrites the MANIFEST), so no file of it still holds their bytes. Call between batches: the
  // client cache starts empty afterwards.
  [[nodiscard]] absl::Status PurgeErased();

  // Drops closed history entries older than `now_ms - keep_ms` from every client record;
  // counts (referrals, contacts, duplicates) stay.
  [[nodiscard]] absl::StatusOr<RetentionStats> SweepRetention(std::int64_t now_ms,
                                                              std::int64_t keep_ms);

  // A consistent copy of the database under `root` (named by applied offset); cheap (hard links).
  [[nodiscard]] absl::StatusOr<CheckpointInfo> CreateCheckpoint(const std::string& root);
  // The schedule: creates a checkpoint when the newest under `root` is at least `every_ms` old
  // by `now_ms` (the caller's clock: log time or wall time) or there is none, then keeps only
  // the newest `keep`. Returns the checkpoint created, or nullopt when none was due.
  [[nodiscard]] absl::StatusOr<std::optional<CheckpointInfo>> MaybeCheckpoint(
      const std::string& root, std::int64_t now_ms, std::int64_t every_ms, std::size_t keep);
  // Checkpoints under `root`, oldest first.
  [[nodiscard]] static absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints(
      const std::string& root);
  // Opens the checkpoint read-only and verifies every block checksum.
  [[nodiscard]] static absl::StatusOr<CheckpointInfo> VerifyCheckpoint(const std::string& path);
  // Replaces the database at `path` (which must not be open) by a copy of `checkpoint`.
  [[nodiscard]] static absl::Status RestoreCheckpoint(const std::string& checkpoint,
                                                      const std::string& path);

  // Every key and value, by column family name, for tests and diagnostics.
  [[nodiscard]] absl::StatusOr<std::map<std::string, std::map<std::string, std::string>>>
  DumpForTest() const;

  [[nodiscard]] std::size_t CachedClientsForTest() const;

 private:
  // Stages the batch and starts its write (std::launch::async: on another thread;
  // std::launch::deferred: in the FinishWrite that collects it).
  absl::Status StartWrite(router::RouterChanges* changes, Offset applied,
                          std::launch policy);
  class Impl;
  explicit PartitionStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  Offset applied_{-1};
  std::int64_t last_checkpoint_ms_ = -1;
};

}  // namespace signpost::storage

// SPDX-License-Identifier: Apache-2.0
// The process the crash test kills: opens the partition store at argv[1], restores the router
// from it, and applies the seeded event stream (argv[2] seed, argv[3] length) onward from the
// stored offset in batches of argv[4] events, committing state and offset together after each:
// through a synced WAL (argv[5] "wal") or, as the router does, without it ("flush").
// Prints each stored offset on stdout as it commits, so the crash test can kill it after a
// number of commits rather than after a time a slow or busy machine spends starting up.
#include <chrono>
#include <cstdlib>
#include <string_view>
#include <iostream>

#include "tests/testing/random_events.h"
#include "tests/testing/store_driver.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: storage-crash-child <path> <seed> <length> <batch> wal|flush\n";
    return 2;
  }
  using namespace signpost;
  const auto stream = testing::RandomStream(std::strtoull(argv[2], nullptr, 10), std::atoi(argv[3]));
  storage::StoreOptions options;
  options.path = argv[1];
  options.resources = storage::StoreResources::Create(32 << 20);
  options.cached_clients = 64;  // small, so reads go to RocksDB as well as the cache
  if (std::string_view(argv[5]) == "wal") {
    options.wal = true;
    options.sync = true;  // fsync per commit: slower, and kills land mid-write more often
  } else {
    // The default: no WAL. Flushing after every commit makes progress between kills, and the
    // kills land in flushes as well as in writes.
    options.flush_interval = std::chrono::milliseconds(0);
  }
  auto store = storage::PartitionStore::Open(options);
  if (!store.ok()) {
    std::cerr << store.status() << "\n";
    return 1;
  }
  auto router = testing::OpenRouter(**store, testing::kRandomRulesA);
  if (!router.ok()) {
    std::cerr << router.status() << "\n";
    return 1;
  }
  const absl::Status driven =
      testing::Drive(**router, **store, stream, stream.size(), std::strtoull(argv[4], nullptr, 10),
                     [](std::int64_t offset) { std::cout << offset << std::endl; });
  if (!driven.ok()) {
    std::cerr << driven << "\n";
    return 1;
  }
  return 0;
}

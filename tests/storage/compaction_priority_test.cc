// SPDX-License-Identifier: Apache-2.0
// StoreResources::LowerCompactionPriority on real RocksDB: once it is called, the threads that
// run compactions do so at nice 19, and flushes keep theirs. A binary of its own: the
// setting is process-wide (RocksDB's default Env) and lasts as long as the process.
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/partition_store.h"
#include "tests/testing/events.h"
#include "tests/testing/random_events.h"
#include "tests/testing/store_driver.h"

namespace signpost::storage {
namespace {

namespace fs = std::filesystem;

struct Thread {
  std::string name;
  int nice = 0;
};

// This process's threads, by name, with their nice values (/proc/self/task/<tid>/stat, field
// 19, counted after the name's closing parenthesis since a name may hold spaces).
std::vector<Thread> Threads() {
  std::vector<Thread> threads;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const std::size_t open = line.find('(');
    const std::size_t close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) {
      continue;
    }
    Thread t{line.substr(open + 1, close - open - 1), 0};
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    for (int i = 3; i <= 19 && rest >> field; ++i) {  // fields 3 (state) to 19 (nice)
      if (i == 19) {
        t.nice = std::stoi(field);
      }
    }
    threads.push_back(t);
  }
  return threads;
}

TEST(CompactionPriorityTest, CompactionsRunAtNiceNineteenAndFlushesKeepTheirPriority) {
  const int base_nice = getpriority(PRIO_PROCESS, 0);  // this thread's: the test may run niced
  char pattern[] = "/tmp/signpost-priority-XXXXXX";
  const std::string dir = mkdtemp(pattern);
  StoreResources::LowerCompactionPriority();
  {
    StoreOptions options;
    options.path = dir + "/p0";
    options.resources = StoreResources::Create(64 << 20);
    auto store = PartitionStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    auto router = testing::OpenRouter(**store, testing::kRandomRulesA);
    ASSERT_TRUE(router.ok()) << router.status();
    testing::EventFactory events;
    std::vector<v1::Envelope> stream;
    for (int i = 0; i < 200; ++i) {
      stream.push_back(events.Referral("ref-" + std::to_string(i),
                                       "client-" + std::to_string(i % 50), {"food"}, "BA2"));
    }
    stream.push_back(events.Erase("client-0"));
    ASSERT_TRUE(testing::Drive(**router, **store, stream, stream.size(), 20).ok());
    // After an erasure: flushes the memtables (a flush thread) and compacts every file (a
    // compaction thread).
    ASSERT_TRUE((*store)->PurgeErased().ok());

    // A pool thread lowers itself when it next takes a job, so the compaction pool's threads
    // that ran none since the call may still be at 0; the one that compacted is at 19.
    int lowered_compaction_threads = 0;
    int flush_threads = 0;
    for (const Thread& t : Threads()) {
      if (t.name.rfind("rocksdb:low", 0) == 0) {
        lowered_compaction_threads += t.nice == 19 ? 1 : 0;
      } else if (t.name.rfind("rocksdb:high", 0) == 0) {
        ++flush_threads;
        EXPECT_EQ(t.nice, base_nice) << t.name;
      }
    }
    EXPECT_GE(lowered_compaction_threads, 1);
    EXPECT_GE(flush_threads, 1);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace signpost::storage

// SPDX-License-Identifier: Apache-2.0
// Kill -9 at random moments: a child process applies event batches to a real RocksDB partition
// store and is SIGKILLed mid-flight, again and again. After every kill the store reopens, and its
// offset and state must equal a clean in-memory replay of the log up to that offset.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/random_events.h"
#include "tests/testing/store_driver.h"

namespace signpost::storage {
namespace {

constexpr int kKills = 60;
constexpr int kLength = 20000;

struct Child {
  pid_t pid = -1;
  int commits = -1;  // read end of the pipe its stdout goes to: a line per commit
};

Child Spawn(const std::string& path, std::uint64_t seed, int batch, const char* mode) {
  int commits[2];
  if (pipe(commits) != 0) {
    return {};
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(commits[1], STDOUT_FILENO);
    close(commits[0]);
    close(commits[1]);
    const std::string seed_arg = std::to_string(seed);
    const std::string length_arg = std::to_string(kLength);
    const std::string batch_arg = std::to_string(batch);
    execl(SIGNPOST_CRASH_CHILD, SIGNPOST_CRASH_CHILD, path.c_str(), seed_arg.c_str(),
          length_arg.c_str(), batch_arg.c_str(), mode, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(commits[1]);
  return {pid, commits[0]};
}

// Waits until the child has reported `n` commits, or has exited (end of its output).
void AwaitCommits(const Child& child, int n) {
  char c;
  while (n > 0) {
    pollfd readable{child.commits, POLLIN, 0};
    if (poll(&readable, 1, 60'000) <= 0 || read(child.commits, &c, 1) != 1) {
      return;
    }
    n -= c == '\n' ? 1 : 0;
  }
}

// "wal": commits through a synced WAL. "flush": the default, no WAL, each commit flushed (one
// atomic flush of every column family), so that kills land in flushes too.
class StorageCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(StorageCrashTest, StoredOffsetAndStateMatchAReplayAfterEveryKill) {
  const std::uint64_t seed = static_cast<std::uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count() % 100000);
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  char pattern[] = "/tmp/signpost-crash-XXXXXX";
  const std::string dir = mkdtemp(pattern);
  const std::string path = dir + "/p0";
  const auto stream = testing::RandomStream(seed, kLength);

  std::int64_t last = -1;
  int killed_mid_run = 0;
  for (int round = 0; round < kKills; ++round) {
    const Child child = Spawn(path, seed, 1 + static_cast<int>(rng() % 40), GetParam());
    ASSERT_GT(child.pid, 0);
    // Killed after a random number of commits (none, in some rounds: during its start-up)
    // and a few milliseconds more, so the kill lands anywhere in a batch or its write, on a
    // machine of any speed.
    AwaitCommits(child, static_cast<int>(rng() % 16));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
    kill(child.pid, SIGKILL);
    close(child.commits);
    int status = 0;
    ASSERT_EQ(waitpid(child.pid, &status, 0), child.pid);
    if (WIFSIGNALED(status)) {
      ++killed_mid_run;
    } else {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "the child failed on its own";
    }

    StoreOptions options;
    options.path = path;
    options.resources = StoreResources::Create(32 << 20);
    auto store = PartitionStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    const std::int64_t applied = (*store)->AppliedOffset().Value();
    SCOPED_TRACE(::testing::Message() << "round " << round << " applied " << applied);
    ASSERT_GE(applied, last) << "the stored offset went backwards";
    last = applied;
    if (applied < 0) {
      continue;
    }
    auto stored = testing::Stored(**store);
    ASSERT_TRUE(stored.ok()) << stored.status();
    const testing::Fingerprints replay =
        testing::Replay(stream, static_cast<std::size_t>(applied + 1), testing::kRandomRulesA);
    ASSERT_EQ(stored->router, replay.router);
    ASSERT_EQ(stored->clients, replay.clients);
  }
  std::cout << killed_mid_run << " of " << kKills << " rounds ended in SIGKILL; last stored offset "
            << last << " of " << kLength << "\n";
  EXPECT_GE(killed_mid_run, 50) << "most rounds must end in a SIGKILL, not a finished run";
  EXPECT_GT(last, 0);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Modes, StorageCrashTest, ::testing::Values("wal", "flush"));

}  // namespace
}  // namespace signpost::storage

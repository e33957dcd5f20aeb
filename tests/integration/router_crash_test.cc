// SPDX-License-Identifier: Apache-2.0
// Crash torture: while 200,000 referrals and pod answers flow into the intake topic,
// signpost-router is killed with SIGKILL at random moments, again and again, then restarted. At the end the
// committed decisions must be exactly those of one clean run over the committed log (no loss, no
// duplicate), that run never puts a pod over capacity, and each partition's stored state equals
// the clean run's state.
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "router/router.h"
#include "storage/partition_store.h"
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/router_harness.h"

namespace signpost::testing {
namespace {

using namespace std::chrono_literals;

// 200,000 records flow in at kRate per second (about 50 s) while the router is killed.
constexpr int kReferrals = 170'000;
constexpr int kAnswers = 30'000;
constexpr int kRate = 4'000;
constexpr int kKills = 20;

TEST(RouterCrashTest, KilledAndRestartedItCommitsExactlyWhatOneCleanRunWould) {
  auto base = TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const RouterTopics topics = RouterTopics::Create(*base, 2);
  const std::uint64_t seed = static_cast<std::uint64_t>(getpid());
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  std::mt19937_64 feed_rng(seed + 1);
  std::atomic<bool> feeding{true};
  std::thread feeder([&] {
    PreloadIntake(*base, topics.intake, kReferrals, kAnswers, feed_rng, kRate);
    feeding = false;
  });
  char pattern[] = "/tmp/signpost-crash-XXXXXX";
  const std::string data_dir = mkdtemp(pattern);
  const std::string bootstrap = base->at("bootstrap.servers");
  auto spawn = [&] {
    return SpawnRouter(SIGNPOST_ROUTER_BIN, SIGNPOST_EXAMPLE_RULES, bootstrap, topics, "crash-1",
                       data_dir);
  };

  int killed_while_feeding = 0;
  for (int round = 0; round < kKills; ++round) {
    const pid_t pid = spawn();
    if (pid <= 0) {
      feeder.join();
      FAIL() << "cannot start the router";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(800 + rng() % 2500));
    kill(pid, SIGKILL);
    killed_while_feeding += feeding ? 1 : 0;
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status)) {
      feeder.join();
      FAIL() << "the router exited by itself in round " << round << " with "
             << WEXITSTATUS(status);
    }
  }
  feeder.join();
  std::cout << killed_while_feeding << " of " << kKills << " kills while records flowed in\n";
  EXPECT_GE(killed_while_feeding, kKills / 2) << "most kills land while records flow";
  // A last run to the end of the input, then a clean stop.
  const pid_t last = spawn();
  const auto deadline = std::chrono::steady_clock::now() + 600s;
  while (std::chrono::steady_clock::now() < deadline &&
         DecidedReferrals(ReadCommitted(*base, topics.decisions)) < kReferrals) {
    std::this_thread::sleep_for(2s);
  }
  std::this_thread::sleep_for(3s);  // let the answers behind them through too
  kill(last, SIGTERM);
  int status = 0;
  waitpid(last, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "clean stop";
  ASSERT_EQ(DecidedReferrals(ReadCommitted(*base, topics.decisions)),
            static_cast<std::size_t>(kReferrals));

  // Where each partition's stored state stands: everything the router consumed. (The log may
  // hold a few later records, the ticks of its last transaction, that it never read.)
  std::map<int, std::int64_t> applied;
  const std::map<std::string, std::string> stored = StoredStates(data_dir, topics, applied);
  ASSERT_FALSE(stored.empty());
  const ReplayCheck check = CheckAgainstReplay(*base, topics, SIGNPOST_EXAMPLE_RULES, &applied);
  std::cout << kKills << " kills; " << check.committed << " committed decisions, "
            << check.replayed << " in a clean replay\n";
  EXPECT_TRUE(check.duplicates.empty()) << check.duplicates.size() << " duplicates";
  EXPECT_EQ(check.over_capacity, "");
  EXPECT_TRUE(check.equal) << check.committed << " committed vs " << check.replayed;
  EXPECT_EQ(stored, check.states) << "stored state differs from the clean run's";
  std::filesystem::remove_all(data_dir);
}

}  // namespace
}  // namespace signpost::testing

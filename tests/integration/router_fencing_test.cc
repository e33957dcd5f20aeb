// SPDX-License-Identifier: Apache-2.0
// Zombie fencing: an instance frozen (SIGSTOP) in the middle of its work is replaced by a new one
// with the same instance id (so the same transactional id and static group membership) on
// another machine's disk. When the zombie wakes it is fenced: it exits non-zero, commits nothing,
// and its local state never runs ahead of what the group committed. The committed decisions are
// exactly those of one clean run.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/partition_store.h"
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/router_harness.h"

namespace signpost::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kReferrals = 20'000;

TEST(RouterFencingTest, AFrozenInstanceIsFencedAndCommitsNothing) {
  auto base = TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const RouterTopics topics = RouterTopics::Create(*base, 2);
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  PreloadIntake(*base, topics.intake, kReferrals, 5'000, rng);
  char pattern[] = "/tmp/signpost-fencing-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string bootstrap = base->at("bootstrap.servers");

  const pid_t zombie = SpawnRouter(SIGNPOST_ROUTER_BIN, SIGNPOST_EXAMPLE_RULES, bootstrap, topics,
                                   "same", root + "/machine-1");
  std::this_thread::sleep_for(3s);
  kill(zombie, SIGSTOP);  // frozen, most likely inside a transaction
  const pid_t successor = SpawnRouter(SIGNPOST_ROUTER_BIN, SIGNPOST_EXAMPLE_RULES, bootstrap,
                                      topics, "same", root + "/machine-2");
  std::this_thread::sleep_for(4s);  // the successor fences it and takes over
  kill(zombie, SIGCONT);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  pid_t done = 0;
  while (done == 0 && std::chrono::steady_clock::now() < deadline) {
    done = waitpid(zombie, &status, WNOHANG);
    std::this_thread::sleep_for(100ms);
  }
  if (done == 0) {
    kill(zombie, SIGKILL);
    waitpid(zombie, &status, 0);
    ADD_FAILURE() << "the zombie kept running after it woke";
  } else {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0)
        << "a fenced instance must exit non-zero";
  }

  const auto finish = std::chrono::steady_clock::now() + 300s;
  while (std::chrono::steady_clock::now() < finish &&
         DecidedReferrals(ReadCommitted(*base, topics.decisions)) < kReferrals) {
    std::this_thread::sleep_for(2s);
  }
  std::this_thread::sleep_for(2s);
  kill(successor, SIGTERM);
  waitpid(successor, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  const std::map<int, std::int64_t> upto = LastCommitted(*base, topics, 2);
  ASSERT_EQ(upto.size(), 2u);
  // The zombie's state never got ahead of what the group committed.
  if (std::filesystem::exists(root + "/machine-1")) {
    std::map<int, std::int64_t> zombie_applied;
    static_cast<void>(StoredStates(root + "/machine-1", topics, zombie_applied));
    for (const auto& [partition, applied] : zombie_applied) {
      ASSERT_TRUE(upto.contains(partition));
      EXPECT_LE(applied, upto.at(partition)) << "partition " << partition;
    }
  }
  const ReplayCheck check = CheckAgainstReplay(*base, topics, SIGNPOST_EXAMPLE_RULES, &upto);
  std::cout << check.committed << " committed decisions, " << check.replayed
            << " in a clean replay\n";
  EXPECT_TRUE(check.duplicates.empty()) << check.duplicates.size() << " duplicates";
  EXPECT_TRUE(check.equal) << check.committed << " committed vs " << check.replayed;
  EXPECT_EQ(DecidedReferrals(ReadCommitted(*base, topics.decisions)),
            static_cast<std::size_t>(kReferrals));
  if (HasFailure()) {
    for (const char* machine : {"/machine-1.log", "/machine-2.log"}) {
      std::ifstream log(root + machine);
      std::stringstream text;
      text << log.rdbuf();
      const std::string t = text.str();
      std::cout << "---- " << machine << " (last 4000 bytes)\n"
                << t.substr(t.size() > 4000 ? t.size() - 4000 : 0) << "\n";
    }
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace signpost::testing

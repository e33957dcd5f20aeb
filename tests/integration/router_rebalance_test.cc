// SPDX-License-Identifier: Apache-2.0
// Three router instances in one group, joining, leaving cleanly and being killed while a
// pre-loaded stream flows: partitions move between them (cooperative-sticky, static membership),
// each new owner rebuilds the partition's state by replay, and the committed decisions are still
// exactly those of one clean run over the committed log.
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
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/router_harness.h"

namespace signpost::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kReferrals = 50'000;

TEST(RouterRebalanceTest, InstancesJoinLeaveAndDieWithoutLossOrDuplicate) {
  auto base = TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const RouterTopics topics = RouterTopics::Create(*base, 3);
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  PreloadIntake(*base, topics.intake, kReferrals, 10'000, rng);
  char pattern[] = "/tmp/signpost-rebalance-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string bootstrap = base->at("bootstrap.servers");
  auto spawn = [&](const std::string& name) {
    // Small transactions, so the stream is still flowing while members come and go.
    return SpawnRouter(SIGNPOST_ROUTER_BIN, SIGNPOST_EXAMPLE_RULES, bootstrap, topics, name,
                       root + "/" + name, {"batch.max_records=100"});
  };
  auto stop = [](pid_t pid, int signal) {
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };
  // The tail of an instance's log, for failure messages.
  auto log_of = [&](const std::string& name) {
    std::ifstream in(root + "/" + name + ".log");
    std::stringstream text;
    text << in.rdbuf();
    const std::string all = text.str();
    return all.substr(all.size() > 2000 ? all.size() - 2000 : 0);
  };

  const auto started = std::chrono::steady_clock::now();
  pid_t a = spawn("a");
  std::this_thread::sleep_for(1500ms);
  pid_t b = spawn("b");  // a gives up partitions to b
  std::this_thread::sleep_for(1500ms);
  pid_t c = spawn("c");
  std::this_thread::sleep_for(1500ms);
  int status = stop(b, SIGTERM);  // b leaves cleanly: revocation commits its batch
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "status " << status << "; b's log:\n" << log_of("b");
  std::this_thread::sleep_for(1000ms);
  stop(c, SIGKILL);  // c dies mid-batch; its static membership keeps its partitions for it ...
  c = spawn("c");    // ... and it comes back with its local state
  std::this_thread::sleep_for(1500ms);
  b = spawn("b");  // b returns and rebuilds whatever it is given
  std::this_thread::sleep_for(1500ms);
  stop(a, SIGKILL);
  a = spawn("a2");  // a new member, no local state at all

  const auto deadline = std::chrono::steady_clock::now() + 300s;
  while (std::chrono::steady_clock::now() < deadline &&
         DecidedReferrals(ReadCommitted(*base, topics.decisions)) < kReferrals) {
    std::this_thread::sleep_for(2s);
  }
  std::this_thread::sleep_for(3s);
  for (const auto& [pid, name] : {std::pair{a, "a2"}, std::pair{b, "b"}, std::pair{c, "c"}}) {
    status = stop(pid, SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "clean stop of " << name << ", status " << status << "; log:\n" << log_of(name);
  }
  std::cout << "membership changes over the first 9 s; all decided after "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()
            << " s\n";
  const std::size_t decided = DecidedReferrals(ReadCommitted(*base, topics.decisions));
  EXPECT_EQ(decided, static_cast<std::size_t>(kReferrals));
  // The log up to what the group committed (the last ticks written were never read).
  const std::map<int, std::int64_t> upto = LastCommitted(*base, topics, 3);
  ASSERT_EQ(upto.size(), 3u);
  const ReplayCheck check = CheckAgainstReplay(*base, topics, SIGNPOST_EXAMPLE_RULES, &upto);
  std::cout << check.committed << " committed decisions, " << check.replayed
            << " in a clean replay\n";
  EXPECT_TRUE(check.duplicates.empty()) << check.duplicates.size() << " duplicates";
  EXPECT_EQ(check.over_capacity, "");
  EXPECT_TRUE(check.equal) << check.committed << " committed vs " << check.replayed;
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace signpost::testing

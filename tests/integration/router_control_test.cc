// SPDX-License-Identifier: Apache-2.0
// Operators' control events reach a running router through the intake topic: `signpost pod`
// pauses a pod and changes its capacity, `signpost rules apply` replaces the rules (after checking
// them with the router's own loader: a bad file is refused and nothing is published), and
// `signpost erase` removes a client. Real broker, real signpost-router and signpost processes.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/control.h"
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/router_harness.h"

namespace signpost::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The pod's row of /v1/pods, or an empty object.
json PodRow(int port, const std::string& pod) {
  const std::string answer = HttpGet(port, "/v1/pods");
  if (answer.rfind("200 ", 0) != 0) return json::object();
  const json body = json::parse(answer.substr(4), nullptr, false);
  if (!body.is_array()) return json::object();
  for (const json& row : body) {
    if (row.is_object() && row.value("pod", "") == pod) return row;
  }
  return json::object();
}

// Polls `done` for up to a minute.
bool Eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return done();
}

// Runs the signpost CLI with `args`; its exit code.
int Cli(const std::string& args, const std::string& output) {
  const int status = std::system(
      absl::StrCat(SIGNPOST_CLI_BIN, " ", args, " >", output, " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(RouterControlTest, PodChangesRulesChangesAndErasuresReachTheRunningRouter) {
  auto base = TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const RouterTopics topics = RouterTopics::Create(*base, 1);
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  PreloadIntake(*base, topics.intake, 40, 0, rng);
  char pattern[] = "/tmp/signpost-control-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string bootstrap = base->at("bootstrap.servers");
  const int port = FreePort();
  const pid_t pid = SpawnRouter(SIGNPOST_ROUTER_BIN, SIGNPOST_EXAMPLE_RULES, bootstrap, topics,
                                "ctl-0", root + "/ctl-0",
                                {absl::StrCat("http.listen=127.0.0.1:", port)});
  struct KillOnExit {  // when an assertion ends the test early
    pid_t pid;
    ~KillOnExit() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } guard{pid};
  ASSERT_TRUE(Eventually([&] { return DecidedReferrals(ReadCommitted(*base, topics.decisions)) == 40; }));
  const std::string cli = absl::StrCat("-b ", bootstrap, " ");
  const std::string out = root + "/cli.txt";

  // A pod paused with a new capacity, through the command line.
  ASSERT_EQ(PodRow(port, "food-bath-foodbank").value("status", ""), "POD_STATUS_OPEN");
  ASSERT_EQ(Cli(cli + "pod food-bath-foodbank --status paused --capacity 7 --topic " +
                    topics.intake, out), 0) << ReadText(out);
  EXPECT_NE(ReadText(out).find("published ctl-pod-"), std::string::npos) << ReadText(out);
  EXPECT_TRUE(Eventually([&] {
    const json row = PodRow(port, "food-bath-foodbank");
    return row.value("status", "") == "POD_STATUS_PAUSED" && row.value("capacity", 0) == 7;
  })) << PodRow(port, "food-bath-foodbank");

  // A rules file the router's loader refuses is refused here, naming the line; nothing is sent.
  const std::string rules = ReadText(SIGNPOST_EXAMPLE_RULES);
  const std::string bad_path = root + "/bad.yaml";
  std::ofstream(bad_path) << absl::StrReplaceAll(rules, {{"capacity: 45", "capacity: lots"}});
  absl::StatusOr<v1::Envelope> bad = services::RulesChangeEvent(bad_path, "banes", 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(bad_path + ":"), std::string::npos) << bad.status();
  EXPECT_NE(bad.status().message().find("capacity"), std::string::npos) << bad.status();
  EXPECT_EQ(Cli(cli + "rules apply " + bad_path + " --topic " + topics.intake, out), 2);
  EXPECT_NE(ReadText(out).find("nothing was published"), std::string::npos) << ReadText(out);

  // New rules, through the library the command line uses: hub-triage's capacity 45 -> 46.
  const std::string good_path = root + "/good.yaml";
  std::ofstream(good_path) << absl::StrReplaceAll(rules, {{"capacity: 45", "capacity: 46"}});
  absl::StatusOr<v1::Envelope> change = services::RulesChangeEvent(good_path, "banes", 1);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->rules_changed().rules_yaml(), ReadText(good_path));
  ASSERT_TRUE(services::PublishControl(*base, topics.intake, *change).ok());
  EXPECT_TRUE(Eventually([&] { return PodRow(port, "hub-triage").value("capacity", 0) == 46; }))
      << PodRow(port, "hub-triage");

  // An erasure without a domain: the client's record goes.
  ASSERT_EQ(HttpGet(port, "/v1/clients/c3").substr(0, 3), "200");
  ASSERT_EQ(Cli(cli + "erase c3 --basis test --topic " + topics.intake, out), 0) << ReadText(out);
  EXPECT_TRUE(Eventually([&] { return HttpGet(port, "/v1/clients/c3").substr(0, 3) == "404"; }))
      << HttpGet(port, "/v1/clients/c3");
  // Nothing was dead-lettered on the way.
  EXPECT_TRUE(ReadCommitted(*base, topics.dlq).empty());

  if (HasFailure()) {
    std::cout << "---- router log\n" << ReadText(root + "/ctl-0.log").substr(0, 6000) << "\n";
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  guard.pid = 0;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace signpost::testing

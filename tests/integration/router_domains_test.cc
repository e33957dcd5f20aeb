// SPDX-License-Identifier: Apache-2.0
// Two routing domains in one deployment, sharing the log's one partition: referrals find their
// domain by outward code, answers by pod, an erasure reaches both; each domain decides over its
// own pods and records. Killed twice mid-stream, the router still commits exactly what one clean
// run per domain would, and its stored state per domain equals that run's.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/events.h"
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/router_harness.h"

namespace signpost::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kReferrals = 3000;

// Referrals over both domains of examples/multi-domain/router.yaml, by outward code.
std::vector<std::pair<std::string, std::string>> Referrals(EventFactory& events, int from,
                                                           int count) {
  static const char* kNeeds[] = {"food", "community-volunteer", "mental-wellbeing", "housing",
                                 "knitting"};
  static const char* kOutward[] = {"BA1", "SN14", "BA2", "SP1", "BS31", "BA12"};
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = from; i < from + count; ++i) {
    events.Advance(30'000);
    // Even referrals are banes's, odd ones wiltshire's; with 701 clients, each client has
    // referrals in both domains (a move between hubs).
    v1::Envelope e = events.Referral(absl::StrCat("r", i), absl::StrCat("c", i % 701),
                                     {kNeeds[i % 5]}, kOutward[i % 6]);
    e.clear_domain();
    out.emplace_back(e.referral_submitted().client_ref(), e.SerializeAsString());
  }
  return out;
}

TEST(RouterDomainsTest, TwoDomainsShareAPartitionAndEachDecidesOverItsOwnPods) {
  auto base = TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const RouterTopics topics = RouterTopics::Create(*base, 1);
  char pattern[] = "/tmp/signpost-domains-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string data_dir = root + "/state";
  const std::string source = SIGNPOST_SOURCE_DIR;
  const std::vector<std::string> domains = {
      "domains.banes.rules_file=" + source + "/examples/rules/banes.yaml",
      "domains.banes.prefixes=BA1,BA2,BA3,BS31,BS39,BS40",
      "domains.wiltshire.rules_file=" + source + "/examples/rules/wiltshire.yaml",
      "domains.wiltshire.prefixes=SN,SP,BA12,BA13,BA14,BA15"};
  const std::map<std::string, std::string> rules = {
      {"banes", source + "/examples/rules/banes.yaml"},
      {"wiltshire", source + "/examples/rules/wiltshire.yaml"}};
  const int port = FreePort();
  std::vector<std::string> flags = domains;
  flags.push_back(absl::StrCat("http.listen=127.0.0.1:", port));
  auto spawn = [&] {
    return SpawnRouter(SIGNPOST_ROUTER_BIN, "", base->at("bootstrap.servers"), topics, "d-1",
                       data_dir, flags);
  };

  // The referrals arrive in three parts; the router is killed after each of the first two.
  EventFactory events;
  pid_t pid = spawn();
  for (int part = 0; part < 3; ++part) {
    ProduceAll(*base, topics.intake, Referrals(events, part * 1000, 1000));
    if (part < 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500 + 700 * part));
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
      ASSERT_TRUE(WIFSIGNALED(status)) << "the router exited by itself";
      pid = spawn();
    }
  }
  auto await = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline && !done()) {
      std::this_thread::sleep_for(500ms);
    }
    return done();
  };
  ASSERT_TRUE(await([&] {
    return DecidedReferrals(ReadCommitted(*base, topics.decisions)) >= kReferrals;
  })) << DecidedReferrals(ReadCommitted(*base, topics.decisions)) << " of " << kReferrals;

  // Answers name no domain: each finds its domain by its pod. Accept and complete the first 200
  // placements; then erase a client with referrals in both domains, and send a referral for a
  // domain not routed here.
  std::vector<std::pair<std::string, std::string>> answers;
  v1::Envelope d;
  std::set<std::string> routed_domains;
  for (const LogRecord& r : ReadCommitted(*base, topics.decisions)) {
    ASSERT_TRUE(d.ParseFromString(r.value));
    if (!d.has_routed()) {
      continue;
    }
    // Every placement is with a pod of the referral's own domain.
    const bool wilts_pod = d.routed().pod_id().rfind("wilts-", 0) == 0;
    EXPECT_EQ(d.domain(), wilts_pod ? "wiltshire" : "banes") << d.routed().pod_id();
    routed_domains.insert(d.domain());
    if (answers.size() < 400) {
      for (v1::Envelope a : {events.Accept(d.routed().referral_id(), d.routed().need_code(),
                                           d.routed().pod_id()),
                             events.Complete(d.routed().referral_id(), d.routed().need_code(),
                                             d.routed().pod_id())}) {
        a.clear_domain();
        answers.emplace_back(d.routed().referral_id(), a.SerializeAsString());
      }
    }
  }
  EXPECT_EQ(routed_domains, (std::set<std::string>{"banes", "wiltshire"}));
  v1::Envelope erase = events.Erase("c7");  // r7 (SN14, wiltshire), r708 (BA1, banes), ...
  erase.clear_domain();
  answers.emplace_back("c7", erase.SerializeAsString());
  v1::Envelope elsewhere = events.Referral("r-x", "c-x", {"food"}, "BA1");
  elsewhere.set_domain("cornwall");
  answers.emplace_back("c-x", elsewhere.SerializeAsString());
  ProduceAll(*base, topics.intake, answers);

  // c7's records, in both domains, are erased: one client_erased decision per domain.
  ASSERT_TRUE(await([&] {
    std::set<std::string> erased_in;
    for (const LogRecord& r : ReadCommitted(*base, topics.decisions)) {
      d.ParseFromString(r.value);
      if (d.has_client_erased()) {
        erased_in.insert(d.domain());
      }
    }
    return erased_in == std::set<std::string>{"banes", "wiltshire"};
  })) << "the erasure reached both domains";
  ASSERT_TRUE(await([&] {
    for (const LogRecord& r : ReadCommitted(*base, topics.dlq)) {
      if (r.headers.contains("signpost.dlq.reason") &&
          r.headers.at("signpost.dlq.reason") == "unknown_domain") {
        return true;
      }
    }
    return false;
  })) << "a referral for a domain not routed here is dead-lettered";
  std::this_thread::sleep_for(2s);  // the answers behind them
  // Queues are reported per domain: the same need code in each.
  const std::string metrics = HttpGet(port, "/metrics");
  for (const char* series : {"signpost_need_waiting{domain=\"banes\",need=\"food\"}",
                             "signpost_need_waiting{domain=\"wiltshire\",need=\"food\"}",
                             "signpost_escalations_total{domain=\"wiltshire\",need=\"housing\"}"}) {
    EXPECT_NE(metrics.find(series), std::string::npos) << series;
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "clean stop";

  std::map<int, std::int64_t> applied;
  const std::map<std::string, std::string> stored = StoredStates(data_dir, topics, applied);
  const ReplayCheck check = CheckAgainstReplay(*base, topics, rules, &applied);
  std::cout << check.committed << " committed decisions, " << check.replayed
            << " in a clean replay; stored domains:";
  for (const auto& [key, state] : stored) {
    std::cout << " " << key;
  }
  std::cout << "\n";
  EXPECT_TRUE(check.duplicates.empty()) << check.duplicates.size() << " duplicates";
  EXPECT_EQ(check.over_capacity, "");
  EXPECT_TRUE(check.equal) << check.committed << " committed vs " << check.replayed;
  EXPECT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored, check.states) << "stored state differs from the clean run's";
  if (HasFailure()) {
    std::ifstream log(data_dir + ".log");
    std::stringstream text;
    text << log.rdbuf();
    std::cout << text.str().substr(0, 8000) << "\n";
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace signpost::testing

// SPDX-License-Identifier: Apache-2.0
// Queries answered by the owner: two instances share the log's partitions; the one that does not
// own the domain's partition redirects (307) to the one that does, found through the group's
// member list and the address each instance advertises (Kafka Streams' interactive queries).
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <functional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/gateway/config.h"
#include "services/gateway/gateway.h"
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/router_harness.h"

namespace signpost::testing {
namespace {

using namespace std::chrono_literals;

TEST(RouterQueryTest, TheInstanceThatDoesNotOwnTheReferralRedirectsToTheOneThatDoes) {
  auto base = TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const RouterTopics topics = RouterTopics::Create(*base, 2);
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  PreloadIntake(*base, topics.intake, 300, 0, rng);
  char pattern[] = "/tmp/signpost-query-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string bootstrap = base->at("bootstrap.servers");
  const int ports[2] = {FreePort(), FreePort()};
  pid_t pids[2];
  for (int i = 0; i < 2; ++i) {
    pids[i] = SpawnRouter(SIGNPOST_ROUTER_BIN, SIGNPOST_EXAMPLE_RULES, bootstrap, topics,
                          absl::StrCat("q-", i), absl::StrCat(root, "/q-", i),
                          {absl::StrCat("http.listen=127.0.0.1:", ports[i])});
  }
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline &&
         DecidedReferrals(ReadCommitted(*base, topics.decisions)) < 300) {
    std::this_thread::sleep_for(1s);
  }
  ASSERT_EQ(DecidedReferrals(ReadCommitted(*base, topics.decisions)), 300u);

  for (const std::string target : {"/v1/referrals/r7", "/v1/clients/c7"}) {
    std::string answers[2];
    std::string locations[2];
    // Both instances must have finished joining: retry while an answer is not yet settled.
    for (int attempt = 0; attempt < 50; ++attempt) {
      for (int i = 0; i < 2; ++i) answers[i] = HttpGet(ports[i], target, &locations[i]);
      const bool settled = (answers[0].rfind("200", 0) == 0 && answers[1].rfind("307", 0) == 0) ||
                           (answers[1].rfind("200", 0) == 0 && answers[0].rfind("307", 0) == 0);
      if (settled) break;
      std::this_thread::sleep_for(200ms);
    }
    const int owner = answers[0].rfind("200", 0) == 0 ? 0 : 1;
    const int other = 1 - owner;
    EXPECT_EQ(answers[owner].substr(0, 3), "200") << target << ": " << answers[owner];
    EXPECT_EQ(answers[other].substr(0, 3), "307") << target << ": " << answers[other];
    EXPECT_EQ(locations[other], absl::StrCat("http://127.0.0.1:", ports[owner], target));
    // Following the redirect gives the owner's answer about the same referral or client (its
    // content may have moved on meanwhile: a Tick can time out the offers in between).
    const std::string followed = HttpGet(ports[owner], target);
    const std::string id = target.substr(target.rfind('/') + 1);
    EXPECT_EQ(followed.substr(0, 3), "200") << followed;
    EXPECT_NE(followed.find(absl::StrCat("\"", id, "\"")), std::string::npos) << followed;
  }
  // Through the gateway, pointed at the instance that does not own the referral (as behind the
  // chart's headless Service it may be): it follows the redirect and answers with the owner's 200.
  {
    namespace gw = services::gateway;
    gw::GatewayConfig c;
    c.listen = "127.0.0.1:0";
    c.intake_topic = topics.intake;
    c.kafka = {{"bootstrap.servers", bootstrap}};
    c.pseudonym_key = std::string(64, '0');
    c.concept_map_file = SIGNPOST_SOURCE_DIR "/examples/gateway/concept-map.yaml";
    c.integrators_file = SIGNPOST_SOURCE_DIR "/examples/gateway/integrators.yaml";
    std::ifstream in(c.integrators_file);
    std::stringstream text;
    text << in.rdbuf();
    c.integrators = *gw::ParseIntegrators(text.str(), "integrators.yaml");
    int other = -1;
    for (int i = 0; i < 2; ++i) {
      if (HttpGet(ports[i], "/v1/referrals/r7").rfind("307", 0) == 0) other = i;
    }
    ASSERT_NE(other, -1);
    c.router_url = absl::StrCat("127.0.0.1:", ports[other]);
    absl::StatusOr<std::unique_ptr<gw::Gateway>> gateway = gw::Gateway::Start(c);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    // Right after the group settles, an instance's view of who owns the other partition can
    // lag for a moment: then it answers 503 (retry), never 404, and the gateway passes that on.
    std::string via;
    for (int attempt = 0; attempt < 20; ++attempt) {
      via = HttpGet((*gateway)->port(), "/v1/referrals/r7", nullptr, "Bearer demo-read-token");
      if (via.rfind("503", 0) != 0) break;
      std::this_thread::sleep_for(250ms);
    }
    EXPECT_EQ(via.substr(0, 3), "200") << via;
    EXPECT_NE(via.find("\"r7\""), std::string::npos) << via;
  }

  // A referral nobody has: the owner says 404, the other still redirects to it.
  std::string location;
  const std::string a = HttpGet(ports[0], "/v1/referrals/nobody", &location);
  const std::string b = HttpGet(ports[1], "/v1/referrals/nobody");
  EXPECT_TRUE((a.rfind("404", 0) == 0 && b.rfind("307", 0) == 0) ||
              (a.rfind("307", 0) == 0 && b.rfind("404", 0) == 0))
      << a << " / " << b;

  if (HasFailure()) {
    for (int i = 0; i < 2; ++i) {
      std::ifstream log(absl::StrCat(root, "/q-", i, ".log"));
      std::stringstream text;
      text << log.rdbuf();
      std::cout << "---- q-" << i << " (port " << ports[i] << ")\n" << text.str().substr(0, 6000) << "\n";
    }
  }
  for (pid_t pid : pids) {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::filesystem::remove_all(root);
}


// The partitions whose consumer lag an instance reports, from its /metrics.
std::set<std::string> LagPartitions(int port) {
  std::set<std::string> partitions;
  std::istringstream lines(HttpGet(port, "/metrics"));
  const std::string prefix = "signpost_consumer_lag_records{partition=\"";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) {
      partitions.insert(line.substr(prefix.size(), line.find('"', prefix.size()) - prefix.size()));
    }
  }
  return partitions;
}

// The value of one series (name with labels) on an instance's /metrics; -1 if absent.
double MetricValue(int port, const std::string& series) {
  std::istringstream lines(HttpGet(port, "/metrics"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return -1;
}

// An instance that gives partitions up to a newcomer stops reporting their lag and its domains'
// figures: otherwise its last values stand beside the new owner's (and a lag alert on max by
// partition can fire on them).
TEST(RouterQueryTest, AnInstanceReportsLagOnlyForThePartitionsItOwns) {
  auto base = TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const RouterTopics topics = RouterTopics::Create(*base, 2);
  std::mt19937_64 rng(static_cast<std::uint64_t>(getpid()));
  PreloadIntake(*base, topics.intake, 50, 0, rng);
  char pattern[] = "/tmp/signpost-lag-XXXXXX";
  const std::string root = mkdtemp(pattern);
  const std::string bootstrap = base->at("bootstrap.servers");
  const int ports[2] = {FreePort(), FreePort()};
  std::vector<pid_t> pids;
  auto spawn = [&](int i) {
    pids.push_back(SpawnRouter(SIGNPOST_ROUTER_BIN, SIGNPOST_EXAMPLE_RULES, bootstrap, topics,
                               absl::StrCat("lag-", i), absl::StrCat(root, "/lag-", i),
                               {absl::StrCat("http.listen=127.0.0.1:", ports[i])}));
  };
  auto within = [](std::chrono::seconds limit, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(250ms);
    }
    return done();
  };
  const std::set<std::string> both = {"0", "1"};
  spawn(0);
  EXPECT_TRUE(within(60s, [&] { return LagPartitions(ports[0]) == both; }))
      << "the only instance reports both partitions";
  spawn(1);
  std::set<std::string> seen[2];
  const bool split = within(60s, [&] {
    for (int i = 0; i < 2; ++i) seen[i] = LagPartitions(ports[i]);
    std::set<std::string> all = seen[0];
    all.insert(seen[1].begin(), seen[1].end());
    return !seen[0].empty() && !seen[1].empty() && all == both &&
           seen[0].size() + seen[1].size() == 2;
  });
  EXPECT_TRUE(split) << "first instance reports " << seen[0].size() << " partitions, second "
                     << seen[1].size();
  // The domain's open needs are reported by the instance routing it; the other says 0, even if
  // it routed the domain before the newcomer took its partition.
  double open[2] = {-1, -1};
  const bool one_owner = within(30s, [&] {
    for (int i = 0; i < 2; ++i) open[i] = MetricValue(ports[i], "signpost_open_needs{domain=\"banes\"}");
    return (open[0] > 0 && open[1] == 0) || (open[0] == 0 && open[1] > 0);
  });
  EXPECT_TRUE(one_owner) << "open needs reported: " << open[0] << " and " << open[1];
  for (pid_t pid : pids) {
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace signpost::testing

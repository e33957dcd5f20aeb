// SPDX-License-Identifier: Apache-2.0
// Crash torture: signpost-router processes a pre-loaded stream of referrals and pod answers and
// is killed with SIGKILL at random moments, again and again, then restarted. At the end the
// committed decisions must be exactly those of one clean run over the committed log (no loss, no
// duplicate), that run never puts a pod over capacity, and each partition's stored state equals
// the clean run's state.
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"
#include "router/router.h"
#include "services/kafka/client_config.h"
#include "services/kafka/topics.h"
#include "storage/partition_store.h"
#include "tests/testing/events.h"
#include "tests/testing/kafka_test_env.h"

namespace signpost::services {
namespace {

using namespace std::chrono_literals;

constexpr int kReferrals = 30'000;
constexpr int kAnswers = 10'000;
constexpr int kKills = 20;

struct Record {
  int partition;
  std::int64_t offset;
  std::string value;
};

std::vector<Record> ReadAll(const KafkaProperties& base, const std::string& topic) {
  KafkaProperties props = base;
  props["group.id"] = testing::UniqueName("reader");
  props["isolation.level"] = "read_committed";
  props["auto.offset.reset"] = "earliest";
  props["enable.partition.eof"] = "true";
  props["enable.auto.commit"] = "false";
  auto conf = MakeClientConf(props);
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf->get(), error));
  EXPECT_EQ(c->subscribe({topic}), RdKafka::ERR_NO_ERROR);
  std::vector<Record> out;
  std::set<int> eof;
  int partitions = -1;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline &&
         (partitions < 0 || static_cast<int>(eof.size()) < partitions)) {
    std::unique_ptr<RdKafka::Message> m(c->consume(200));
    if (partitions < 0) {
      std::vector<RdKafka::TopicPartition*> a;
      c->assignment(a);
      partitions = a.empty() ? -1 : static_cast<int>(a.size());
      RdKafka::TopicPartition::destroy(a);
    }
    if (m->err() == RdKafka::ERR__PARTITION_EOF) {
      eof.insert(m->partition());
    } else if (m->err() == RdKafka::ERR_NO_ERROR) {
      eof.erase(m->partition());
      out.push_back({m->partition(), m->offset(),
                     std::string(static_cast<const char*>(m->payload()), m->len())});
    }
  }
  c->close();
  std::stable_sort(out.begin(), out.end(), [](const Record& a, const Record& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return out;
}

TEST(RouterCrashTest, KilledAndRestartedItCommitsExactlyWhatOneCleanRunWould) {
  auto base = testing::TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const std::string s = testing::UniqueName("crash");
  const std::string intake = "intake-" + s, log = "log-" + s, decisions = "decisions-" + s,
                    dlq = "dlq-" + s;
  ASSERT_TRUE(CreateTopics(*base, {{intake, 2, 1, {}}, {log, 2, 1, {}}, {decisions, 2, 1, {}},
                                   {dlq, 1, 1, {}}},
                           30'000)
                  .ok());
  char pattern[] = "/tmp/signpost-crash-XXXXXX";
  const std::string data_dir = mkdtemp(pattern);
  const std::uint64_t seed = static_cast<std::uint64_t>(getpid());
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);

  // Pre-load the intake topic: referrals in two domains' worth of localities, then pod answers
  // naming referrals, needs and pods at random (most are rejected; some accept, decline or
  // complete real work).
  {
    auto conf = MakeClientConf(*base);
    std::string error;
    std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf->get(), error));
    testing::EventFactory events;
    static const char* kNeeds[] = {"community-volunteer", "food", "enhanced-triage", "housing",
                                   "logistics-transport", "shielding-welfare-check"};
    static const char* kPods[] = {"food-bath-foodbank", "food-virgin-care", "connectors-bath",
                                  "housing-dhi-curo", "logistics", "hub-enhanced-triage"};
    static const char* kOutward[] = {"BA1", "BA2", "BS31", "BA3"};
    auto send = [&](v1::Envelope e, const std::string& key) {
      e.clear_domain();
      const std::string v = e.SerializeAsString();
      while (p->produce(intake, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                        const_cast<char*>(v.data()), v.size(), key.data(), key.size(), 0,
                        nullptr) == RdKafka::ERR__QUEUE_FULL) {
        p->poll(10);
      }
    };
    for (int i = 0; i < kReferrals + kAnswers; ++i) {
      events.Advance(60'000);
      if (i < kReferrals) {
        send(events.Referral(absl::StrCat("r", i), absl::StrCat("c", i % 5000),
                             {kNeeds[rng() % 6]}, kOutward[rng() % 4]),
             absl::StrCat("c", i % 5000));
      } else {
        const std::string ref = absl::StrCat("r", rng() % kReferrals);
        const std::string need = kNeeds[rng() % 6];
        const std::string pod = kPods[rng() % 6];
        switch (rng() % 3) {
          case 0: send(events.Accept(ref, need, pod), ref); break;
          case 1: send(events.Complete(ref, need, pod), ref); break;
          default: send(events.Decline(ref, need, pod), ref);
        }
      }
    }
    ASSERT_EQ(p->flush(60'000), RdKafka::ERR_NO_ERROR);
  }

  const std::string bootstrap = base->at("bootstrap.servers");
  auto spawn = [&]() {
    const pid_t pid = fork();
    if (pid == 0) {
      const std::vector<std::string> args = {
          SIGNPOST_ROUTER_BIN,
          "--set", "rules_file=" SIGNPOST_EXAMPLE_RULES,
          "--set", "kafka.bootstrap.servers=" + bootstrap,
          "--set", "instance_id=crash-1",
          "--set", "group_id=g-" + s,
          "--set", "domain=banes",
          "--set", "data_dir=" + data_dir,
          "--set", "topics.intake=" + intake, "--set", "topics.log=" + log,
          "--set", "topics.decisions=" + decisions, "--set", "topics.dlq=" + dlq,
          "--set", "http.listen=127.0.0.1:0",
          "--set", "batch.max_ms=30", "--set", "batch.max_records=500",
          "--set", "tick_interval_ms=100", "--set", "memory_budget_mb=32"};
      std::vector<char*> argv;
      for (const std::string& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
      }
      argv.push_back(nullptr);
      const int devnull = ::open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      execv(SIGNPOST_ROUTER_BIN, argv.data());
      _exit(127);
    }
    return pid;
  };

  int killed = 0;
  for (int round = 0; round < kKills; ++round) {
    const pid_t pid = spawn();
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(800 + rng() % 2500));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    killed += WIFSIGNALED(status) ? 1 : 0;
    ASSERT_TRUE(WIFSIGNALED(status)) << "the router exited by itself in round " << round
                                     << " with " << WEXITSTATUS(status);
  }
  // A last run to the end of the input, then a clean stop.
  const pid_t last = spawn();
  std::set<std::string> decided;
  const auto deadline = std::chrono::steady_clock::now() + 300s;
  std::vector<Record> out;
  v1::Envelope d;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2s);
    out = ReadAll(*base, decisions);
    decided.clear();
    for (const Record& r : out) {
      d.ParseFromString(r.value);
      if (d.has_routed()) decided.insert(d.routed().referral_id());
      if (d.has_queued()) decided.insert(d.queued().referral_id());
      if (d.has_escalated()) decided.insert(d.escalated().referral_id());
    }
    if (static_cast<int>(decided.size()) >= kReferrals) {
      std::this_thread::sleep_for(3s);  // let the answers behind them through too
      break;
    }
  }
  kill(last, SIGTERM);
  int status = 0;
  waitpid(last, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "clean stop";
  ASSERT_EQ(static_cast<int>(decided.size()), kReferrals) << "every referral decided";
  out = ReadAll(*base, decisions);

  // Where each partition's stored state stands: everything the router consumed. (The log may
  // hold a few later records, the ticks of its last transaction, that it never read.)
  std::map<int, std::int64_t> applied;
  for (int partition : {0, 1}) {
    storage::StoreOptions options;
    options.path = absl::StrCat(data_dir, "/", log, "-", partition);
    options.resources = storage::StoreResources::Create(32 << 20);
    auto store = storage::PartitionStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    applied[partition] = (*store)->AppliedOffset().Value();
  }

  // One clean run over the committed log, up to there.
  std::ifstream in(SIGNPOST_EXAMPLE_RULES);
  std::stringstream yaml;
  yaml << in.rdbuf();
  std::map<int, std::unique_ptr<router::InMemoryClientStore>> stores;
  std::map<int, std::unique_ptr<router::Router>> routers;
  std::vector<std::string> replay;
  router::DecisionBuffer buffer;
  v1::Envelope event;
  for (const Record& r : ReadAll(*base, log)) {
    if (r.offset > applied[r.partition]) {
      continue;
    }
    if (!routers.contains(r.partition)) {
      stores[r.partition] = std::make_unique<router::InMemoryClientStore>();
      routers[r.partition] =
          std::make_unique<router::Router>(*router::LoadRules(yaml.str(), "r"), *stores[r.partition]);
    }
    ASSERT_TRUE(event.ParseFromString(r.value));
    buffer.Clear();
    ASSERT_TRUE(routers[r.partition]->Apply(event, Offset(r.offset), buffer).ok());
    for (std::size_t i = 0; i < buffer.size(); ++i) {
      replay.push_back(buffer[i].SerializeAsString());
    }
    for (const router::PodFigures& pod : routers[r.partition]->Pods()) {
      ASSERT_LE(pod.open_cost, pod.capacity) << pod.id;
    }
  }
  std::vector<std::string> committed;
  std::set<std::string> ids;
  for (const Record& r : out) {
    committed.push_back(r.value);
    d.ParseFromString(r.value);
    EXPECT_TRUE(ids.insert(d.event_id()).second) << "duplicate decision " << d.event_id();
  }
  std::sort(committed.begin(), committed.end());
  std::sort(replay.begin(), replay.end());
  std::cout << killed << " kills; " << committed.size() << " committed decisions, "
            << replay.size() << " in a clean replay\n";
  EXPECT_EQ(committed.size(), replay.size());
  EXPECT_TRUE(committed == replay) << "committed decisions differ from a clean run";

  // Each partition's stored state equals the clean run's.
  for (auto& [partition, router] : routers) {
    storage::StoreOptions options;
    options.path = absl::StrCat(data_dir, "/", log, "-", partition);
    options.resources = storage::StoreResources::Create(32 << 20);
    auto store = storage::PartitionStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    auto state = (*store)->LoadRouterState();
    ASSERT_TRUE(state.ok() && state->has_value());
    EXPECT_EQ((*state)->SerializeAsString(), router->Snapshot().SerializeAsString())
        << "partition " << partition;
  }
  std::filesystem::remove_all(data_dir);
}

}  // namespace
}  // namespace signpost::services

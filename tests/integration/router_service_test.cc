// SPDX-License-Identifier: Apache-2.0
// The router service end to end on the real broker: referrals, pod answers and poison records
// into signpost.intake.v1; committed decisions out (read_committed) must be exactly those of a
// clean replay of the committed log, across a restart; poison lands in the DLQ with its reason;
// /metrics answers with the documented metrics.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"
#include "router/router.h"
#include "services/config.h"
#include "services/kafka/topics.h"
#include "services/service.h"
#include "tests/testing/events.h"
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/router_harness.h"

namespace signpost::services {
namespace {

using namespace std::chrono_literals;

using testing::LogRecord;
using Record = LogRecord;
using testing::FreePort;
using testing::HttpGet;

std::int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<Record> ReadAll(const KafkaProperties& base, const std::string& topic) {
  return testing::ReadCommitted(base, topic);
}

class RouterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto base = testing::TestClientProperties();
    ASSERT_TRUE(base.ok()) << base.status();
    base_ = *base;
    const std::string suffix = testing::UniqueName("svc");
    config_.kafka = base_;
    config_.instance_id = suffix;
    config_.group_id = "g-" + suffix;
    config_.domains = {services::DomainConfig{
        "banes", SIGNPOST_EXAMPLE_RULES, {"BA1", "BA2", "BA3", "BS31", "BS39", "BS40"}}};
    config_.intake_topic = "intake-" + suffix;
    config_.log_topic = "log-" + suffix;
    config_.decisions_topic = "decisions-" + suffix;
    config_.dlq_topic = "dlq-" + suffix;
    config_.batch_max_ms = 50;
    config_.tick_interval_ms = 200;
    config_.memory_budget_mb = 32;
    port_ = FreePort();
    config_.http_listen = absl::StrCat("127.0.0.1:", port_);
    char pattern[] = "/tmp/signpost-svc-XXXXXX";
    config_.data_dir = mkdtemp(pattern);
    ASSERT_TRUE(CreateTopics(base_,
                             {{config_.intake_topic, 2, 1, {}},
                              {config_.log_topic, 2, 1, {}},
                              {config_.decisions_topic, 2, 1, {}},
                              {config_.dlq_topic, 1, 1, {}}},
                             30'000)
                    .ok());
  }
  void TearDown() override {
    StopService();
    std::filesystem::remove_all(config_.data_dir);
  }

  void StartService() {
    stop_ = false;
    service_ = std::thread([this] { result_ = RunService(config_, stop_); });
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline &&
           HttpGet(port_, "/readyz").rfind("200", 0) != 0) {
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(HttpGet(port_, "/readyz").substr(0, 3), "200") << "service not ready in 60 s";
  }
  void StopService() {
    if (service_.joinable()) {
      stop_ = true;
      service_.join();
      EXPECT_TRUE(result_.ok()) << result_;
    }
  }

  void Publish(const std::vector<std::pair<std::string, std::string>>& records) {
    auto conf = MakeClientConf(base_);
    std::string error;
    std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf->get(), error));
    for (const auto& [key, value] : records) {
      ASSERT_EQ(p->produce(config_.intake_topic, RdKafka::Topic::PARTITION_UA,
                           RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
                           value.size(), key.data(), key.size(), 0, nullptr),
                RdKafka::ERR_NO_ERROR);
    }
    ASSERT_EQ(p->flush(30'000), RdKafka::ERR_NO_ERROR);
  }

  // Decisions until `referrals` referrals each have a first decision (or 60 s pass).
  std::vector<Record> AwaitDecisions(std::size_t referrals) {
    std::vector<Record> decisions;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      decisions = ReadAll(base_, config_.decisions_topic);
      if (testing::DecidedReferrals(decisions) >= referrals) {
        break;
      }
      std::this_thread::sleep_for(300ms);
    }
    return decisions;
  }

  // This deployment's topics and group, in the harness's terms.
  testing::RouterTopics Topics() const {
    testing::RouterTopics t;
    t.suffix = config_.group_id.substr(2);  // group_id is "g-" + suffix
    t.intake = config_.intake_topic;
    t.log = config_.log_topic;
    t.decisions = config_.decisions_topic;
    t.dlq = config_.dlq_topic;
    return t;
  }

  KafkaProperties base_;
  ServiceConfig config_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread service_;
  absl::Status result_;
};

std::vector<std::pair<std::string, std::string>> Referrals(testing::EventFactory& events,
                                                           int from, int count) {
  static const char* kNeeds[] = {"community-volunteer", "food", "enhanced-triage", "housing",
                                 "logistics-transport", "mental-wellbeing", "knitting"};
  static const char* kOutward[] = {"BA1", "BA2", "BS31", "BA3"};
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = from; i < from + count; ++i) {
    events.SetNow(WallMs());
    v1::Envelope e = events.Referral(absl::StrCat("ref-", i), absl::StrCat("client-", i % 37),
                                     {kNeeds[i % 7]}, kOutward[i % 4]);
    e.clear_domain();
    out.emplace_back(e.referral_submitted().client_ref(), e.SerializeAsString());
  }
  return out;
}

TEST_F(RouterServiceTest, DecisionsAreExactlyThoseOfACleanReplayAcrossARestart) {
  StartService();
  testing::EventFactory events;
  auto records = Referrals(events, 0, 400);
  // Poison: not protobuf, a future schema version, a full postcode, another domain.
  records.emplace_back("k1", "\x08\x01garbage\xff");
  v1::Envelope future = events.Referral("ref-x", "client-x", {"food"}, "BA1");
  future.set_schema_version(9);
  records.emplace_back("k2", future.SerializeAsString());
  v1::Envelope full = events.Referral("ref-y", "client-y", {"food"}, "BA2 4QH");
  full.clear_domain();
  records.emplace_back("k3", full.SerializeAsString());
  v1::Envelope elsewhere = events.Referral("ref-z", "client-z", {"food"}, "SN1");
  elsewhere.clear_domain();
  records.emplace_back("k4", elsewhere.SerializeAsString());
  Publish(records);
  std::vector<Record> decisions = AwaitDecisions(400);
  ASSERT_FALSE(decisions.empty());

  // Pod answers for the first 40 routed needs: accepted, then completed.
  std::vector<std::pair<std::string, std::string>> answers;
  v1::Envelope d;
  for (const Record& r : decisions) {
    d.ParseFromString(r.value);
    if (d.has_routed() && answers.size() < 80) {
      v1::Envelope a = events.Accept(d.routed().referral_id(), d.routed().need_code(), d.routed().pod_id());
      v1::Envelope c = events.Complete(d.routed().referral_id(), d.routed().need_code(), d.routed().pod_id());
      a.clear_domain();
      c.clear_domain();
      answers.emplace_back(d.routed().pod_id(), a.SerializeAsString());
      answers.emplace_back(d.routed().pod_id(), c.SerializeAsString());
    }
  }
  ASSERT_EQ(answers.size(), 80u);
  // Ordered within one intake partition, so each accept precedes its completion.
  auto conf = MakeClientConf(base_);
  std::string error;
  {
    std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf->get(), error));
    for (const auto& [key, value] : answers) {
      ASSERT_EQ(p->produce(config_.intake_topic, 0, RdKafka::Producer::RK_MSG_COPY,
                           const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                           0, nullptr),
                RdKafka::ERR_NO_ERROR);
    }
    ASSERT_EQ(p->flush(30'000), RdKafka::ERR_NO_ERROR);
  }
  std::this_thread::sleep_for(2s);
  const std::string metrics = HttpGet(port_, "/metrics");
  for (const char* name :
       {"signpost_records_in_total", "signpost_decisions_total{outcome=\"routed\"}",
        "signpost_dlq_total{reason=\"unparsable\"}", "signpost_dlq_total{reason=\"schema_version\"}",
        "signpost_dlq_total{reason=\"invalid_referral\"}", "signpost_dlq_total{reason=\"unknown_domain\"}",
        "signpost_pod_open_cost", "signpost_pod_capacity", "signpost_pod_utilisation_ratio",
        "signpost_need_waiting", "signpost_need_oldest_wait_seconds", "signpost_open_needs{domain=",
        "signpost_end_to_end_latency_seconds_bucket",
        "signpost_transaction_commit_seconds_bucket{stage=\"routing\"",
        "signpost_transaction_commit_seconds_bucket{stage=\"intake\"",
        "signpost_state_handover_seconds_bucket", "signpost_intake_latency_seconds_bucket",
        "signpost_transaction_aborts_total", "signpost_consumer_lag_records",
        "signpost_rocksdb_memory_bytes", "signpost_assigned_partitions",
        "signpost_pod_answers_total{answer=\"accepted\"", "signpost_escalations_total",
        "signpost_pod_time_to_accept_seconds_bucket{pod=",
        "signpost_pod_time_to_complete_seconds_bucket{pod="}) {
    EXPECT_THAT(metrics, ::testing::HasSubstr(name));
  }
  // One time-to-accept observation per counted acceptance, one time-to-complete per completion.
  auto sum = [&](const std::string& prefix, const std::string& also) {
    double total = 0;
    std::istringstream lines(metrics);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(prefix, 0) == 0 && line.find(also) != std::string::npos) {
        total += std::stod(line.substr(line.rfind(' ') + 1));
      }
    }
    return total;
  };
  const double accepted = sum("signpost_pod_answers_total{", "answer=\"accepted\"");
  const double completed = sum("signpost_pod_answers_total{", "answer=\"completed\"");
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(sum("signpost_pod_time_to_accept_seconds_count{", ""), accepted);
  EXPECT_EQ(sum("signpost_pod_time_to_complete_seconds_count{", ""), completed);
  // One intake latency per valid input the intake stage logged (all of them committed by now).
  const std::string intake_in = "signpost_records_in_total{topic=\"" + config_.intake_topic + "\"";
  EXPECT_GT(sum("signpost_intake_latency_seconds_count", ""), 0);
  EXPECT_EQ(sum("signpost_intake_latency_seconds_count", ""),
            sum(intake_in, "") - sum(intake_in, "type=\"invalid\""));
  // Open needs cover the waiting ones and those held by pods.
  EXPECT_GT(sum("signpost_open_needs{", ""), sum("signpost_need_waiting{", ""));
  EXPECT_EQ(metrics.find("client-"), std::string::npos) << "no client refs in metric labels";
  for (const char* counted :
       {"signpost_dlq_total{reason=\"unparsable\"} 1", "signpost_dlq_total{reason=\"schema_version\"} 1",
        "signpost_dlq_total{reason=\"unknown_domain\"} 1"}) {
    EXPECT_THAT(metrics, ::testing::HasSubstr(counted));
  }
  StopService();

  // Restart on the same state and carry on.
  StartService();
  Publish(Referrals(events, 400, 100));
  decisions = AwaitDecisions(500);
  StopService();

  // Up to what the group committed: the ticks of the last transaction were never read.
  const std::map<int, std::int64_t> upto = testing::LastCommitted(base_, Topics(), 2);
  const testing::ReplayCheck check =
      testing::CheckAgainstReplay(base_, Topics(), SIGNPOST_EXAMPLE_RULES, &upto);
  EXPECT_TRUE(check.duplicates.empty()) << check.duplicates.size() << " duplicate decisions";
  EXPECT_EQ(check.over_capacity, "");
  EXPECT_TRUE(check.equal) << "committed decisions differ from a clean replay: "
                           << check.committed << " vs " << check.replayed;

  const std::vector<Record> dlq = ReadAll(base_, config_.dlq_topic);
  ASSERT_EQ(dlq.size(), 4u);
  std::multiset<std::string> reasons;
  for (const Record& r : dlq) {
    reasons.insert(r.headers.at("signpost.dlq.reason"));
    EXPECT_EQ(r.headers.at("signpost.dlq.source.topic"), config_.intake_topic);
    EXPECT_FALSE(r.headers.at("signpost.dlq.source.offset").empty());
  }
  EXPECT_EQ(reasons, (std::multiset<std::string>{"invalid_referral", "schema_version",
                                                 "unknown_domain", "unparsable"}));
  EXPECT_EQ(dlq[0].value.empty(), false);
}

}  // namespace
}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
// Fault injection on librdkafka's in-process mock cluster: the routing stage's read of the
// group's committed offset fails when its partitions are assigned (a coordinator restarting).
// Before the fix the failure became offset -1, every local state looked ahead of it, and the
// partition was wiped and "rebuilt" recursively until the stack overflowed. A read that keeps
// failing stops the stage within half of max.poll.interval.ms, since it waits inside the
// rebalance callback and a longer wait would get the member dropped from its group.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/config.h"
#include "services/service.h"
#include "signpost/v1/envelope.pb.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"

namespace signpost::services {
namespace {

constexpr std::int16_t kOffsetFetch = 9;  // Kafka API key

// A mock cluster of three brokers with the service's topics; the routing group's coordinator
// is broker 2, whose OffsetFetch requests the tests make fail.
class RouterCommittedFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char errstr[512];
    handle_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof(errstr)));
    ASSERT_NE(handle_, nullptr) << errstr;
    cluster_.reset(rd_kafka_mock_cluster_new(handle_.get(), 3));
    ASSERT_NE(cluster_, nullptr);
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_.get());
    for (const char* topic :
         {"signpost.intake.v1", "signpost.log.v1", "signpost.decisions.v1", "signpost.dlq.v1"}) {
      ASSERT_EQ(rd_kafka_mock_topic_create(cluster_.get(), topic, 1, 3),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    rd_kafka_mock_coordinator_set(cluster_.get(), "group", "signpost-router", 2);
    rd_kafka_mock_coordinator_set(cluster_.get(), "group", "signpost-router-intake", 1);
  }

  // `count` OffsetFetch requests to the routing group's coordinator fail with an error
  // librdkafka does not retry itself, so committed() reports it to the router.
  void FailOffsetFetches(int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(rd_kafka_mock_broker_push_request_error_rtts(
                    cluster_.get(), 2, kOffsetFetch, 1,
                    RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, 0),
                RD_KAFKA_RESP_ERR_NO_ERROR);
    }
  }

  absl::StatusOr<ServiceConfig> Config(const std::string& name,
                                       std::vector<std::string> overrides = {}) {
    const std::string dir = ::testing::TempDir() + "/" + name;
    std::filesystem::remove_all(dir);
    overrides.insert(overrides.end(),
                     {"kafka.bootstrap.servers=" + bootstrap_, "data_dir=" + dir,
                      "http.listen=127.0.0.1:0",
                      std::string("rules_file=") + SIGNPOST_EXAMPLE_RULES, "tick_interval_ms=100"});
    return LoadServiceConfig(SIGNPOST_DEMO_CONFIG, {}, overrides);
  }

  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> handle_{nullptr, &rd_kafka_destroy};
  std::unique_ptr<rd_kafka_mock_cluster_t, decltype(&rd_kafka_mock_cluster_destroy)> cluster_{
      nullptr, &rd_kafka_mock_cluster_destroy};
  std::string bootstrap_;
};

// Lines of the router's log that say a committed-offset read failed and is being retried.
int RetryLines(spdlog::sinks::ringbuffer_sink_mt& log) {
  int retried = 0;
  for (const std::string& line : log.last_formatted()) {
    retried += line.find("reading the group's committed offset failed") != std::string::npos;
  }
  return retried;
}

TEST_F(RouterCommittedFaultTest, AFailedCommittedOffsetReadIsRetriedAndRoutingGoesOn) {
  FailOffsetFetches(2);
  absl::StatusOr<ServiceConfig> config = Config("router_committed_fault_test");
  ASSERT_TRUE(config.ok()) << config.status();

  // The router's log, to see that the fault was met (and retried) and not missed.
  auto log = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  spdlog::default_logger()->sinks().push_back(log);

  // A referral in; its decision must come out (read_committed).
  std::string error;
  std::unique_ptr<RdKafka::Conf> pconf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  pconf->set("bootstrap.servers", bootstrap_, error);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(pconf.get(), error));
  ASSERT_NE(producer, nullptr) << error;
  v1::Envelope e;
  e.set_schema_version(1);
  e.set_event_id("fault-1");
  e.set_event_time_ms(1'767'261'600'000);
  e.set_producer("test");
  v1::ReferralSubmitted* r = e.mutable_referral_submitted();
  r->set_referral_id("fault-ref-1");
  r->set_client_ref("fault-client-1");
  r->set_source(v1::SOURCE_GP_PRACTICE);
  r->set_postcode_outward("BA1");
  r->add_needs()->set_code("food");
  r->add_consent(v1::CONSENT_SCOPE_SHARE_WITH_PODS);
  const std::string bytes = e.SerializeAsString();
  ASSERT_EQ(producer->produce("signpost.intake.v1", RdKafka::Topic::PARTITION_UA,
                              RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(bytes.data()),
                              bytes.size(), "k", 1, 0, nullptr),
            RdKafka::ERR_NO_ERROR);
  ASSERT_EQ(producer->flush(10'000), RdKafka::ERR_NO_ERROR);

  std::unique_ptr<RdKafka::Conf> cconf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  cconf->set("bootstrap.servers", bootstrap_, error);
  cconf->set("group.id", "router-committed-fault-reader", error);
  cconf->set("isolation.level", "read_committed", error);
  cconf->set("auto.offset.reset", "earliest", error);
  std::unique_ptr<RdKafka::KafkaConsumer> reader(RdKafka::KafkaConsumer::create(cconf.get(), error));
  ASSERT_NE(reader, nullptr) << error;
  ASSERT_EQ(reader->subscribe({"signpost.decisions.v1"}), RdKafka::ERR_NO_ERROR);

  // The service last, so no ASSERT above can leave its thread running.
  std::atomic<bool> stop{false};
  absl::Status result;
  std::thread service([&] { result = RunService(*config, stop); });
  bool decided = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (!decided && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(reader->consume(500));
    if (m->err() != RdKafka::ERR_NO_ERROR) {
      continue;
    }
    v1::Envelope d;
    decided = d.ParseFromArray(m->payload(), static_cast<int>(m->len())) &&
              d.has_routed() && d.routed().referral_id() == "fault-ref-1";
  }
  reader->close();
  stop = true;
  service.join();
  EXPECT_TRUE(decided) << "no Routed decision for the referral within 90 s";
  EXPECT_TRUE(result.ok()) << result;
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_EQ(RetryLines(*log), 2)
      << "both injected OffsetFetch errors must reach the routing stage";
}

TEST_F(RouterCommittedFaultTest, AReadThatKeepsFailingStopsTheStageWithinHalfThePollInterval) {
  // Far more failures than the stage will try; max.poll.interval.ms 6 s, so it gives up after
  // 3 s (a two-minute deadline had it wait inside the rebalance callback long after the group
  // had dropped it).
  FailOffsetFetches(500);
  absl::StatusOr<ServiceConfig> config =
      Config("router_committed_fault_stop_test",
             {"kafka.session.timeout.ms=6000", "kafka.max.poll.interval.ms=6000"});
  ASSERT_TRUE(config.ok()) << config.status();
  auto log = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  spdlog::default_logger()->sinks().push_back(log);

  std::atomic<bool> stop{false};
  std::promise<absl::Status> result;
  std::future<absl::Status> done = result.get_future();
  std::thread service([&] { result.set_value(RunService(*config, stop)); });
  // The bound only keeps a broken build from hanging the suite: the group's join takes a few
  // seconds, then 3 s of retries; the old deadline would still be retrying at 60 s.
  const bool stopped = done.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  stop = true;
  service.join();
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_TRUE(stopped) << "the stage was still retrying after 60 s";
  const absl::Status status = done.get();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("committed offset"), std::string::npos) << status;
  const int retried = RetryLines(*log);
  EXPECT_GE(retried, 1);
  EXPECT_LE(retried, 10) << "retried for longer than half the poll interval";
}

}  // namespace
}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
// Fault injection on librdkafka's in-process mock cluster: the routing stage's read of the
// group's committed offset fails when its partitions are assigned (a coordinator restarting).
// Before the fix the failure became offset -1, every local state looked ahead of it, and the
// partition was wiped and "rebuilt" recursively until the stack overflowed.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

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

TEST(RouterCommittedFaultTest, AFailedCommittedOffsetReadIsRetriedAndRoutingGoesOn) {
  char errstr[512];
  std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)> handle(
      rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), errstr, sizeof(errstr)),
      &rd_kafka_destroy);
  ASSERT_NE(handle, nullptr) << errstr;
  std::unique_ptr<rd_kafka_mock_cluster_t, decltype(&rd_kafka_mock_cluster_destroy)> owned(
      rd_kafka_mock_cluster_new(handle.get(), 3), &rd_kafka_mock_cluster_destroy);
  ASSERT_NE(owned, nullptr);
  rd_kafka_mock_cluster_t* cluster = owned.get();
  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(cluster);
  for (const char* topic :
       {"signpost.intake.v1", "signpost.log.v1", "signpost.decisions.v1", "signpost.dlq.v1"}) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster, topic, 1, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  // The routing group's coordinator is broker 2 and its first OffsetFetch requests fail with
  // an error librdkafka does not retry itself, so committed() reports it to the router.
  rd_kafka_mock_coordinator_set(cluster, "group", "signpost-router", 2);
  rd_kafka_mock_coordinator_set(cluster, "group", "signpost-router-intake", 1);
  rd_kafka_mock_broker_push_request_error_rtts(cluster, 2, kOffsetFetch, 2,
                                               RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, 0,
                                               RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, 0);

  const std::string dir = ::testing::TempDir() + "/router_committed_fault_test";
  std::filesystem::remove_all(dir);
  absl::StatusOr<ServiceConfig> config = LoadServiceConfig(
      SIGNPOST_DEMO_CONFIG, {},
      {"kafka.bootstrap.servers=" + bootstrap, "data_dir=" + dir, "http.listen=127.0.0.1:0",
       std::string("rules_file=") + SIGNPOST_EXAMPLE_RULES, "tick_interval_ms=100"});
  ASSERT_TRUE(config.ok()) << config.status();

  // The router's log, to see that the fault was met (and retried) and not missed.
  auto log = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  spdlog::default_logger()->sinks().push_back(log);

  // A referral in; its decision must come out (read_committed).
  std::string error;
  std::unique_ptr<RdKafka::Conf> pconf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  pconf->set("bootstrap.servers", bootstrap, error);
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
  cconf->set("bootstrap.servers", bootstrap, error);
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
  int retried = 0;
  for (const std::string& line : log->last_formatted()) {
    retried += line.find("reading the group's committed offset failed") != std::string::npos;
  }
  EXPECT_EQ(retried, 2) << "both injected OffsetFetch errors must reach the routing stage";
}

}  // namespace
}  // namespace signpost::services

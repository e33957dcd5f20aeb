// SPDX-License-Identifier: Apache-2.0
// Consumer-group members closed early on the real broker. librdkafka 2.0.2 aborts the process
// when a cooperative-sticky consumer is destroyed between joining its group and its first
// assignment (librdkafka issue 4312); a GroupConsumer closed in that window first waits for the
// assignment. These tests close members at every point of their first rebalance.
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "services/kafka/client_config.h"
#include "services/kafka/group_consumer.h"
#include "services/kafka/topics.h"
#include "tests/testing/kafka_test_env.h"

namespace signpost {
namespace {

using namespace std::chrono_literals;
using services::GroupConsumer;

// Counts the rebalances handed to the owner.
class Recorder : public RdKafka::RebalanceCb {
 public:
  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    ++calls;
    std::unique_ptr<RdKafka::Error> e(err == RdKafka::ERR__ASSIGN_PARTITIONS
                                          ? consumer->incremental_assign(partitions)
                                          : consumer->incremental_unassign(partitions));
  }
  int calls = 0;
};

class GroupConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto base = testing::TestClientProperties();
    ASSERT_TRUE(base.ok()) << base.status();
    base_ = *base;
    topic_ = testing::UniqueName("signpost.test.group");
    group_ = testing::UniqueName("group-consumer-test");
  }

  void CreateTopic(int partitions) {
    ASSERT_TRUE(services::CreateTopics(base_, {{topic_, partitions, 1, {}}}, 30'000).ok());
  }

  GroupConsumer Member(RdKafka::RebalanceCb* rebalance, const std::string& instance = "") {
    services::KafkaProperties props = base_;
    props["group.id"] = group_;
    props["partition.assignment.strategy"] = "cooperative-sticky";
    props["session.timeout.ms"] = "6000";
    props["heartbeat.interval.ms"] = "200";  // members notice a rebalance quickly
    props["enable.auto.commit"] = "false";
    if (!instance.empty()) {
      props["group.instance.id"] = instance;
    }
    auto conf = services::MakeClientConf(props);
    EXPECT_TRUE(conf.ok()) << conf.status();
    std::string error;
    GroupConsumer consumer = services::CreateGroupConsumer(**conf, rebalance, 20s, error);
    EXPECT_NE(consumer, nullptr) << error;
    EXPECT_EQ(consumer->subscribe({topic_}), RdKafka::ERR_NO_ERROR);
    return consumer;
  }

  // Starts a member that takes the topic's partitions and keeps serving the group until the
  // test ends, and waits until it holds them.
  void StartIncumbent() {
    incumbent_ = std::thread([this] {
      GroupConsumer incumbent = Member(nullptr);
      while (!stop_) {
        std::unique_ptr<RdKafka::Message> m(incumbent->consume(50));
        std::vector<RdKafka::TopicPartition*> held;
        if (!assigned_ && incumbent->assignment(held) == RdKafka::ERR_NO_ERROR && !held.empty()) {
          assigned_ = true;
        }
        RdKafka::TopicPartition::destroy(held);
      }
      services::CloseGroupConsumer(incumbent);
    });
    for (int i = 0; i < 300 && !assigned_; ++i) {
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(assigned_) << "the first member was not assigned in 30 s";
  }

  void TearDown() override {
    stop_ = true;
    if (incumbent_.joinable()) {
      incumbent_.join();
    }
  }

  services::KafkaProperties base_;
  std::string topic_;
  std::string group_;
  std::thread incumbent_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> assigned_{false};
};

// One partition, which the incumbent keeps: the joiner's first (and only) assignment is empty,
// and that counts.
TEST_F(GroupConsumerTest, ClosingBeforeTheFirstAssignmentWaitsForIt) {
  ASSERT_NO_FATAL_FAILURE(CreateTopic(1));
  ASSERT_NO_FATAL_FAILURE(StartIncumbent());

  Recorder owner;
  GroupConsumer joiner = Member(&owner, "joiner");  // static, like the router
  const services::GroupConsumerCloser closer = joiner.get_deleter();
  services::CloseGroupConsumer(joiner);  // at once: the join has only just been sent
  EXPECT_EQ(joiner, nullptr);
  EXPECT_TRUE(closer.watch()->assigned_once())
      << "destroyed before its first assignment (which aborts librdkafka 2.0.2)";
  EXPECT_EQ(owner.calls, 0) << "the owner was called while its consumer was being closed";
}

TEST_F(GroupConsumerTest, MembersClosedAtRandomPointsOfTheirFirstRebalanceExitCleanly) {
  ASSERT_NO_FATAL_FAILURE(CreateTopic(2));
  ASSERT_NO_FATAL_FAILURE(StartIncumbent());

  std::mt19937 rng(static_cast<unsigned>(getpid()));
  // A join takes about 0.9 s here (the incumbent notices the rebalance at its next heartbeat),
  // so these closes fall before, inside and after the join and sync.
  std::uniform_int_distribution<int> serve_ms(0, 1500);
  for (int round = 0; round < 10; ++round) {
    Recorder owner;
    GroupConsumer joiner = Member(&owner);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(serve_ms(rng));
    while (std::chrono::steady_clock::now() < until) {
      std::unique_ptr<RdKafka::Message> m(joiner->consume(10));
    }
    const services::GroupConsumerCloser closer = joiner.get_deleter();
    services::CloseGroupConsumer(joiner);
    EXPECT_TRUE(closer.watch()->assigned_once()) << "round " << round;
  }
}

}  // namespace
}  // namespace signpost

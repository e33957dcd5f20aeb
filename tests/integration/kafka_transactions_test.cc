// SPDX-License-Identifier: Apache-2.0
// Kafka transactions on the real broker, through Debian's librdkafka: a transactional producer
// writes 10,000 envelopes in ten transactions and aborts one; a read_committed consumer in a
// consumer group must read back exactly the committed ones, in order per partition.
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/kafka/client_config.h"
#include "services/kafka/topics.h"
#include "signpost/v1/envelope.pb.h"
#include "tests/testing/kafka_test_env.h"

namespace signpost {
namespace {

constexpr int kPartitions = 3;
constexpr int kTransactions = 10;
constexpr int kPerTransaction = 1000;
constexpr int kAbortedTransaction = 4;

// Records where each message landed. Served from poll()/flush() on the producing thread.
class DeliveryLog : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      ++failed;
      return;
    }
    // The opaque carries the message's index into `event_ids` of the test.
    delivered[message.partition()][message.offset()] =
        static_cast<int>(reinterpret_cast<intptr_t>(message.msg_opaque()));
  }
  std::map<int32_t, std::map<int64_t, int>> delivered;  // partition -> offset -> index
  int failed = 0;
};

v1::Envelope MakeEnvelope(int index) {
  v1::Envelope envelope;
  envelope.set_schema_version(1);
  envelope.set_event_id("evt-" + std::to_string(index));
  envelope.set_event_time_ms(1'764'000'000'000 + index);
  envelope.set_producer("kafka-transactions-test");
  envelope.set_domain("banes");
  v1::ReferralSubmitted* referral = envelope.mutable_referral_submitted();
  referral->set_referral_id("ref-" + std::to_string(index));
  referral->set_client_ref("client-" + std::to_string(index % 97));
  referral->set_source(v1::SOURCE_LIST_IMPORT);
  referral->add_needs()->set_code("welfare-check");
  referral->set_postcode_outward("BA2");
  return envelope;
}

// Reads every record of `topic` until each partition reports EOF, or `deadline` passes.
// Returns partition -> event ids in consumption order.
std::map<int32_t, std::vector<std::string>> ConsumeAll(const services::KafkaProperties& base,
                                                       const std::string& topic,
                                                       const std::string& isolation) {
  services::KafkaProperties props = base;
  props["group.id"] = testing::UniqueName("txn-verify");
  props["isolation.level"] = isolation;
  props["auto.offset.reset"] = "earliest";
  props["enable.auto.commit"] = "false";
  props["enable.partition.eof"] = "true";
  props["partition.assignment.strategy"] = "cooperative-sticky";
  auto conf = services::MakeClientConf(props);
  EXPECT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf->get(), error));
  EXPECT_NE(consumer, nullptr) << error;
  EXPECT_EQ(consumer->subscribe({topic}), RdKafka::ERR_NO_ERROR);

  std::map<int32_t, std::vector<std::string>> seen;
  std::set<int32_t> at_end;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (static_cast<int>(at_end.size()) < kPartitions &&
         std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        v1::Envelope envelope;
        EXPECT_TRUE(envelope.ParseFromArray(message->payload(), static_cast<int>(message->len())));
        seen[message->partition()].push_back(envelope.event_id());
        at_end.erase(message->partition());
        break;
      }
      case RdKafka::ERR__PARTITION_EOF:
        at_end.insert(message->partition());
        break;
      case RdKafka::ERR__TIMED_OUT:
        break;
      default:
        ADD_FAILURE() << "consume: " << message->errstr();
    }
  }
  EXPECT_EQ(static_cast<int>(at_end.size()), kPartitions) << "did not reach the end in 60 s";
  consumer->close();
  return seen;
}

TEST(KafkaTransactionsTest, ReadCommittedConsumerSeesExactlyTheCommittedTransactions) {
  auto base = testing::TestClientProperties();
  ASSERT_TRUE(base.ok()) << base.status();
  const std::string topic = testing::UniqueName("signpost.test.txn");
  ASSERT_TRUE(services::CreateTopics(*base, {{topic, kPartitions, 1, {}}}, 30'000).ok());

  services::KafkaProperties props = *base;
  props["transactional.id"] = testing::UniqueName("txn-test");
  props["acks"] = "all";
  props["linger.ms"] = "5";
  props["transaction.timeout.ms"] = "30000";
  props["message.timeout.ms"] = "20000";
  auto conf = services::MakeClientConf(props);
  ASSERT_TRUE(conf.ok()) << conf.status();
  DeliveryLog deliveries;
  std::string error;
  ASSERT_EQ((*conf)->set("dr_cb", &deliveries, error), RdKafka::Conf::CONF_OK) << error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  ASSERT_NE(producer, nullptr) << error;
  std::unique_ptr<RdKafka::Error> txn_error(producer->init_transactions(30'000));
  ASSERT_EQ(txn_error, nullptr) << txn_error->str();

  std::set<int> aborted;
  for (int t = 0; t < kTransactions; ++t) {
    txn_error.reset(producer->begin_transaction());
    ASSERT_EQ(txn_error, nullptr) << txn_error->str();
    for (int i = 0; i < kPerTransaction; ++i) {
      const int index = t * kPerTransaction + i;
      const v1::Envelope envelope = MakeEnvelope(index);
      const std::string key = envelope.referral_submitted().client_ref();
      const std::string value = envelope.SerializeAsString();
      RdKafka::ErrorCode err = producer->produce(
          topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0,
          reinterpret_cast<void*>(static_cast<intptr_t>(index)));
      while (err == RdKafka::ERR__QUEUE_FULL) {
        producer->poll(10);
        err = producer->produce(topic, RdKafka::Topic::PARTITION_UA,
                                RdKafka::Producer::RK_MSG_COPY, const_cast<char*>(value.data()),
                                value.size(), key.data(), key.size(), 0,
                                reinterpret_cast<void*>(static_cast<intptr_t>(index)));
      }
      ASSERT_EQ(err, RdKafka::ERR_NO_ERROR) << RdKafka::err2str(err);
      if (t == kAbortedTransaction) {
        aborted.insert(index);
      }
    }
    if (t == kAbortedTransaction) {
      // Abort only after the writes are delivered (librdkafka #4849), so they are really in the
      // log and a consumer that ignored the abort marker would see them.
      ASSERT_EQ(producer->flush(30'000), RdKafka::ERR_NO_ERROR);
      txn_error.reset(producer->abort_transaction(-1));
    } else {
      txn_error.reset(producer->commit_transaction(-1));
    }
    ASSERT_EQ(txn_error, nullptr) << txn_error->str();
    producer->poll(0);
  }
  ASSERT_EQ(producer->flush(30'000), RdKafka::ERR_NO_ERROR);
  ASSERT_EQ(deliveries.failed, 0);

  // Expected: per partition, the committed events in offset order.
  std::map<int32_t, std::vector<std::string>> expected;
  int delivered = 0;
  for (const auto& [partition, by_offset] : deliveries.delivered) {
    for (const auto& [offset, index] : by_offset) {
      ++delivered;
      if (!aborted.contains(index)) {
        expected[partition].push_back("evt-" + std::to_string(index));
      }
    }
  }
  ASSERT_EQ(delivered, kTransactions * kPerTransaction);
  ASSERT_EQ(static_cast<int>(expected.size()), kPartitions) << "keys should spread over partitions";

  const auto committed = ConsumeAll(*base, topic, "read_committed");
  int committed_count = 0;
  for (const auto& [partition, ids] : committed) {
    SCOPED_TRACE(::testing::Message() << "partition " << partition);
    EXPECT_EQ(ids, expected[partition]);
    committed_count += static_cast<int>(ids.size());
  }
  EXPECT_EQ(committed_count, (kTransactions - 1) * kPerTransaction);

  // The aborted records are physically in the log: a read_uncommitted consumer sees all 10,000.
  const auto everything = ConsumeAll(*base, topic, "read_uncommitted");
  int total = 0;
  for (const auto& [partition, ids] : everything) {
    total += static_cast<int>(ids.size());
  }
  EXPECT_EQ(total, kTransactions * kPerTransaction);
}

}  // namespace
}  // namespace signpost

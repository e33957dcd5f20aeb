// SPDX-License-Identifier: Apache-2.0
// The transactional producer's error handling, on librdkafka's in-process mock cluster (the only
// place Signpost uses it: injecting broker errors a real broker will not produce on demand).
#include "services/kafka/txn_producer.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "librdkafka/rdkafka.h"
#include "librdkafka/rdkafka_mock.h"  // after rdkafka.h, as it requires

namespace signpost::services {
namespace {

// Kafka protocol API keys (rdkafka_protocol.h is not installed by Debian).
constexpr std::int16_t kProduce = 0;
constexpr std::int16_t kAddPartitionsToTxn = 24;
constexpr std::int16_t kEndTxn = 26;

class TxnProducerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = TxnProducer::Create({{"test.mock.num.brokers", "3"},
                                  {"bootstrap.servers", "mock"},
                                  {"transaction.timeout.ms", "10000"},
                                  {"message.timeout.ms", "5000"}},
                                 "txn-test", 20'000);
    ASSERT_TRUE(p.ok()) << p.status();
    producer_ = std::move(*p);
    cluster_ = rd_kafka_handle_mock_cluster(producer_->producer().c_ptr());
    ASSERT_NE(cluster_, nullptr);
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, "t", 2, 3), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  TxnResult OneTransaction(std::string& why) {
    EXPECT_TRUE(producer_->Begin().ok());
    EXPECT_TRUE(producer_->Produce("t", "key", "value").ok());
    return producer_->SendOffsetsAndCommit({}, nullptr, why);
  }

  std::unique_ptr<TxnProducer> producer_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

TEST_F(TxnProducerTest, CommitsAPlainTransaction) {
  std::string why;
  EXPECT_EQ(OneTransaction(why), TxnResult::kOk) << why;
  EXPECT_FALSE(producer_->open());
}

TEST_F(TxnProducerTest, RetriableCommitErrorsAreRetriedUntilTheCommitSucceeds) {
  rd_kafka_mock_push_request_errors(cluster_, kEndTxn, 4, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                    RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                    RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  std::string why;
  EXPECT_EQ(OneTransaction(why), TxnResult::kOk) << why;
  EXPECT_EQ(OneTransaction(why), TxnResult::kOk) << "and the next transaction works";
}

TEST_F(TxnProducerTest, AbortableErrorsAbortAndTheNextTransactionWorks) {
  rd_kafka_mock_push_request_errors(cluster_, kAddPartitionsToTxn, 1,
                                    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  std::string why;
  EXPECT_EQ(OneTransaction(why), TxnResult::kAborted);
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(producer_->open());
  EXPECT_EQ(OneTransaction(why), TxnResult::kOk) << why;
}

TEST_F(TxnProducerTest, AFencedProducerIsFatal) {
  rd_kafka_mock_push_request_errors(cluster_, kEndTxn, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  std::string why;
  EXPECT_EQ(OneTransaction(why), TxnResult::kFatal);
  EXPECT_FALSE(why.empty());
  EXPECT_TRUE(producer_->fenced());
  EXPECT_FALSE(producer_->outlived_timeout()) << "a young transaction was fenced by an instance";
  // The fenced producer takes no more work: Begin and Produce do nothing, the commit says why.
  EXPECT_TRUE(producer_->Begin().ok());
  EXPECT_TRUE(producer_->Produce("t", "k", "v").ok());
  EXPECT_EQ(producer_->SendOffsetsAndCommit({}, nullptr, why), TxnResult::kFatal);
  EXPECT_TRUE(producer_->fenced());
}

TEST(TxnProducerTimeoutTest, AFenceAfterTheTransactionTimeoutMayBeTheCoordinators) {
  auto p = TxnProducer::Create({{"test.mock.num.brokers", "1"},
                                {"bootstrap.servers", "mock"},
                                {"transaction.timeout.ms", "1000"},
                                {"message.timeout.ms", "1000"}},
                               "txn-timeout-test", 20'000);
  ASSERT_TRUE(p.ok()) << p.status();
  rd_kafka_mock_cluster_t* cluster = rd_kafka_handle_mock_cluster((*p)->producer().c_ptr());
  ASSERT_EQ(rd_kafka_mock_topic_create(cluster, "t", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE((*p)->Begin().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // open longer than the timeout
  ASSERT_TRUE((*p)->Produce("t", "key", "value").ok());
  rd_kafka_mock_push_request_errors(cluster, kEndTxn, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
  std::string why;
  EXPECT_EQ((*p)->SendOffsetsAndCommit({}, nullptr, why), TxnResult::kFatal);
  EXPECT_TRUE((*p)->fenced());
  EXPECT_TRUE((*p)->outlived_timeout());
}

TEST_F(TxnProducerTest, AnInvalidEpochIsFatal) {
  rd_kafka_mock_push_request_errors(cluster_, kEndTxn, 1, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
  std::string why;
  EXPECT_EQ(OneTransaction(why), TxnResult::kFatal);
}

TEST_F(TxnProducerTest, ProduceErrorsThatExhaustRetriesFailTheTransaction) {
  // Every produce attempt fails until the message times out: the commit must not succeed.
  rd_kafka_mock_push_request_errors(cluster_, kProduce, 200,
                                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
  std::string why;
  const TxnResult r = OneTransaction(why);
  EXPECT_NE(r, TxnResult::kOk) << "a lost record never commits silently";
}

TEST_F(TxnProducerTest, AbortOfAnEmptyTransactionIsClean) {
  ASSERT_TRUE(producer_->Begin().ok());
  std::string why;
  EXPECT_EQ(producer_->Abort(why), TxnResult::kAborted) << why;
  EXPECT_EQ(OneTransaction(why), TxnResult::kOk) << why;
}

}  // namespace
}  // namespace signpost::services

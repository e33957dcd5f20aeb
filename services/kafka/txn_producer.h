// SPDX-License-Identifier: Apache-2.0
// A transactional producer with librdkafka's error classes handled as its documentation asks:
// retriable errors retry the same call, abortable ones abort, fatal ones (fenced) end it;
// commit and abort always with timeout -1; delivery failures fail the transaction.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/kafka/client_config.h"

namespace signpost::services {

enum class TxnResult {
  kOk,
  kAborted,  // the transaction was aborted: rewind the consumer and drop staged state
  kFatal,    // the producer cannot go on (fenced by a newer instance, or broken): exit
};

// Not thread-safe; one loop owns it.
class TxnProducer {
 public:
  // `properties` must name bootstrap.servers; exactly-once settings are added. Blocks in
  // init_transactions (fencing any older producer with the same transactional id).
  // Returns kInvalidArgument for bad properties, kUnavailable when the cluster does not answer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<TxnProducer>> Create(
      const KafkaProperties& properties, const std::string& transactional_id,
      int init_timeout_ms = 60'000);

  // Begins a transaction unless one is open. Once the producer has a fatal error (fenced, or
  // broken), Begin and Produce succeed without effect and SendOffsetsAndCommit reports it.
  [[nodiscard]] absl::Status Begin();
  [[nodiscard]] bool open() const { return open_; }

  // Produces within the open transaction, waiting while the local queue is full.
  // `headers` (may be null) is owned by the call.
  [[nodiscard]] absl::Status Produce(const std::string& topic, std::string_view key,
                                     std::string_view value, RdKafka::Headers* headers = nullptr,
                                     std::int32_t partition = RdKafka::Topic::PARTITION_UA);

  // Adds `offsets` (next offset to consume, per partition) for `consumer`'s group and commits.
  // `why` says what went wrong when the result is not kOk.
  [[nodiscard]] TxnResult SendOffsetsAndCommit(const std::vector<RdKafka::TopicPartition*>& offsets,
                                               RdKafka::KafkaConsumer* consumer, std::string& why);

  // Aborts the open transaction, after letting in-flight records settle (librdkafka #4849).
  [[nodiscard]] TxnResult Abort(std::string& why);

  // After kFatal: whether a newer producer with the same transactional id fenced this one (the
  // process must stop), as opposed to a broken producer that a new one can replace.
  [[nodiscard]] bool fenced() const { return fenced_; }
  // After kFatal with fenced(): whether the failed transaction had been open for at least
  // transaction.timeout.ms, so the coordinator may have aborted it and bumped the epoch itself
  // (KIP-588) rather than a newer instance fencing this one.
  [[nodiscard]] bool outlived_timeout() const { return outlived_timeout_; }

  [[nodiscard]] RdKafka::Producer& producer() { return *producer_; }

 private:
  struct Reports : RdKafka::DeliveryReportCb {
    void dr_cb(RdKafka::Message& m) override;
    int failed = 0;
  };

  TxnProducer() = default;
  TxnResult Fail(const RdKafka::Error& e, std::string& why);
  void Classify(const RdKafka::Error& e);  // sets fenced_ and outlived_timeout_
  // The producer's handle of topic `name`, made at its first record; null if it cannot be.
  RdKafka::Topic* TopicHandle(const std::string& name);

  Reports reports_;
  std::unique_ptr<RdKafka::Producer> producer_;
  // After producer_: destroyed before it. A few topics, so a vector.
  std::vector<std::pair<std::string, std::unique_ptr<RdKafka::Topic>>> topics_;
  bool open_ = false;
  bool fenced_ = false;
  bool outlived_timeout_ = false;
  std::chrono::steady_clock::time_point begun_at_;
  std::chrono::milliseconds transaction_timeout_{0};
};

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
#include "services/kafka/txn_producer.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "router/base/status_macros.h"

namespace signpost::services {

void TxnProducer::Reports::dr_cb(RdKafka::Message& m) {
  if (m.err() != RdKafka::ERR_NO_ERROR) {
    ++failed;
  }
}

absl::StatusOr<std::unique_ptr<TxnProducer>> TxnProducer::Create(
    const KafkaProperties& properties, const std::string& transactional_id, int init_timeout_ms) {
  KafkaProperties props = properties;
  props["transactional.id"] = transactional_id;
  props["enable.idempotence"] = "true";
  props.try_emplace("acks", "all");
  props.try_emplace("linger.ms", "5");
  props.try_emplace("transaction.timeout.ms", "30000");
  props.try_emplace("message.timeout.ms", "25000");
  props.try_emplace("partitioner", "murmur2_random");  // as Java clients: same key, same partition
  SIGNPOST_ASSIGN_OR_RETURN(auto conf, MakeClientConf(props));
  auto p = std::unique_ptr<TxnProducer>(new TxnProducer());
  std::int64_t timeout_ms = 30'000;
  static_cast<void>(absl::SimpleAtoi(props["transaction.timeout.ms"], &timeout_ms));
  p->transaction_timeout_ = std::chrono::milliseconds(timeout_ms);
  std::string error;
  if (conf->set("dr_cb", &p->reports_, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  p->producer_.reset(RdKafka::Producer::create(conf.get(), error));
  if (p->producer_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", error));
  }
  std::unique_ptr<RdKafka::Error> e(p->producer_->init_transactions(init_timeout_ms));
  if (e != nullptr) {
    return absl::UnavailableError(absl::StrCat("init_transactions: ", e->str()));
  }
  return p;
}

absl::Status TxnProducer::Begin() {
  if (open_) {
    return absl::OkStatus();
  }
  std::unique_ptr<RdKafka::Error> e(producer_->begin_transaction());
  if (e != nullptr && e->is_fatal()) {
    return absl::OkStatus();  // as in Produce: the commit reports it
  }
  if (e != nullptr) {
    return absl::InternalError(absl::StrCat("begin_transaction: ", e->str()));
  }
  open_ = true;
  begun_at_ = std::chrono::steady_clock::now();
  reports_.failed = 0;
  return absl::OkStatus();
}

absl::Status TxnProducer::Produce(const std::string& topic, std::string_view key,
                                  std::string_view value, RdKafka::Headers* headers,
                                  std::int32_t partition) {
  // Without headers, through the topic's handle: by name, librdkafka looks the topic up (under
  // its handle's write lock) for every record.
  RdKafka::Topic* handle = headers == nullptr ? TopicHandle(topic) : nullptr;
  while (true) {
    const RdKafka::ErrorCode err =
        handle != nullptr
            ? producer_->produce(handle, partition, RdKafka::Producer::RK_MSG_COPY,
                                 const_cast<char*>(value.data()), value.size(),
                                 key.empty() ? nullptr : key.data(), key.size(), nullptr)
            : producer_->produce(topic, partition, RdKafka::Producer::RK_MSG_COPY,
                                 const_cast<char*>(value.data()), value.size(),
                                 key.empty() ? nullptr : key.data(), key.size(), 0, headers,
                                 nullptr);
    if (err == RdKafka::ERR_NO_ERROR) {
      return absl::OkStatus();
    }
    if (err == RdKafka::ERR__FATAL) {
      // The producer is fenced or broken: this transaction can never commit, so the record is
      // dropped with it. The commit that ends the batch reports the error (kFatal, fenced()),
      // and the caller rewinds and replays the batch.
      delete headers;
      return absl::OkStatus();
    }
    if (err != RdKafka::ERR__QUEUE_FULL) {
      delete headers;
      return absl::UnavailableError(absl::StrCat("produce: ", RdKafka::err2str(err)));
    }
    producer_->poll(10);
  }
}

RdKafka::Topic* TxnProducer::TopicHandle(const std::string& name) {
  for (const auto& [known, handle] : topics_) {
    if (known == name) {
      return handle.get();
    }
  }
  std::string error;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(producer_.get(), name, nullptr, error));
  if (handle == nullptr) {
    return nullptr;  // produced by name, which reports the error
  }
  topics_.emplace_back(name, std::move(handle));
  return topics_.back().second.get();
}

TxnResult TxnProducer::SendOffsetsAndCommit(const std::vector<RdKafka::TopicPartition*>& offsets,
                                            RdKafka::KafkaConsumer* consumer, std::string& why) {
  if (!offsets.empty() && consumer != nullptr) {
    std::unique_ptr<RdKafka::ConsumerGroupMetadata> metadata(consumer->groupMetadata());
    while (true) {
      std::unique_ptr<RdKafka::Error> e(
          producer_->send_offsets_to_transaction(offsets, metadata.get(), -1));
      if (e == nullptr) {
        break;
      }
      if (!e->is_retriable()) {
        return Fail(*e, why);
      }
    }
  }
  while (true) {
    std::unique_ptr<RdKafka::Error> e(producer_->commit_transaction(-1));
    if (e == nullptr) {
      break;
    }
    if (!e->is_retriable()) {
      return Fail(*e, why);
    }
    // Retriable (e.g. timed out): the commit goes on in the background; resume it.
  }
  open_ = false;
  producer_->poll(0);
  if (reports_.failed > 0) {
    why = "a record of the committed transaction failed delivery";
    return TxnResult::kFatal;
  }
  return TxnResult::kOk;
}

TxnResult TxnProducer::Abort(std::string& why) {
  if (!open_) {
    return TxnResult::kAborted;
  }
  producer_->flush(5'000);
  std::unique_ptr<RdKafka::Error> e(producer_->abort_transaction(-1));
  if (e != nullptr && e->is_fatal()) {
    why = e->str();
    Classify(*e);
    open_ = false;
    return TxnResult::kFatal;
  }
  open_ = false;
  return TxnResult::kAborted;
}

void TxnProducer::Classify(const RdKafka::Error& e) {
  fenced_ = e.code() == RdKafka::ERR__FENCED || e.code() == RdKafka::ERR_PRODUCER_FENCED ||
            e.code() == RdKafka::ERR_INVALID_PRODUCER_EPOCH;
  outlived_timeout_ = fenced_ && open_ &&
                      std::chrono::steady_clock::now() - begun_at_ >= transaction_timeout_;
}

TxnResult TxnProducer::Fail(const RdKafka::Error& e, std::string& why) {
  why = e.str();
  Classify(e);
  if (e.is_fatal()) {
    return TxnResult::kFatal;  // fenced by a newer instance, or the producer is broken
  }
  if (e.txn_requires_abort()) {
    std::string abort_why;
    const TxnResult aborted = Abort(abort_why);
    if (aborted == TxnResult::kFatal) {
      why = absl::StrCat(why, "; abort: ", abort_why);
    }
    return aborted;
  }
  return TxnResult::kFatal;  // unknown errors are treated as fatal
}

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
#include "services/kafka/group_consumer.h"

#include "spdlog/spdlog.h"

namespace signpost::services {
namespace {

// librdkafka 2.3.0 fixed the assertion: from it on a consumer closes and is destroyed at once.
bool AbortsOnEarlyDestroy() { return RdKafka::version() < 0x02030000; }

}  // namespace

void AssignmentWatch::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                                   std::vector<RdKafka::TopicPartition*>& partitions) {
  const bool assign = err == RdKafka::ERR__ASSIGN_PARTITIONS;
  assigned_once_ = assigned_once_ || assign;
  if (inner_ != nullptr) {
    inner_->rebalance_cb(consumer, err, partitions);
    return;
  }
  std::string failure;
  if (consumer->rebalance_protocol() == "COOPERATIVE") {
    std::unique_ptr<RdKafka::Error> e(assign ? consumer->incremental_assign(partitions)
                                             : consumer->incremental_unassign(partitions));
    if (e != nullptr) {
      failure = e->str();
    }
  } else if (RdKafka::ErrorCode e = assign ? consumer->assign(partitions) : consumer->unassign();
             e != RdKafka::ERR_NO_ERROR) {
    failure = RdKafka::err2str(e);
  }
  if (!failure.empty()) {
    spdlog::warn("{} of {} partitions failed: {}", assign ? "assignment" : "revocation",
                 partitions.size(), failure);
  }
}

void GroupConsumerCloser::operator()(RdKafka::KafkaConsumer* consumer) const {
  if (consumer == nullptr) {
    return;
  }
  std::vector<std::string> topics;
  const bool due = AbortsOnEarlyDestroy() && watch_ != nullptr && !watch_->assigned_once() &&
                   consumer->subscription(topics) == RdKafka::ERR_NO_ERROR && !topics.empty();
  if (due) {
    // The owner is done with it: whatever arrives now is applied here and closed below.
    watch_->Detach();
    std::string reason;
    const auto deadline = std::chrono::steady_clock::now() + first_assignment_wait_;
    while (!watch_->assigned_once() && consumer->fatal_error(reason) == RdKafka::ERR_NO_ERROR &&
           std::chrono::steady_clock::now() < deadline) {
      std::unique_ptr<RdKafka::Message> dropped(consumer->consume(100));  // never processed
    }
  }
  consumer->close();
  if (due && !watch_->assigned_once()) {
    spdlog::warn("consumer closed before its first assignment; its handle is left to the process "
                 "exit, since librdkafka {} aborts destroying it (librdkafka issue 4312)",
                 RdKafka::version_str());
    return;
  }
  delete consumer;
}

void CloseGroupConsumer(GroupConsumer& consumer) {
  if (consumer != nullptr) {
    consumer.get_deleter()(consumer.get());
    static_cast<void>(consumer.release());
  }
}

GroupConsumer CreateGroupConsumer(RdKafka::Conf& conf, RdKafka::RebalanceCb* rebalance,
                                  std::chrono::milliseconds first_assignment_wait,
                                  std::string& error) {
  auto watch = std::make_shared<AssignmentWatch>(rebalance);
  if (conf.set("rebalance_cb", watch.get(), error) != RdKafka::Conf::CONF_OK) {
    return nullptr;
  }
  return GroupConsumer(RdKafka::KafkaConsumer::create(&conf, error),
                       GroupConsumerCloser(std::move(watch), first_assignment_wait));
}

}  // namespace signpost::services

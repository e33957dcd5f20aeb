// SPDX-License-Identifier: Apache-2.0
// Consumer-group members that close without tripping librdkafka 2.0.2's assignor assertion.
//
// librdkafka before 2.3 aborts the process (`rd_kafka_sticky_assignor_state_destroy: Assertion
// 'assignor_state' failed`, confluentinc/librdkafka#4312) when a cooperative-sticky consumer is
// destroyed after its group chose the assignor but before its first assignment arrived: a router
// stopped soon after joining its group died with SIGABRT instead of exiting 0. A GroupConsumer
// watches the rebalance callbacks; when it is closed before its first assignment it keeps
// serving the group until that assignment arrives (bounded), and if it never does it closes the
// consumer but does not destroy the handle (the process is about to exit, or the stage replaces
// a broken consumer, which is rare and bounded by a budget).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "librdkafka/rdkafkacpp.h"

namespace signpost::services {

// Sees every rebalance first: remembers whether any assignment has arrived, then hands the
// callback to `inner` or, without one (or while the consumer is being closed), applies the
// assignment change itself, eagerly or incrementally as the group's protocol requires.
class AssignmentWatch : public RdKafka::RebalanceCb {
 public:
  explicit AssignmentWatch(RdKafka::RebalanceCb* inner) : inner_(inner) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override;

  [[nodiscard]] bool assigned_once() const { return assigned_once_; }
  // From now on the watch applies assignment changes itself; `inner` is not called again.
  void Detach() { inner_ = nullptr; }

 private:
  RdKafka::RebalanceCb* inner_;
  bool assigned_once_ = false;
};

// Closes the consumer (leaving its group) and destroys it; see the file comment for a consumer
// closed before its first assignment.
class GroupConsumerCloser {
 public:
  GroupConsumerCloser() = default;
  GroupConsumerCloser(std::shared_ptr<AssignmentWatch> watch,
                      std::chrono::milliseconds first_assignment_wait)
      : watch_(std::move(watch)), first_assignment_wait_(first_assignment_wait) {}

  void operator()(RdKafka::KafkaConsumer* consumer) const;

  [[nodiscard]] const AssignmentWatch* watch() const { return watch_.get(); }

 private:
  std::shared_ptr<AssignmentWatch> watch_;  // outlives the handle, which points at it
  std::chrono::milliseconds first_assignment_wait_{0};
};

using GroupConsumer = std::unique_ptr<RdKafka::KafkaConsumer, GroupConsumerCloser>;

// Closes and destroys `consumer` like resetting it would (destroy its messages first: librdkafka
// waits for every message still referenced before it destroys the handle), but `consumer` still points at the
// consumer while it closes, so the owner's rebalance callback (revocations during the close) can
// reach it through its member as at any other time.
void CloseGroupConsumer(GroupConsumer& consumer);

// Creates a consumer from `conf` (which must not carry a rebalance_cb) whose rebalances go
// through an AssignmentWatch to `rebalance` (nullptr: assignments are applied as they come).
// Resetting or destroying the result closes the consumer. `first_assignment_wait` bounds how
// long closing waits for a first assignment that is still due.
// Returns nullptr and sets `error` when librdkafka refuses the configuration.
[[nodiscard]] GroupConsumer CreateGroupConsumer(RdKafka::Conf& conf,
                                                RdKafka::RebalanceCb* rebalance,
                                                std::chrono::milliseconds first_assignment_wait,
                                                std::string& error);

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
// Signpost's topics (architecture section 2) and creating them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "services/kafka/client_config.h"

namespace signpost::services {

inline constexpr char kIntakeTopic[] = "signpost.intake.v1";
inline constexpr char kLogTopic[] = "signpost.log.v1";
inline constexpr char kDecisionsTopic[] = "signpost.decisions.v1";
inline constexpr char kDlqTopic[] = "signpost.dlq.v1";

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;
  KafkaProperties config;  // topic configs, e.g. {"retention.ms", "-1"}
};

// Signpost's four topics with `partitions` each; the log is retained forever (it is the record).
[[nodiscard]] std::vector<TopicSpec> SignpostTopics(int partitions, int replication_factor);

// Creates `topics` through the cluster at `client` properties (bootstrap.servers at least).
// Topics that already exist are left as they are and count as success.
// Returns kInvalidArgument for bad properties, kUnavailable when the cluster does not answer
// within `timeout_ms`, kInternal with the broker's reason for any other refusal.
[[nodiscard]] absl::Status CreateTopics(const KafkaProperties& client,
                                        const std::vector<TopicSpec>& topics, int timeout_ms);

}  // namespace signpost::services

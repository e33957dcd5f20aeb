// SPDX-License-Identifier: Apache-2.0
// Access to the real broker that the ctest fixture `kafka_broker` starts with scripts/kafka.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "services/kafka/client_config.h"

namespace signpost::testing {

// "127.0.0.1:<port>" of the fixture's broker, read from $SIGNPOST_BROKER_DIR/port. Returns
// kFailedPrecondition when there is none: callers fail the test, they never skip it.
[[nodiscard]] absl::StatusOr<std::string> TestBrokerBootstrap();

// Client properties for the fixture's broker (bootstrap.servers and test-friendly timeouts).
[[nodiscard]] absl::StatusOr<services::KafkaProperties> TestClientProperties();

// A topic, group or transactional id unique to this process and call, e.g. "txn-1234-3".
[[nodiscard]] std::string UniqueName(std::string_view prefix);

}  // namespace signpost::testing

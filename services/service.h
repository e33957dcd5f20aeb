// SPDX-License-Identifier: Apache-2.0
// The router service: the intake stage (signpost.intake.v1 -> validated log or DLQ) and the
// routing stage (signpost.log.v1 -> routing core -> decisions), each a consume-transform-produce
// loop with Kafka transactions, plus the HTTP endpoints (metrics, health, queries).
#pragma once

#include <atomic>
#include <memory>

#include "absl/status/status.h"
#include "services/config.h"

namespace signpost::services {

// Runs both stages until `stop` is set (SIGTERM), then finishes the batch, commits and leaves
// the group. Returns non-OK when the process must exit non-zero: a fatal Kafka error (fenced by
// a newer instance), a storage error, or a configuration the broker refuses.
[[nodiscard]] absl::Status RunService(const ServiceConfig& config, const std::atomic<bool>& stop);

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
// Operator control events: a rules change, a pod change (status, capacity, daily intake) and a
// client erasure, built and checked here, then published to the intake topic like any input.
// They reach the routers through the log, so replay applies them at the same position again.
// Used by `signpost rules apply`, `signpost pod` and `signpost erase`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "services/kafka/client_config.h"
#include "signpost/v1/envelope.pb.h"

namespace signpost::services {

// A RulesChanged event carrying the rules file at `path`, for `domain` (empty: the intake stage
// resolves it, which works for single-domain deployments). The file is loaded with the router's
// own loader first: an invalid file is kInvalidArgument naming the file, line and field, and is
// never published. The event's version is the file's `version`.
[[nodiscard]] absl::StatusOr<v1::Envelope> RulesChangeEvent(const std::string& path,
                                                            const std::string& domain,
                                                            std::int64_t now_ms);

struct PodChange {
  std::string pod_id;
  std::string status;  // "open", "paused" or "closed"; empty: unchanged
  std::optional<std::uint32_t> capacity;
  std::optional<std::uint32_t> daily_intake;
  std::string domain;  // empty: found by the intake stage from the pod id
};
// kInvalidArgument for an empty or over-long pod id, an unknown status, or no change at all.
[[nodiscard]] absl::StatusOr<v1::Envelope> PodChangeEvent(const PodChange& change,
                                                          std::int64_t now_ms);

// kInvalidArgument for an empty or over-long client ref. Without a domain the intake stage
// writes the erasure to every domain.
[[nodiscard]] absl::StatusOr<v1::Envelope> ErasureEvent(const std::string& client_ref,
                                                        const std::string& basis,
                                                        const std::string& domain,
                                                        std::int64_t now_ms);

struct Published {
  int partition = 0;
  std::int64_t offset = 0;
};
// Produces `event` to `topic` with an idempotent producer (acks=all) and waits for the broker's
// acknowledgement (up to `timeout_ms`). The key is the event's domain, or "control": never a
// client ref. kInvalidArgument (bad client properties) or kNotFound (no such topic): nothing was
// sent; kUnavailable or kDeadlineExceeded: the event may or may not have been published.
[[nodiscard]] absl::StatusOr<Published> PublishControl(const KafkaProperties& kafka,
                                                       const std::string& topic,
                                                       const v1::Envelope& event,
                                                       int timeout_ms = 30'000);

}  // namespace signpost::services

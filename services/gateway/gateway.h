// SPDX-License-Identifier: Apache-2.0
// signpost-gateway: the HTTP and FHIR front door for integrators. A request is answered 202
// only after the broker has acknowledged every record it produced (idempotent producer,
// acks=all); anything invalid is refused with every bad field named and nothing is produced.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/gateway/config.h"

namespace signpost::services::gateway {

// A route the server answers: method and path template ("/v1/referrals/{id}").
struct Route {
  std::string method;
  std::string path;
  friend auto operator<=>(const Route&, const Route&) = default;
};

class Gateway {
 public:
  // Connects the producer, starts serving. kInvalidArgument for bad files or keys,
  // kUnavailable when the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayConfig config);
  // Drains: refuses new requests (503), waits for pending acks up to the delivery timeout,
  // then stops.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  [[nodiscard]] int port() const;
  // Every route the server registers (the OpenAPI document must list exactly these).
  [[nodiscard]] static const std::vector<Route>& Routes();

  struct Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace signpost::services::gateway

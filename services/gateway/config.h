// SPDX-License-Identifier: Apache-2.0
// signpost-gateway's configuration: one YAML file, then SIGNPOST_GATEWAY_* environment
// variables, then --set flags (the convention of services/config_fields.h), plus the
// integrators file (who may call, as token hashes with scopes) and the concept map.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/kafka/client_config.h"
#include "signpost/v1/common.pb.h"

namespace signpost::services::gateway {

enum Scope : unsigned {
  kSubmit = 1,   // POST referrals (JSON and FHIR)
  kRespond = 2,  // POST pod responses
  kRead = 4,     // GET referral status
};

struct Integrator {
  std::string id;            // stamped on every event it sends; a metric label
  std::string token_sha256;  // hex SHA-256 of its bearer token; the token itself is never stored
  unsigned scopes = 0;
  v1::Source source = v1::SOURCE_GP_PRACTICE;
  std::string org;                     // ODS code of the organisation, when known
  std::vector<v1::ConsentScope> consent;  // consent its referral process records
  std::vector<std::string> pods;       // with kRespond: the pods it may answer for; empty: any
};

struct GatewayConfig {
  std::string listen = "127.0.0.1:8080";
  int threads = 2;
  std::string intake_topic = "signpost.intake.v1";
  KafkaProperties kafka;
  std::int64_t max_body_bytes = 1 << 20;
  std::int64_t delivery_timeout_ms = 10'000;  // longer without the broker's ack: 503
  std::int64_t max_in_flight = 50'000;        // requests awaiting an ack; beyond: 503
  std::string router_url;                     // host:port of the router's query API
  std::string pseudonym_key;                  // 64 hex digits; secret
  std::string concept_map_file;
  std::string integrators_file;
  std::int64_t idempotency_max_entries = 1'000'000;
  std::int64_t idempotency_ttl_s = 86'400;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::vector<Integrator> integrators;  // from integrators_file
};

// Returns kInvalidArgument naming the file and line or the field at fault.
[[nodiscard]] absl::StatusOr<GatewayConfig> LoadGatewayConfig(
    const std::string& path, const std::map<std::string, std::string>& env,
    const std::vector<std::string>& overrides);

// Parses the integrators file's text (`integrators: [{id, token_sha256, scopes, ...}]`).
[[nodiscard]] absl::StatusOr<std::vector<Integrator>> ParseIntegrators(const std::string& yaml,
                                                                       const std::string& name);

// The effective configuration as YAML with secrets masked.
[[nodiscard]] std::string PrintGatewayConfig(const GatewayConfig& config);

}  // namespace signpost::services::gateway

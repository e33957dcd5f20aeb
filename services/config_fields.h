// SPDX-License-Identifier: Apache-2.0
// The configuration convention every Signpost executable shares: one YAML file, flattened into
// dotted fields ("topics.log", "kafka.bootstrap.servers"), then environment overrides
// (<prefix>TOPICS_LOG, <prefix>KAFKA_BOOTSTRAP_SERVERS), then "field=value" flags. Unknown
// fields are errors that name the file and line; `kafka.*` passes through to librdkafka.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace signpost::services {

using ConfigFields = std::map<std::string, std::string>;

struct ConfigSchema {
  std::vector<std::string> fields;  // every known dotted field; lists are comma-separated
  std::string env_prefix;           // e.g. "SIGNPOST_"
  // Maps keyed by a name the user chooses: "domains" with leaves {"rules_file", "prefixes"}
  // accepts "domains.<name>.rules_file" and "domains.<name>.prefixes" (file and flags; the
  // environment cannot name them unambiguously).
  std::map<std::string, std::vector<std::string>> keyed;
};

// Reads `path` (empty: none), then `env`, then `overrides`, into dotted fields.
// Returns kInvalidArgument naming the file and line, the variable or the flag at fault.
[[nodiscard]] absl::StatusOr<ConfigFields> LoadConfigFields(
    const ConfigSchema& schema, const std::string& path,
    const std::map<std::string, std::string>& env, const std::vector<std::string>& overrides);

// Sets `out` from `field` when present; kInvalidArgument naming the field when it is not an
// integer in [min, max].
[[nodiscard]] absl::Status IntField(const ConfigFields& fields, const std::string& field,
                                    std::int64_t min, std::int64_t max, std::int64_t& out);
// Sets `out` from `field` when present.
void TextField(const ConfigFields& fields, const std::string& field, std::string& out);
// `true` or `false`; kInvalidArgument naming the field otherwise. Absent: `out` unchanged.
[[nodiscard]] absl::Status BoolField(const ConfigFields& fields, const std::string& field,
                                     bool& out);
// The `kafka.*` fields without their prefix.
[[nodiscard]] std::map<std::string, std::string> KafkaFields(const ConfigFields& fields);

// Whether a property's value must be masked when printed (passwords, keys, tokens).
[[nodiscard]] bool IsSecretField(const std::string& name);

// The process environment as a map.
[[nodiscard]] std::map<std::string, std::string> ProcessEnvironment();

}  // namespace signpost::services

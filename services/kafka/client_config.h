// SPDX-License-Identifier: Apache-2.0
// Building librdkafka configurations: Signpost's defaults for every client, then whatever the
// operator passes through (TLS, SASL, tuning), each property checked by librdkafka itself.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "librdkafka/rdkafkacpp.h"

namespace signpost::services {

// librdkafka properties by name, e.g. {"bootstrap.servers", "127.0.0.1:9092"}.
using KafkaProperties = std::map<std::string, std::string>;

// Properties every Signpost client gets unless the caller overrides them:
//   socket.nagle.disable=true (librdkafka < 2.10 stalls ~40 ms per transaction commit without it).
[[nodiscard]] const KafkaProperties& DefaultClientProperties();

// Returns the defaults overlaid with `properties`, as an RdKafka::Conf.
// Returns kInvalidArgument naming the property librdkafka refused; nothing else.
[[nodiscard]] absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeClientConf(
    const KafkaProperties& properties);

}  // namespace signpost::services

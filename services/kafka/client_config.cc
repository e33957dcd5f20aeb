// SPDX-License-Identifier: Apache-2.0
#include "services/kafka/client_config.h"

#include "absl/strings/str_cat.h"

namespace signpost::services {

const KafkaProperties& DefaultClientProperties() {
  static const KafkaProperties* const kDefaults = new KafkaProperties{
      {"socket.nagle.disable", "true"},
  };
  return *kDefaults;
}

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeClientConf(const KafkaProperties& properties) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  KafkaProperties merged = DefaultClientProperties();
  for (const auto& [name, value] : properties) {
    merged[name] = value;
  }
  std::string error;
  for (const auto& [name, value] : merged) {
    if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", name, ": ", error));
    }
  }
  return conf;
}

}  // namespace signpost::services

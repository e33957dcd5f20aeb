// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/kafka_test_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace signpost::testing {

absl::StatusOr<std::string> TestBrokerBootstrap() {
  const char* dir = std::getenv("SIGNPOST_BROKER_DIR");
  if (dir == nullptr || *dir == '\0') {
    return absl::FailedPreconditionError(
        "SIGNPOST_BROKER_DIR is not set: run this test through ctest, whose kafka_broker fixture "
        "starts the broker with scripts/kafka");
  }
  std::ifstream in(absl::StrCat(dir, "/port"));
  int port = 0;
  if (!(in >> port) || port <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no broker port in ", dir, "/port: did scripts/kafka start fail?"));
  }
  return absl::StrCat("127.0.0.1:", port);
}

absl::StatusOr<services::KafkaProperties> TestClientProperties() {
  absl::StatusOr<std::string> bootstrap = TestBrokerBootstrap();
  if (!bootstrap.ok()) {
    return bootstrap.status();
  }
  return services::KafkaProperties{{"bootstrap.servers", *bootstrap},
                                   {"client.id", "signpost-test"}};
}

std::string UniqueName(std::string_view prefix) {
  static std::atomic<int> counter{0};
  return absl::StrCat(absl::string_view(prefix.data(), prefix.size()), "-", getpid(), "-",
                      counter++);
}

}  // namespace signpost::testing

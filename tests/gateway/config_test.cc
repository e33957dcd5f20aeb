// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace signpost::services::gateway {
namespace {

using ::testing::HasSubstr;

const std::string kExamples = SIGNPOST_EXAMPLES;
const std::string kKey(64, 'a');

TEST(GatewayConfigTest, ExampleLoadsWithEnvironmentAndFlags) {
  absl::StatusOr<GatewayConfig> c = LoadGatewayConfig(
      kExamples + "/gateway.yaml",
      {{"SIGNPOST_GATEWAY_PSEUDONYM_KEY", kKey},
       {"SIGNPOST_GATEWAY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"}},
      {"listen=127.0.0.1:0", "concept_map_file=" + kExamples + "/concept-map.yaml",
       "integrators_file=" + kExamples + "/integrators.yaml"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen, "127.0.0.1:0");
  EXPECT_EQ(c->kafka.at("bootstrap.servers"), "127.0.0.1:9092");
  ASSERT_EQ(c->integrators.size(), 3u);
  EXPECT_EQ(c->integrators[0].scopes, unsigned{kSubmit | kRead});
  EXPECT_EQ(c->integrators[0].consent.size(), 1u);
  EXPECT_EQ(c->integrators[1].pods.size(), 2u);
  const std::string printed = PrintGatewayConfig(*c);
  EXPECT_EQ(printed.find(kKey), std::string::npos) << "the pseudonym key is masked";
  EXPECT_THAT(printed, HasSubstr("pseudonym_key: ********"));
}

TEST(GatewayConfigTest, ErrorsNameTheField) {
  const std::map<std::string, std::string> env = {
      {"SIGNPOST_GATEWAY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"}};
  auto err = [&](std::vector<std::string> overrides) {
    absl::StatusOr<GatewayConfig> c = LoadGatewayConfig("", env, overrides);
    return c.ok() ? std::string("ok") : std::string(c.status().message());
  };
  EXPECT_THAT(err({}), HasSubstr("pseudonym_key"));
  EXPECT_THAT(err({"pseudonym_key=" + kKey, "threads=0"}), HasSubstr("threads"));
  EXPECT_THAT(err({"pseudonym_key=" + kKey, "kafka.acks=1"}), HasSubstr("kafka.acks"));
  EXPECT_THAT(err({"nonsense=1"}), HasSubstr("nonsense"));
}

TEST(GatewayConfigTest, IntegratorsFileErrorsNameTheLine) {
  auto err = [](const std::string& yaml) {
    absl::StatusOr<std::vector<Integrator>> i = ParseIntegrators(yaml, "ints.yaml");
    return i.ok() ? std::string("ok") : std::string(i.status().message());
  };
  const std::string hash(64, 'b');
  EXPECT_EQ(err("integrators:\n  - id: a\n    token_sha256: " + hash + "\n    scopes: [submit]\n"),
            "ok");
  EXPECT_THAT(err("integrators:\n  - id: a\n    token_sha256: xyz\n"), HasSubstr("ints.yaml:2"));
  EXPECT_THAT(err("integrators:\n  - id: a\n    token_sha256: " + hash + "\n    scopes: [admin]\n"),
              HasSubstr("unknown scope admin"));
  EXPECT_THAT(err("integrators:\n  - id: a\n    token_sha256: " + hash + "\n    source: fax\n"),
              HasSubstr("unknown source"));
  EXPECT_THAT(err("integrators:\n  - id: a\n    token_sha256: " + hash + "\n    colour: red\n"),
              HasSubstr("colour"));
  EXPECT_THAT(err("integrators:\n  - {id: a, token_sha256: " + hash + "}\n  - {id: a, token_sha256: " +
                  hash + "}\n"),
              HasSubstr("unique"));
}

}  // namespace
}  // namespace signpost::services::gateway

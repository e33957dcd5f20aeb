// SPDX-License-Identifier: Apache-2.0
#include "services/kafka/client_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace signpost::services {
namespace {

std::string Get(RdKafka::Conf& conf, const std::string& name) {
  std::string value;
  EXPECT_EQ(conf.get(name, value), RdKafka::Conf::CONF_OK) << name;
  return value;
}

TEST(ClientConfigTest, DisablesNagleByDefault) {
  auto conf = MakeClientConf({{"bootstrap.servers", "127.0.0.1:1"}});
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(Get(**conf, "socket.nagle.disable"), "true");
  EXPECT_EQ(Get(**conf, "bootstrap.servers"), "127.0.0.1:1");
}

TEST(ClientConfigTest, CallerOverridesDefaults) {
  auto conf = MakeClientConf({{"socket.nagle.disable", "false"}});
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(Get(**conf, "socket.nagle.disable"), "false");
}

TEST(ClientConfigTest, UnknownPropertyIsNamedInTheError) {
  auto conf = MakeClientConf({{"bootstrap.servrs", "x"}});
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(conf.status().message()), ::testing::HasSubstr("bootstrap.servrs"));
}

}  // namespace
}  // namespace signpost::services

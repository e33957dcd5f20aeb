// SPDX-License-Identifier: Apache-2.0
#include "services/config.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace signpost::services {
namespace {

using ::testing::HasSubstr;

std::string Write(const std::string& text) {
  char path[] = "/tmp/signpost-config-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, LoadsTheDemoConfigWithAnEnvironmentOverride) {
  auto c = LoadServiceConfig(SIGNPOST_DEMO_CONFIG,
                             {{"SIGNPOST_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"},
                              {"SIGNPOST_DATA_DIR", "/var/lib/signpost"},
                              {"SIGNPOST_BROKER_DIR", "ignored: not a config field"}},
                             {"batch.max_ms=50"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kafka.at("bootstrap.servers"), "127.0.0.1:19092");
  EXPECT_EQ(c->data_dir, "/var/lib/signpost");
  EXPECT_EQ(c->batch_max_ms, 50);
  EXPECT_EQ(c->domain, "banes");
  EXPECT_EQ(c->domain_prefixes.size(), 6u);
}

TEST(ConfigTest, UnknownFieldNamesFileAndLine) {
  const std::string path = Write("rules_file: r.yaml\nbatch:\n  max_recrods: 10\n");
  auto c = LoadServiceConfig(path, {}, {"kafka.bootstrap.servers=x:1"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(":3: batch.max_recrods: unknown field"));
  std::remove(path.c_str());
}

TEST(ConfigTest, ValuesAreChecked) {
  EXPECT_THAT(std::string(LoadServiceConfig("", {}, {"kafka.bootstrap.servers=x:1"})
                              .status()
                              .message()),
              HasSubstr("rules_file: is required"));
  EXPECT_THAT(std::string(LoadServiceConfig("", {}, {"rules_file=r", "batch.max_ms=soon",
                                                     "kafka.bootstrap.servers=x:1"})
                              .status()
                              .message()),
              HasSubstr("batch.max_ms: must be an integer"));
  EXPECT_THAT(std::string(LoadServiceConfig("", {}, {"rules_file=r", "kafka.bootstrap.servers=x:1",
                                                     "kafka.enable.auto.commit=true"})
                              .status()
                              .message()),
              HasSubstr("kafka.enable.auto.commit: set by Signpost"));
  EXPECT_THAT(std::string(LoadServiceConfig("", {}, {"rules_file=r", "kafka.bootstrap.servers=x:1",
                                                     "kafka.no.such.thing=1"})
                              .status()
                              .message()),
              HasSubstr("no.such.thing"));
}

TEST(ConfigTest, PrintingMasksSecrets) {
  auto c = LoadServiceConfig("", {}, {"rules_file=r", "kafka.bootstrap.servers=x:1",
                                      "kafka.sasl.password=hunter2", "kafka.security.protocol=SASL_SSL",
                                      "kafka.sasl.mechanism=PLAIN", "kafka.sasl.username=u"});
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string printed = PrintServiceConfig(*c);
  EXPECT_THAT(printed, HasSubstr("sasl.password: ********"));
  EXPECT_EQ(printed.find("hunter2"), std::string::npos);
  EXPECT_THAT(printed, HasSubstr("sasl.username: u"));
}

}  // namespace
}  // namespace signpost::services

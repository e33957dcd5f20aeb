// SPDX-License-Identifier: Apache-2.0
#include "services/config.h"
#include "services/service.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

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

// Behind a backlog of two normal batches (by default), a stage's batches grow to the catch-up
// limits and end once nothing more waits; otherwise they take what arrives up to the normal
// limits.
TEST(BatchForTest, CatchUpLimitsBehindABacklogAndNoWaitingThen) {
  ServiceConfig c;
  c.batch_max_records = 2'000;
  c.batch_max_ms = 30;
  c.batch_catchup_max_records = 10'000;
  c.batch_catchup_max_ms = 250;
  for (const std::int64_t backlog : {0, 1'999, 2'000, 3'999}) {
    const BatchSize size = BatchFor(c, backlog);
    EXPECT_EQ(size.max_records, 2'000) << backlog;
    EXPECT_EQ(size.max_ms, 30) << backlog;
    EXPECT_FALSE(size.until_idle) << backlog;
  }
  for (const std::int64_t backlog : {4'000, 2'200'000}) {
    const BatchSize size = BatchFor(c, backlog);
    EXPECT_EQ(size.max_records, 10'000) << backlog;
    EXPECT_EQ(size.max_ms, 250) << backlog;
    EXPECT_TRUE(size.until_idle) << backlog;
  }
  // Set explicitly.
  c.batch_catchup_backlog_records = 10'000;
  EXPECT_FALSE(BatchFor(c, 9'999).until_idle);
  EXPECT_TRUE(BatchFor(c, 10'000).until_idle);
  // By default never more than one catch-up batch; catch-up limits below the normal ones never
  // shrink a batch.
  c.batch_catchup_backlog_records = 0;
  c.batch_catchup_max_records = 500;
  c.batch_catchup_max_ms = 10;
  EXPECT_FALSE(BatchFor(c, 1'999).until_idle);
  EXPECT_EQ(BatchFor(c, 2'000).max_records, 2'000);
  EXPECT_EQ(BatchFor(c, 2'000).max_ms, 30);
  EXPECT_TRUE(BatchFor(c, 2'000).until_idle);
}

TEST(ConfigTest, LoadsTheDemoConfigWithAnEnvironmentOverride) {
  auto c = LoadServiceConfig(SIGNPOST_DEMO_CONFIG,
                             {{"SIGNPOST_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"},
                              {"SIGNPOST_DATA_DIR", "/var/lib/signpost"},
                              {"SIGNPOST_BROKER_DIR", "ignored: not a config field"}},
                             {"batch.max_ms=50", "store.cached_clients=2500000"});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->store_cached_clients, 2'500'000);
  EXPECT_TRUE(c->store_low_priority_compaction);  // the default
  EXPECT_FALSE(c->store_wal);                     // the default
  EXPECT_EQ(c->store_flush_interval_ms, 30'000);  // the default
  EXPECT_EQ(c->kafka.at("bootstrap.servers"), "127.0.0.1:19092");
  EXPECT_EQ(c->data_dir, "/var/lib/signpost");
  EXPECT_EQ(c->batch_max_ms, 50);
  EXPECT_EQ(c->batch_catchup_max_records, 10'000);  // the default
  EXPECT_EQ(c->batch_catchup_max_ms, 250);
  EXPECT_EQ(c->batch_catchup_backlog_records, 0);  // the default: derived from the batch sizes
  ASSERT_EQ(c->domains.size(), 1u);
  EXPECT_EQ(c->domains[0].id, "banes");
  EXPECT_EQ(c->domains[0].prefixes.size(), 6u);
}

TEST(ConfigTest, LoadsTheMultiDomainExample) {
  auto c = LoadServiceConfig(SIGNPOST_MULTI_DOMAIN_CONFIG, {}, {"kafka.bootstrap.servers=x:1"});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->domains.size(), 2u);
  EXPECT_EQ(c->domains[0].id, "banes");
  EXPECT_EQ(c->domains[1].id, "wiltshire");
  for (const DomainConfig& d : c->domains) {
    EXPECT_TRUE(std::ifstream(std::string(SIGNPOST_SOURCE_DIR) + "/" + d.rules_file).good())
        << d.rules_file;
  }
}

TEST(ConfigTest, SeveralDomainsEachWithRulesAndPrefixes) {
  const std::string path = Write(
      "domains:\n"
      "  wiltshire:\n    rules_file: w.yaml\n    prefixes: [sn, BA12]\n"
      "  banes:\n    rules_file: b.yaml\n    prefixes: [BA1, BA2]\n"
      "  region:\n    rules_file: r.yaml\n");
  auto c = LoadServiceConfig(path, {}, {"kafka.bootstrap.servers=x:1",
                                        "domains.region.rules_file=r2.yaml",
                                        "store.low_priority_compaction=false",
                                        "store.wal=true", "store.flush_interval_ms=5000"});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->domains.size(), 3u);
  EXPECT_EQ(c->domains[0].id, "banes");
  EXPECT_EQ(c->domains[1].id, "region");
  EXPECT_EQ(c->domains[1].rules_file, "r2.yaml");
  EXPECT_TRUE(c->domains[1].prefixes.empty());  // the catch-all
  EXPECT_EQ(c->domains[2].prefixes, (std::vector<std::string>{"SN", "BA12"}));
  // --print-config shows every domain, and reads back the same.
  const std::string printed = Write(PrintServiceConfig(*c));
  auto again = LoadServiceConfig(printed, {}, {});
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->domains.size(), 3u);
  EXPECT_EQ(again->domains[2].prefixes, c->domains[2].prefixes);
  EXPECT_EQ(again->store_cached_clients, c->store_cached_clients);
  EXPECT_FALSE(again->store_low_priority_compaction);
  EXPECT_TRUE(again->store_wal);
  EXPECT_EQ(again->store_flush_interval_ms, 5'000);
  std::remove(path.c_str());
  std::remove(printed.c_str());
}

TEST(ConfigTest, DomainsAreChecked) {
  auto error = [](std::vector<std::string> flags) {
    flags.push_back("kafka.bootstrap.servers=x:1");
    return std::string(LoadServiceConfig("", {}, flags).status().message());
  };
  EXPECT_THAT(error({"domains.a.prefixes=BA1"}), HasSubstr("domains.a.rules_file: is required"));
  EXPECT_THAT(error({"domains.a.rules_file=a", "domains.b.rules_file=b"}),
              HasSubstr("only one domain may leave them empty"));
  EXPECT_THAT(error({"domains.a.rules_file=a", "domains.a.prefixes=BA1",
                     "domains.b.rules_file=b", "domains.b.prefixes=ba1"}),
              HasSubstr("domains.b.prefixes: BA1 is already domain a's"));
  EXPECT_THAT(error({"domains.a.rules_file=a", "rules_file=x"}),
              HasSubstr("not both"));
  EXPECT_THAT(error({"domains.a b.rules_file=a"}), HasSubstr("a domain id is"));
  EXPECT_THAT(error({"domains.a.rules=a"}), HasSubstr("known field"));
}

TEST(ConfigTest, UnknownFieldNamesFileAndLine) {
  const std::string path = Write("rules_file: r.yaml\nbatch:\n  max_recrods: 10\n");
  auto c = LoadServiceConfig(path, {}, {"kafka.bootstrap.servers=x:1"});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(":3: batch.max_recrods: unknown field"));
  std::remove(path.c_str());
}

// The error of loading no file with these overrides, given a bootstrap server.
std::string ErrorOf(std::vector<std::string> overrides) {
  overrides.push_back("kafka.bootstrap.servers=x:1");
  return std::string(LoadServiceConfig("", {}, overrides).status().message());
}

TEST(ConfigTest, ValuesAreChecked) {
  EXPECT_THAT(ErrorOf({}), HasSubstr("rules_file: is required"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "batch.max_ms=soon"}),
              HasSubstr("batch.max_ms: must be an integer"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "batch.catchup_backlog_records=-1"}),
              HasSubstr("batch.catchup_backlog_records: must be an integer from 0"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "batch.catchup_max_ms=0"}),
              HasSubstr("batch.catchup_max_ms: must be an integer from 1"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "store.cached_clients=10"}),
              HasSubstr("store.cached_clients: must be an integer from 1000"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "store.low_priority_compaction=yes"}),
              HasSubstr("store.low_priority_compaction: must be true or false"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "store.flush_interval_ms=-1"}),
              HasSubstr("store.flush_interval_ms: must be an integer from 0"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "kafka.enable.auto.commit=true"}),
              HasSubstr("kafka.enable.auto.commit: set by Signpost"));
  EXPECT_THAT(ErrorOf({"rules_file=r", "kafka.no.such.thing=1"}), HasSubstr("no.such.thing"));
  auto off = LoadServiceConfig("", {}, {"rules_file=r", "kafka.bootstrap.servers=x:1",
                                        "store.low_priority_compaction=false"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->store_low_priority_compaction);
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

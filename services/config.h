// SPDX-License-Identifier: Apache-2.0
// The router service's configuration: one YAML file, then environment overrides, then command
// line overrides, validated at start with errors that name the field.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/config_fields.h"
#include "services/kafka/client_config.h"

namespace signpost::services {

// One routing domain of a deployment (architecture section 3): its rules and the outward-code
// prefixes of its clients.
struct DomainConfig {
  std::string id;
  std::string rules_file;
  // Outward-code prefixes; the longest match over every domain wins. Empty: the catch-all
  // domain (at most one), which also takes referrals without a postcode.
  std::vector<std::string> prefixes;
};

struct ServiceConfig {
  std::string instance_id = "router-1";  // group.instance.id and transactional.id suffix
  std::string group_id = "signpost-router";
  std::string data_dir = "state";         // one RocksDB per partition under it
  KafkaProperties kafka;                  // passed to librdkafka as they are
  std::string intake_topic = "signpost.intake.v1";
  std::string log_topic = "signpost.log.v1";
  std::string decisions_topic = "signpost.decisions.v1";
  std::string dlq_topic = "signpost.dlq.v1";
  int batch_max_records = 1000;
  int batch_max_ms = 100;
  // Behind a backlog of batch_catchup_backlog_records (0: twice batch_max_records, at most
  // batch_catchup_max_records), batches may grow to these, ending once nothing more waits.
  int batch_catchup_max_records = 10'000;
  int batch_catchup_max_ms = 250;
  int batch_catchup_backlog_records = 0;
  int tick_interval_ms = 1000;
  std::string http_listen = "127.0.0.1:9464";
  // host:port where other instances reach this one's query API (Kafka Streams'
  // application.server); empty: the listen address, when it names a host.
  std::string http_advertise;
  std::int64_t memory_budget_mb = 256;
  // Client records each store (one per routing domain of each owned partition) keeps in
  // memory in front of RocksDB; beyond the memory budget.
  std::int64_t store_cached_clients = 100'000;
  // Compactions at the lowest CPU priority (flushes keep theirs).
  bool store_low_priority_compaction = true;
  // State commits through RocksDB's write-ahead log. Default false, as in Kafka Streams: the
  // state on disk is that of the last flush (atomic across column families, with its offset)
  // and a crash replays the log from there.
  bool store_wal = false;
  // Without the WAL, a flush at least this often, which bounds that replay (0: every commit).
  std::int64_t store_flush_interval_ms = 30'000;
  std::int64_t max_record_bytes = 262'144;
  // Every domain this deployment routes, sorted by id: `domains.<id>.{rules_file,prefixes}`,
  // or the one given by `domain` (default "default"), `rules_file` and `domain_prefixes`.
  std::vector<DomainConfig> domains;
};

// Loads `path` (may be empty: defaults only), applies environment overrides (SIGNPOST_<FIELD>,
// e.g. SIGNPOST_DATA_DIR, SIGNPOST_KAFKA_BOOTSTRAP_SERVERS) from `env`, then `overrides`
// ("field=value", e.g. "kafka.bootstrap.servers=127.0.0.1:9092"), and validates.
// Returns kInvalidArgument naming the file, line or field at fault.
[[nodiscard]] absl::StatusOr<ServiceConfig> LoadServiceConfig(
    const std::string& path, const std::map<std::string, std::string>& env,
    const std::vector<std::string>& overrides);

// The effective configuration as YAML, with secrets (passwords, keys, tokens) masked.
[[nodiscard]] std::string PrintServiceConfig(const ServiceConfig& config);

}  // namespace signpost::services

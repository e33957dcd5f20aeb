// SPDX-License-Identifier: Apache-2.0
#include "services/config.h"

#include <algorithm>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "services/config_fields.h"

namespace signpost::services {
namespace {

const ConfigSchema& Schema() {
  static const ConfigSchema schema{
      {"instance_id", "group_id", "data_dir", "domain", "rules_file", "topics.intake",
       "topics.log", "topics.decisions", "topics.dlq", "batch.max_records", "batch.max_ms",
       "batch.catchup_max_records", "batch.catchup_max_ms", "batch.catchup_backlog_records",
       "tick_interval_ms", "http.listen", "http.advertise", "memory_budget_mb", "max_record_bytes",
       "store.cached_clients", "store.low_priority_compaction", "store.wal",
       "store.flush_interval_ms",
       "domain_prefixes"},
      "SIGNPOST_",
      {{"domains", {"rules_file", "prefixes"}}}};
  return schema;
}

std::vector<std::string> Prefixes(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view p : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    out.push_back(absl::AsciiStrToUpper(absl::StripAsciiWhitespace(p)));
  }
  return out;
}

bool ValidDomainId(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](char ch) {
           return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
         });
}

// `domains.<id>.*`, or the single domain of `domain`/`rules_file`/`domain_prefixes`; checked.
absl::Status ResolveDomains(const ConfigFields& fields, ServiceConfig& c) {
  std::map<std::string, DomainConfig> domains;
  for (const auto& [field, value] : fields) {
    if (field.rfind("domains.", 0) != 0) {
      continue;
    }
    const std::string rest = field.substr(8);
    const std::string id = rest.substr(0, rest.find('.'));
    DomainConfig& d = domains[id];
    d.id = id;
    if (absl::EndsWith(rest, ".rules_file")) {
      d.rules_file = value;
    } else {
      d.prefixes = Prefixes(value);
    }
  }
  if (domains.empty()) {
    DomainConfig single{"default", "", {}};
    TextField(fields, "domain", single.id);
    TextField(fields, "rules_file", single.rules_file);
    if (auto it = fields.find("domain_prefixes"); it != fields.end()) {
      single.prefixes = Prefixes(it->second);
    }
    if (single.rules_file.empty()) {
      return absl::InvalidArgumentError("rules_file: is required (or domains.<id>.rules_file)");
    }
    domains[single.id] = single;
  } else if (fields.contains("domain") || fields.contains("rules_file") ||
             fields.contains("domain_prefixes")) {
    return absl::InvalidArgumentError(
        "domains: give either domains.<id>.* or domain/rules_file/domain_prefixes, not both");
  }
  std::map<std::string, std::string> prefix_owner;
  const DomainConfig* catch_all = nullptr;
  for (const auto& [id, d] : domains) {
    if (!ValidDomainId(id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "domains.", id, ": a domain id is 1-64 letters, digits, '-' or '_'"));
    }
    if (d.rules_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("domains.", id, ".rules_file: is required"));
    }
    if (d.prefixes.empty()) {
      if (catch_all != nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "domains.", id, ".prefixes: only one domain may leave them empty (",
            catch_all->id, " already takes every other outward code)"));
      }
      catch_all = &d;
    }
    for (const std::string& p : d.prefixes) {
      if (auto [it, fresh] = prefix_owner.emplace(p, id); !fresh) {
        return absl::InvalidArgumentError(absl::StrCat("domains.", id, ".prefixes: ", p,
                                                       " is already domain ", it->second, "'s"));
      }
    }
    c.domains.push_back(d);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServiceConfig> LoadServiceConfig(const std::string& path,
                                                const std::map<std::string, std::string>& env,
                                                const std::vector<std::string>& overrides) {
  absl::StatusOr<ConfigFields> loaded = LoadConfigFields(Schema(), path, env, overrides);
  if (!loaded.ok()) {
    return loaded.status();
  }
  const ConfigFields& fields = *loaded;
  ServiceConfig c;
  auto text = [&](const char* field, std::string& out) { TextField(fields, field, out); };
  text("instance_id", c.instance_id);
  text("group_id", c.group_id);
  text("data_dir", c.data_dir);
  text("topics.intake", c.intake_topic);
  text("topics.log", c.log_topic);
  text("topics.decisions", c.decisions_topic);
  text("topics.dlq", c.dlq_topic);
  text("http.listen", c.http_listen);
  text("http.advertise", c.http_advertise);
  std::int64_t v = c.batch_max_records;
  if (absl::Status s = IntField(fields, "batch.max_records", 1, 100'000, v); !s.ok()) return s;
  c.batch_max_records = static_cast<int>(v);
  v = c.batch_max_ms;
  if (absl::Status s = IntField(fields, "batch.max_ms", 1, 60'000, v); !s.ok()) return s;
  c.batch_max_ms = static_cast<int>(v);
  v = c.batch_catchup_max_records;
  if (absl::Status s = IntField(fields, "batch.catchup_max_records", 1, 1'000'000, v); !s.ok()) {
    return s;
  }
  c.batch_catchup_max_records = static_cast<int>(v);
  v = c.batch_catchup_max_ms;
  if (absl::Status s = IntField(fields, "batch.catchup_max_ms", 1, 60'000, v); !s.ok()) return s;
  c.batch_catchup_max_ms = static_cast<int>(v);
  v = c.batch_catchup_backlog_records;
  if (absl::Status s = IntField(fields, "batch.catchup_backlog_records", 0, 10'000'000, v);
      !s.ok()) {
    return s;
  }
  c.batch_catchup_backlog_records = static_cast<int>(v);
  v = c.tick_interval_ms;
  if (absl::Status s = IntField(fields, "tick_interval_ms", 10, 3'600'000, v); !s.ok()) return s;
  c.tick_interval_ms = static_cast<int>(v);
  if (absl::Status s = IntField(fields, "memory_budget_mb", 16, 1 << 20, c.memory_budget_mb); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          IntField(fields, "store.cached_clients", 1'000, 100'000'000, c.store_cached_clients);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          BoolField(fields, "store.low_priority_compaction", c.store_low_priority_compaction);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = BoolField(fields, "store.wal", c.store_wal); !s.ok()) {
    return s;
  }
  if (absl::Status s = IntField(fields, "store.flush_interval_ms", 0, 24LL * 3600 * 1000,
                                c.store_flush_interval_ms);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = IntField(fields, "max_record_bytes", 1024, 64 << 20, c.max_record_bytes);
      !s.ok()) {
    return s;
  }
  c.kafka = KafkaFields(fields);
  if (absl::Status s = ResolveDomains(fields, c); !s.ok()) {
    return s;
  }
  if (!c.kafka.contains("bootstrap.servers")) {
    return absl::InvalidArgumentError("kafka.bootstrap.servers: is required");
  }
  if (c.http_listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError("http.listen: must be host:port");
  }
  for (const char* reserved : {"enable.auto.commit", "isolation.level", "transactional.id",
                               "group.id", "enable.idempotence"}) {
    if (c.kafka.contains(reserved)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "kafka.", reserved, ": set by Signpost for exactly-once processing; remove it"));
    }
  }
  // librdkafka checks every property name and value now rather than at first use.
  if (auto conf = MakeClientConf(c.kafka); !conf.ok()) {
    return conf.status();
  }
  return c;
}

std::string PrintServiceConfig(const ServiceConfig& c) {
  std::ostringstream out;
  out << "instance_id: " << c.instance_id << "\n"
      << "group_id: " << c.group_id << "\n"
      << "data_dir: " << c.data_dir << "\n"
      << "domains:\n";
  for (const DomainConfig& d : c.domains) {
    out << "  " << d.id << ":\n    rules_file: " << d.rules_file << "\n    prefixes: ["
        << absl::StrJoin(d.prefixes, ", ") << "]\n";
  }
  out
      << "topics:\n  intake: " << c.intake_topic << "\n  log: " << c.log_topic
      << "\n  decisions: " << c.decisions_topic << "\n  dlq: " << c.dlq_topic << "\n"
      << "batch:\n  max_records: " << c.batch_max_records << "\n  max_ms: " << c.batch_max_ms
      << "\n  catchup_max_records: " << c.batch_catchup_max_records
      << "\n  catchup_max_ms: " << c.batch_catchup_max_ms
      << "\n  catchup_backlog_records: " << c.batch_catchup_backlog_records << "\n"
      << "tick_interval_ms: " << c.tick_interval_ms << "\n"
      << "http:\n  listen: " << c.http_listen << "\n  advertise: " << c.http_advertise << "\n"
      << "memory_budget_mb: " << c.memory_budget_mb << "\n"
      << "store:\n  cached_clients: " << c.store_cached_clients
      << "\n  low_priority_compaction: " << (c.store_low_priority_compaction ? "true" : "false")
      << "\n  wal: " << (c.store_wal ? "true" : "false")
      << "\n  flush_interval_ms: " << c.store_flush_interval_ms << "\n"
      << "max_record_bytes: " << c.max_record_bytes << "\n"
      << "kafka:\n";
  for (const auto& [key, value] : c.kafka) {
    out << "  " << key << ": " << (IsSecretField(key) ? "********" : value) << "\n";
  }
  return out.str();
}

}  // namespace signpost::services

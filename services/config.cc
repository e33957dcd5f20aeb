// SPDX-License-Identifier: Apache-2.0
#include "services/config.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

extern char** environ;

namespace signpost::services {
namespace {

constexpr const char* kFields[] = {
    "instance_id",      "group_id",          "data_dir",        "domain",
    "rules_file",       "topics.intake",     "topics.log",      "topics.decisions",
    "topics.dlq",       "batch.max_records", "batch.max_ms",    "tick_interval_ms",
    "http.listen",      "memory_budget_mb",  "max_record_bytes", "domain_prefixes"};

bool Known(const std::string& field) {
  for (const char* f : kFields) {
    if (field == f) {
      return true;
    }
  }
  return field.rfind("kafka.", 0) == 0 && field.size() > 6;
}

// Flattens the YAML document into dotted fields; lists become comma-separated.
absl::Status Flatten(const YAML::Node& node, const std::string& prefix, const std::string& path,
                     std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const std::string field = prefix.empty() ? key : absl::StrCat(prefix, ".", key);
      if (prefix == "kafka") {
        if (!entry.second.IsScalar()) {
          return absl::InvalidArgumentError(absl::StrCat(path, ":", entry.second.Mark().line + 1,
                                                         ": ", field, ": must be a value"));
        }
        out[field] = entry.second.Scalar();
        continue;
      }
      if (!entry.second.IsMap() && !Known(field)) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", entry.first.Mark().line + 1,
                                                       ": ", field, ": unknown field"));
      }
      if (absl::Status s = Flatten(entry.second, field, path, out); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }
  if (node.IsSequence()) {
    std::vector<std::string> items;
    for (const auto& item : node) {
      items.push_back(item.Scalar());
    }
    out[prefix] = absl::StrJoin(items, ",");
    return absl::OkStatus();
  }
  if (!Known(prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", node.Mark().line + 1, ": ", prefix, ": unknown field"));
  }
  out[prefix] = node.IsNull() ? "" : node.Scalar();
  return absl::OkStatus();
}

absl::Status Int(const std::map<std::string, std::string>& fields, const std::string& field,
                 std::int64_t min, std::int64_t max, std::int64_t& out) {
  auto it = fields.find(field);
  if (it == fields.end()) {
    return absl::OkStatus();
  }
  std::int64_t v = 0;
  if (!absl::SimpleAtoi(it->second, &v) || v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be an integer from ", min, " to ", max, ", not \"",
                     it->second, "\""));
  }
  out = v;
  return absl::OkStatus();
}

}  // namespace

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq != std::string::npos) {
      env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
  }
  return env;
}

absl::StatusOr<ServiceConfig> LoadServiceConfig(const std::string& path,
                                                const std::map<std::string, std::string>& env,
                                                const std::vector<std::string>& overrides) {
  std::map<std::string, std::string> fields;
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read"));
    }
    std::stringstream text;
    text << in.rdbuf();
    try {
      const YAML::Node root = YAML::Load(text.str());
      if (!root.IsNull()) {
        if (!root.IsMap()) {
          return absl::InvalidArgumentError(absl::StrCat(path, ": must be a mapping"));
        }
        if (absl::Status s = Flatten(root, "", path, fields); !s.ok()) {
          return s;
        }
      }
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
  }
  // SIGNPOST_DATA_DIR -> data_dir; SIGNPOST_KAFKA_BOOTSTRAP_SERVERS -> kafka.bootstrap.servers;
  // SIGNPOST_TOPICS_LOG -> topics.log.
  for (const auto& [name, value] : env) {
    if (name.rfind("SIGNPOST_", 0) != 0) {
      continue;
    }
    std::string rest = absl::AsciiStrToLower(name.substr(9));
    std::string field;
    if (rest.rfind("kafka_", 0) == 0) {
      field = "kafka." + rest.substr(6);
      std::replace(field.begin() + 6, field.end(), '_', '.');
    } else {
      for (const char* f : kFields) {
        std::string flat(f);
        std::replace(flat.begin(), flat.end(), '.', '_');
        if (flat == rest) {
          field = f;
        }
      }
    }
    if (!field.empty()) {
      fields[field] = value;
    }
  }
  for (const std::string& o : overrides) {
    const std::size_t eq = o.find('=');
    if (eq == std::string::npos || !Known(o.substr(0, eq))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", o, ": expected field=value with a known field"));
    }
    fields[o.substr(0, eq)] = o.substr(eq + 1);
  }

  ServiceConfig c;
  auto text = [&](const char* field, std::string& out) {
    if (auto it = fields.find(field); it != fields.end()) {
      out = it->second;
    }
  };
  text("instance_id", c.instance_id);
  text("group_id", c.group_id);
  text("data_dir", c.data_dir);
  text("domain", c.domain);
  text("rules_file", c.rules_file);
  text("topics.intake", c.intake_topic);
  text("topics.log", c.log_topic);
  text("topics.decisions", c.decisions_topic);
  text("topics.dlq", c.dlq_topic);
  text("http.listen", c.http_listen);
  if (auto it = fields.find("domain_prefixes"); it != fields.end() && !it->second.empty()) {
    for (absl::string_view p : absl::StrSplit(it->second, ',', absl::SkipWhitespace())) {
      c.domain_prefixes.push_back(absl::AsciiStrToUpper(absl::StripAsciiWhitespace(p)));
    }
  }
  std::int64_t v = c.batch_max_records;
  if (absl::Status s = Int(fields, "batch.max_records", 1, 100'000, v); !s.ok()) return s;
  c.batch_max_records = static_cast<int>(v);
  v = c.batch_max_ms;
  if (absl::Status s = Int(fields, "batch.max_ms", 1, 60'000, v); !s.ok()) return s;
  c.batch_max_ms = static_cast<int>(v);
  v = c.tick_interval_ms;
  if (absl::Status s = Int(fields, "tick_interval_ms", 10, 3'600'000, v); !s.ok()) return s;
  c.tick_interval_ms = static_cast<int>(v);
  if (absl::Status s = Int(fields, "memory_budget_mb", 16, 1 << 20, c.memory_budget_mb); !s.ok()) {
    return s;
  }
  if (absl::Status s = Int(fields, "max_record_bytes", 1024, 64 << 20, c.max_record_bytes);
      !s.ok()) {
    return s;
  }
  for (const auto& [field, value] : fields) {
    if (field.rfind("kafka.", 0) == 0) {
      c.kafka[field.substr(6)] = value;
    }
  }
  if (c.rules_file.empty()) {
    return absl::InvalidArgumentError("rules_file: is required");
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
  auto secret = [](const std::string& key) {
    const std::string k = absl::AsciiStrToLower(key);
    return k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
           k.find("key") != std::string::npos || k.find("token") != std::string::npos ||
           k.find("sasl.oauthbearer.config") != std::string::npos;
  };
  std::ostringstream out;
  out << "instance_id: " << c.instance_id << "\n"
      << "group_id: " << c.group_id << "\n"
      << "data_dir: " << c.data_dir << "\n"
      << "domain: " << c.domain << "\n"
      << "rules_file: " << c.rules_file << "\n"
      << "domain_prefixes: [" << absl::StrJoin(c.domain_prefixes, ", ") << "]\n"
      << "topics:\n  intake: " << c.intake_topic << "\n  log: " << c.log_topic
      << "\n  decisions: " << c.decisions_topic << "\n  dlq: " << c.dlq_topic << "\n"
      << "batch:\n  max_records: " << c.batch_max_records << "\n  max_ms: " << c.batch_max_ms
      << "\n"
      << "tick_interval_ms: " << c.tick_interval_ms << "\n"
      << "http:\n  listen: " << c.http_listen << "\n"
      << "memory_budget_mb: " << c.memory_budget_mb << "\n"
      << "max_record_bytes: " << c.max_record_bytes << "\n"
      << "kafka:\n";
  for (const auto& [key, value] : c.kafka) {
    out << "  " << key << ": " << (secret(key) ? "********" : value) << "\n";
  }
  return out.str();
}

}  // namespace signpost::services

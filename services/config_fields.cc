// SPDX-License-Identifier: Apache-2.0
#include "services/config_fields.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "yaml-cpp/yaml.h"

extern char** environ;

namespace signpost::services {
namespace {

// "<map>.<name>.<leaf>" for a keyed map of the schema.
bool KnownKeyed(const ConfigSchema& schema, const std::string& field) {
  for (const auto& [map, leaves] : schema.keyed) {
    if (field.rfind(map + ".", 0) != 0) {
      continue;
    }
    const std::string rest = field.substr(map.size() + 1);
    const std::size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos) {
      return false;
    }
    return std::find(leaves.begin(), leaves.end(), rest.substr(dot + 1)) != leaves.end();
  }
  return false;
}

bool Known(const ConfigSchema& schema, const std::string& field) {
  return std::find(schema.fields.begin(), schema.fields.end(), field) != schema.fields.end() ||
         (field.rfind("kafka.", 0) == 0 && field.size() > 6) || KnownKeyed(schema, field);
}

// Flattens the YAML document into dotted fields; lists become comma-separated.
absl::Status Flatten(const ConfigSchema& schema, const YAML::Node& node, const std::string& prefix,
                     const std::string& path, ConfigFields& out) {
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
      if (!entry.second.IsMap() && !Known(schema, field)) {
        return absl::InvalidArgumentError(absl::StrCat(path, ":", entry.first.Mark().line + 1,
                                                       ": ", field, ": unknown field"));
      }
      if (absl::Status s = Flatten(schema, entry.second, field, path, out); !s.ok()) {
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
  if (!Known(schema, prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", node.Mark().line + 1, ": ", prefix, ": unknown field"));
  }
  out[prefix] = node.IsNull() ? "" : node.Scalar();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ConfigFields> LoadConfigFields(const ConfigSchema& schema, const std::string& path,
                                              const std::map<std::string, std::string>& env,
                                              const std::vector<std::string>& overrides) {
  ConfigFields fields;
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
        if (absl::Status s = Flatten(schema, root, "", path, fields); !s.ok()) {
          return s;
        }
      }
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
    }
  }
  // <prefix>DATA_DIR -> data_dir; <prefix>KAFKA_BOOTSTRAP_SERVERS -> kafka.bootstrap.servers;
  // <prefix>TOPICS_LOG -> topics.log.
  const std::size_t n = schema.env_prefix.size();
  for (const auto& [name, value] : env) {
    if (name.rfind(schema.env_prefix, 0) != 0) {
      continue;
    }
    std::string rest = absl::AsciiStrToLower(name.substr(n));
    std::string field;
    if (rest.rfind("kafka_", 0) == 0) {
      field = "kafka." + rest.substr(6);
      std::replace(field.begin() + 6, field.end(), '_', '.');
    } else {
      for (const std::string& f : schema.fields) {
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
    if (eq == std::string::npos || !Known(schema, o.substr(0, eq))) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set ", o, ": expected field=value with a known field"));
    }
    fields[o.substr(0, eq)] = o.substr(eq + 1);
  }
  return fields;
}

absl::Status IntField(const ConfigFields& fields, const std::string& field, std::int64_t min,
                      std::int64_t max, std::int64_t& out) {
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

absl::Status BoolField(const ConfigFields& fields, const std::string& field, bool& out) {
  auto it = fields.find(field);
  if (it == fields.end()) {
    return absl::OkStatus();
  }
  if (it->second != "true" && it->second != "false") {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must be true or false, not \"", it->second, "\""));
  }
  out = it->second == "true";
  return absl::OkStatus();
}

void TextField(const ConfigFields& fields, const std::string& field, std::string& out) {
  if (auto it = fields.find(field); it != fields.end()) {
    out = it->second;
  }
}

std::map<std::string, std::string> KafkaFields(const ConfigFields& fields) {
  std::map<std::string, std::string> kafka;
  for (const auto& [field, value] : fields) {
    if (field.rfind("kafka.", 0) == 0) {
      kafka[field.substr(6)] = value;
    }
  }
  return kafka;
}

bool IsSecretField(const std::string& name) {
  const std::string k = absl::AsciiStrToLower(name);
  return k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
         k.find("key") != std::string::npos || k.find("token") != std::string::npos ||
         k.find("sasl.oauthbearer.config") != std::string::npos;
}

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

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/config.h"

#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/config_fields.h"
#include "services/files.h"
#include "yaml-cpp/yaml.h"

namespace signpost::services::gateway {
namespace {

const ConfigSchema& Schema() {
  static const ConfigSchema schema{
      {"listen", "threads", "topics.intake", "max_body_bytes", "delivery_timeout_ms",
       "max_in_flight", "router_url", "pseudonym_key", "concept_map_file", "integrators_file",
       "idempotency.max_entries", "idempotency.ttl_s", "tls.cert_file", "tls.key_file"},
      "SIGNPOST_GATEWAY_"};
  return schema;
}

// "gp-practice" -> SOURCE_GP_PRACTICE; "share-with-pods" -> CONSENT_SCOPE_SHARE_WITH_PODS.
template <class Enum>
bool EnumByName(const std::string& prefix, const std::string& name,
                bool (*parse)(const std::string&, Enum*), Enum& out) {
  std::string full = absl::AsciiStrToUpper(name);
  for (char& c : full) {
    if (c == '-') c = '_';
  }
  return parse(prefix + full, &out) && static_cast<int>(out) != 0;
}

}  // namespace

absl::StatusOr<std::vector<Integrator>> ParseIntegrators(const std::string& yaml,
                                                         const std::string& name) {
  std::vector<Integrator> out;
  try {
    const YAML::Node list = YAML::Load(yaml)["integrators"];
    if (!list || !list.IsSequence()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": integrators: must be a list"));
    }
    for (const YAML::Node& n : list) {
      auto fail = [&](const std::string& field, const std::string& problem) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ":", n.Mark().line + 1, ": integrators.", field, ": ", problem));
      };
      Integrator i;
      if (!n.IsMap() || !n["id"] || !n["token_sha256"]) {
        return fail("id", "each integrator needs id and token_sha256");
      }
      for (const auto& entry : n) {
        const std::string key = entry.first.Scalar();
        if (key != "id" && key != "token_sha256" && key != "scopes" && key != "source" &&
            key != "org" && key != "consent" && key != "pods") {
          return fail(key, "unknown field");
        }
      }
      i.id = n["id"].as<std::string>();
      if (i.id.empty() || i.id.size() > 64) {
        return fail("id", "must be 1-64 characters");
      }
      i.token_sha256 = absl::AsciiStrToLower(n["token_sha256"].as<std::string>());
      if (i.token_sha256.size() != 64 ||
          i.token_sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return fail("token_sha256", "must be 64 hex digits (signpost-gateway --hash-token)");
      }
      for (const YAML::Node& s : n["scopes"]) {
        const std::string scope = s.as<std::string>();
        if (scope == "submit") {
          i.scopes |= kSubmit;
        } else if (scope == "respond") {
          i.scopes |= kRespond;
        } else if (scope == "read") {
          i.scopes |= kRead;
        } else {
          return fail("scopes", absl::StrCat("unknown scope ", scope, " (submit, respond, read)"));
        }
      }
      if (n["source"] && !EnumByName<v1::Source>("SOURCE_", n["source"].as<std::string>(),
                                                 v1::Source_Parse, i.source)) {
        return fail("source", absl::StrCat("unknown source ", n["source"].as<std::string>()));
      }
      if (n["org"]) i.org = n["org"].as<std::string>();
      for (const YAML::Node& c : n["consent"]) {
        v1::ConsentScope scope;
        if (!EnumByName<v1::ConsentScope>("CONSENT_SCOPE_", c.as<std::string>(),
                                          v1::ConsentScope_Parse, scope)) {
          return fail("consent", absl::StrCat("unknown consent scope ", c.as<std::string>()));
        }
        i.consent.push_back(scope);
      }
      for (const YAML::Node& p : n["pods"]) i.pods.push_back(p.as<std::string>());
      for (const Integrator& other : out) {
        if (other.id == i.id || other.token_sha256 == i.token_sha256) {
          return fail("id", "id and token must be unique");
        }
      }
      out.push_back(std::move(i));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  return out;
}

absl::StatusOr<GatewayConfig> LoadGatewayConfig(const std::string& path,
                                                const std::map<std::string, std::string>& env,
                                                const std::vector<std::string>& overrides) {
  absl::StatusOr<ConfigFields> loaded = LoadConfigFields(Schema(), path, env, overrides);
  if (!loaded.ok()) {
    return loaded.status();
  }
  const ConfigFields& f = *loaded;
  GatewayConfig c;
  TextField(f, "listen", c.listen);
  TextField(f, "topics.intake", c.intake_topic);
  TextField(f, "router_url", c.router_url);
  TextField(f, "pseudonym_key", c.pseudonym_key);
  TextField(f, "concept_map_file", c.concept_map_file);
  TextField(f, "integrators_file", c.integrators_file);
  TextField(f, "tls.cert_file", c.tls_cert_file);
  TextField(f, "tls.key_file", c.tls_key_file);
  std::int64_t threads = c.threads;
  for (absl::Status s : {IntField(f, "threads", 1, 64, threads),
                         IntField(f, "max_body_bytes", 1024, 64 << 20, c.max_body_bytes),
                         IntField(f, "delivery_timeout_ms", 1000, 300'000, c.delivery_timeout_ms),
                         IntField(f, "max_in_flight", 1, 10'000'000, c.max_in_flight),
                         IntField(f, "idempotency.max_entries", 0, 100'000'000,
                                  c.idempotency_max_entries),
                         IntField(f, "idempotency.ttl_s", 1, 30 * 86'400, c.idempotency_ttl_s)}) {
    if (!s.ok()) return s;
  }
  c.threads = static_cast<int>(threads);
  c.kafka = KafkaFields(f);
  if (!c.kafka.contains("bootstrap.servers")) {
    return absl::InvalidArgumentError("kafka.bootstrap.servers: is required");
  }
  for (const char* reserved : {"enable.idempotence", "acks", "transactional.id"}) {
    if (c.kafka.contains(reserved)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "kafka.", reserved, ": set by the gateway (idempotent producer, acks=all); remove it"));
    }
  }
  if (c.listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError("listen: must be host:port");
  }
  if (c.pseudonym_key.empty()) {
    return absl::InvalidArgumentError(
        "pseudonym_key: is required (64 hex digits; SIGNPOST_GATEWAY_PSEUDONYM_KEY)");
  }
  if (c.concept_map_file.empty()) {
    return absl::InvalidArgumentError("concept_map_file: is required");
  }
  if (c.integrators_file.empty()) {
    return absl::InvalidArgumentError("integrators_file: is required");
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError("tls: cert_file and key_file go together");
  }
  absl::StatusOr<std::string> text = ReadTextFile(c.integrators_file);
  if (!text.ok()) {
    return text.status();
  }
  absl::StatusOr<std::vector<Integrator>> integrators = ParseIntegrators(*text, c.integrators_file);
  if (!integrators.ok()) {
    return integrators.status();
  }
  c.integrators = *std::move(integrators);
  if (auto conf = MakeClientConf(c.kafka); !conf.ok()) {
    return conf.status();
  }
  return c;
}

std::string PrintGatewayConfig(const GatewayConfig& c) {
  std::ostringstream out;
  out << "listen: " << c.listen << "\n"
      << "threads: " << c.threads << "\n"
      << "topics:\n  intake: " << c.intake_topic << "\n"
      << "max_body_bytes: " << c.max_body_bytes << "\n"
      << "delivery_timeout_ms: " << c.delivery_timeout_ms << "\n"
      << "max_in_flight: " << c.max_in_flight << "\n"
      << "router_url: " << c.router_url << "\n"
      << "pseudonym_key: " << (c.pseudonym_key.empty() ? "" : "********") << "\n"
      << "concept_map_file: " << c.concept_map_file << "\n"
      << "integrators_file: " << c.integrators_file << "  # " << c.integrators.size()
      << " integrators\n"
      << "idempotency:\n  max_entries: " << c.idempotency_max_entries
      << "\n  ttl_s: " << c.idempotency_ttl_s << "\n"
      << "tls:\n  cert_file: " << c.tls_cert_file << "\n  key_file: " << c.tls_key_file << "\n"
      << "kafka:\n";
  for (const auto& [key, value] : c.kafka) {
    out << "  " << key << ": " << (IsSecretField(key) ? "********" : value) << "\n";
  }
  return out.str();
}

}  // namespace signpost::services::gateway

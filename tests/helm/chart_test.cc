// SPDX-License-Identifier: Apache-2.0
// Checks of helm/signpost that need no Kubernetes and no helm binary: the configurations the
// chart renders load with the services' own loaders, the environment variables its templates set
// name real configuration fields, every .Values reference of a template exists in values.yaml,
// and every metric its alerts use is one the services export. (Rendering itself needs helm,
// which Debian does not ship; helm/README.md says how the chart was rendered and linted.)
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/rules.h"
#include "services/config.h"
#include "services/gateway/config.h"
#include "yaml-cpp/yaml.h"

namespace signpost::services {
namespace {

namespace fs = std::filesystem;
const fs::path kSource = SIGNPOST_SOURCE_DIR;
const fs::path kChart = kSource / "helm" / "signpost";

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A file in a fresh directory under the test's temporary directory.
fs::path WriteTemp(const std::string& name, const std::string& text) {
  const fs::path dir = fs::path(testing::TempDir()) / "chart_test";
  fs::create_directories(dir);
  const fs::path path = dir / name;
  std::ofstream(path) << text;
  return path;
}

std::string Emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  return out.c_str();
}

YAML::Node Values() { return YAML::LoadFile((kChart / "values.yaml").string()); }

// Every template's text, by file name.
std::map<std::string, std::string> Templates() {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::directory_iterator(kChart / "templates")) {
    out[entry.path().filename().string()] = Read(entry.path());
  }
  return out;
}

// The SIGNPOST_* variables that templates whose names start with `prefix` set with `- name:`.
std::set<std::string> EnvNames(const std::string& prefix) {
  std::set<std::string> out;
  const std::regex name(R"(- name: (SIGNPOST_[A-Z0-9_]+))");
  for (const auto& [file, text] : Templates()) {
    if (file.rfind(prefix, 0) != 0) continue;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), name);
         it != std::sregex_iterator(); ++it) {
      out.insert((*it)[1]);
    }
  }
  return out;
}

TEST(HelmChartTest, ChartAndValuesParse) {
  const YAML::Node chart = YAML::LoadFile((kChart / "Chart.yaml").string());
  EXPECT_EQ(chart["apiVersion"].as<std::string>(), "v2");
  EXPECT_EQ(chart["name"].as<std::string>(), "signpost");
  EXPECT_FALSE(chart["version"].as<std::string>().empty());
  const YAML::Node values = Values();
  ASSERT_TRUE(values["router"]["config"].IsMap());
  ASSERT_TRUE(values["gateway"]["config"].IsMap());
}

TEST(HelmChartTest, RouterConfigLoadsWithTheRoutersLoader) {
  const YAML::Node config = Values()["router"]["config"];
  const fs::path path = WriteTemp("router.yaml", Emit(config));
  // What the StatefulSet sets per pod.
  const std::map<std::string, std::string> env = {
      {"SIGNPOST_INSTANCE_ID", "signpost-router-0"},
      {"SIGNPOST_HTTP_ADVERTISE", "signpost-router-0.signpost-router.hub.svc:9464"}};
  absl::StatusOr<ServiceConfig> loaded = LoadServiceConfig(path.string(), env, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->instance_id, "signpost-router-0");
  EXPECT_EQ(loaded->http_listen, config["http"]["listen"].as<std::string>());
  EXPECT_EQ(loaded->data_dir, config["data_dir"].as<std::string>());
  ASSERT_EQ(loaded->domains.size(), 1u);
  // The rules are mounted under /etc/signpost/rules/ (router-configmap.yaml checks the name).
  EXPECT_EQ(loaded->domains[0].rules_file.rfind("/etc/signpost/rules/", 0), 0u);
  // The chart sets these per pod; the values must not.
  EXPECT_FALSE(config["instance_id"]);
  EXPECT_FALSE(config["http"]["advertise"]);
}

TEST(HelmChartTest, ExampleRulesLoadAsTheChartsDocumentedRules) {
  // values.yaml's comment and helm/README.md give examples/rules/banes.yaml to --set-file.
  EXPECT_NE(Read(kChart / "values.yaml").find("examples/rules/banes.yaml"), std::string::npos);
  absl::StatusOr<std::shared_ptr<const router::Rules>> rules =
      router::LoadRules(Read(kSource / "examples/rules/banes.yaml"), "banes.yaml");
  EXPECT_TRUE(rules.ok()) << rules.status();
}

TEST(HelmChartTest, RouterTemplatesSetOnlyRealConfigFields) {
  const fs::path path = WriteTemp("router-env.yaml", Emit(Values()["router"]["config"]));
  const std::set<std::string> names = EnvNames("router-");
  ASSERT_EQ(names, (std::set<std::string>{"SIGNPOST_INSTANCE_ID", "SIGNPOST_HTTP_ADVERTISE"}));
  absl::StatusOr<ServiceConfig> base = LoadServiceConfig(path.string(), {}, {});
  ASSERT_TRUE(base.ok()) << base.status();
  for (const std::string& name : names) {
    const std::string probe = "probe-" + name + ".svc:1234";
    absl::StatusOr<ServiceConfig> set = LoadServiceConfig(path.string(), {{name, probe}}, {});
    ASSERT_TRUE(set.ok()) << name << ": " << set.status();
    EXPECT_NE(PrintServiceConfig(*set), PrintServiceConfig(*base)) << name << " changed nothing";
    EXPECT_NE(PrintServiceConfig(*set).find(probe), std::string::npos) << name;
  }
}

TEST(HelmChartTest, GatewayConfigLoadsWithTheGatewaysLoader) {
  YAML::Node config = Values()["gateway"]["config"];
  EXPECT_FALSE(config["pseudonym_key"]) << "a secret in values.yaml";
  const fs::path path = WriteTemp("gateway.yaml", Emit(config));
  // The files are mounted from gateway.files; here the examples stand in for them.
  const std::vector<std::string> files = {
      "concept_map_file=" + (kSource / "examples/gateway/concept-map.yaml").string(),
      "integrators_file=" + (kSource / "examples/gateway/integrators.yaml").string()};
  EXPECT_EQ(config["concept_map_file"].as<std::string>().rfind("/etc/signpost/gateway/", 0), 0u);
  EXPECT_EQ(config["integrators_file"].as<std::string>().rfind("/etc/signpost/gateway/", 0), 0u);
  const std::map<std::string, std::string> secret = {
      {"SIGNPOST_GATEWAY_PSEUDONYM_KEY", std::string(64, 'a')}};
  absl::StatusOr<gateway::GatewayConfig> loaded =
      gateway::LoadGatewayConfig(path.string(), secret, files);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->listen, config["listen"].as<std::string>());

  const std::set<std::string> names = EnvNames("gateway-");
  ASSERT_EQ(names, (std::set<std::string>{"SIGNPOST_GATEWAY_ROUTER_URL"}));
  for (const std::string& name : names) {
    std::map<std::string, std::string> env = secret;
    env[name] = "probe.svc:9464";
    absl::StatusOr<gateway::GatewayConfig> set =
        gateway::LoadGatewayConfig(path.string(), env, files);
    ASSERT_TRUE(set.ok()) << set.status();
    EXPECT_NE(gateway::PrintGatewayConfig(*set).find("probe.svc:9464"), std::string::npos)
        << name << " changed nothing";
  }
}

// `a.b.c` exists in `node`.
bool HasPath(YAML::Node node, const std::string& dotted) {
  for (const absl::string_view part : absl::StrSplit(dotted, '.')) {
    const std::string key(part);
    if (!node.IsMap() || !node[key]) return false;
    node.reset(node[key]);  // not `=`, which would assign into the tree
  }
  return true;
}

TEST(HelmChartTest, EveryValuesReferenceExists) {
  const YAML::Node values = Values();
  // Optional configuration the templates read with a default: the router's multi-domain form.
  const std::set<std::string> optional = {"router.config.domains"};
  const std::regex direct(R"(\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+))");
  const std::regex alias(R"(\{\{-? \$([A-Za-z]+) := \.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+))");
  int references = 0;
  for (const auto& [file, text] : Templates()) {
    std::map<std::string, std::string> aliases;  // $r -> metrics.prometheusRule
    for (auto it = std::sregex_iterator(text.begin(), text.end(), alias);
         it != std::sregex_iterator(); ++it) {
      aliases[(*it)[1]] = std::string((*it)[2]).substr(1);
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), direct);
         it != std::sregex_iterator(); ++it) {
      const std::string path = std::string((*it)[1]).substr(1);
      ++references;
      EXPECT_TRUE(HasPath(values, path) || optional.contains(path))
          << file << ": .Values." << path << " is not in values.yaml";
    }
    for (const auto& [name, target] : aliases) {
      const std::regex use("\\$" + name + R"(((?:\.[A-Za-z_][A-Za-z0-9_]*)+))");
      for (auto it = std::sregex_iterator(text.begin(), text.end(), use);
           it != std::sregex_iterator(); ++it) {
        const std::string path = target + std::string((*it)[1]);
        ++references;
        EXPECT_TRUE(HasPath(values, path)) << file << ": $" << name << " = .Values." << path
                                           << " is not in values.yaml";
      }
    }
  }
  EXPECT_GT(references, 30);
}

// The signpost_* metric names in `text`, histogram suffixes removed.
std::set<std::string> MetricsIn(const std::string& text) {
  const std::regex metric(R"(\bsignpost_[a-z_]+)");
  std::set<std::string> used;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), metric);
       it != std::sregex_iterator(); ++it) {
    std::string name = (*it)[0];
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        name.resize(name.size() - suffix.size());
      }
    }
    used.insert(name);
  }
  return used;
}

std::string ExportedMetricSources() {
  return Read(kSource / "services/metrics.cc") + Read(kSource / "services/gateway/gateway.cc");
}

TEST(HelmChartTest, AlertsUseExportedMetrics) {
  const std::string exported = ExportedMetricSources();
  const std::set<std::string> used =
      MetricsIn(Read(kChart / "templates" / "prometheusrule.yaml"));
  EXPECT_GE(used.size(), 8u);
  for (const std::string& name : used) {
    EXPECT_NE(exported.find(absl::StrCat("\"", name, "\"")), std::string::npos)
        << name << " is used by an alert but not exported";
  }
}

TEST(HelmChartTest, DashboardParsesAndUsesExportedMetrics) {
  const nlohmann::json dashboard =
      nlohmann::json::parse(Read(kChart / "dashboards" / "signpost.json"), nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << "dashboards/signpost.json is not JSON";
  const std::string exported = ExportedMetricSources();
  int queries = 0;
  std::set<std::string> used;
  for (const nlohmann::json& panel : dashboard.at("panels")) {
    if (panel.at("type") == "row") continue;
    ASSERT_TRUE(panel.contains("targets")) << panel.at("title");
    for (const nlohmann::json& target : panel.at("targets")) {
      const std::string expr = target.at("expr").get<std::string>();
      const std::set<std::string> names = MetricsIn(expr);
      EXPECT_FALSE(names.empty()) << panel.at("title") << ": " << expr;
      used.insert(names.begin(), names.end());
      ++queries;
    }
  }
  EXPECT_GE(queries, 20);
  for (const std::string& name : used) {
    EXPECT_NE(exported.find(absl::StrCat("\"", name, "\"")), std::string::npos)
        << name << " is on the dashboard but not exported";
  }
  // Every documented metric of the router has a panel (docs/operating.md, "Metrics").
  const std::set<std::string> documented = MetricsIn(Read(kSource / "docs/operating.md"));
  for (const std::string& name : documented) {
    if (name == "signpost_records_out_total" || name == "signpost_replayed_records_total" ||
        name == "signpost_pod_open_cost" || name == "signpost_pod_capacity") {
      continue;  // shown through utilisation and restore instead
    }
    EXPECT_TRUE(used.contains(name)) << name << " is documented but not on the dashboard";
  }
}

}  // namespace
}  // namespace signpost::services

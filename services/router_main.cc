// SPDX-License-Identifier: Apache-2.0
// signpost-router: the router daemon (intake and routing stages, metrics, health, queries).
#include <csignal>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "services/config.h"
#include "services/service.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"signpost-router: routes referrals from the Signpost log to pods, exactly once"};
  std::string config_path;
  std::vector<std::string> overrides;
  bool print_config = false;
  app.add_option("-c,--config", config_path, "YAML configuration file");
  app.add_option("--set", overrides,
                 "override a field, e.g. --set kafka.bootstrap.servers=127.0.0.1:9092")
      ->take_all();
  app.add_flag("--print-config", print_config, "print the effective configuration and exit");
  CLI11_PARSE(app, argc, argv);

  // Structured JSON logs on stderr; never personal data (ids and reasons only).
  auto logger = spdlog::stderr_logger_mt("signpost");
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%v"})",
                      spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);

  auto config = signpost::services::LoadServiceConfig(
      config_path, signpost::services::ProcessEnvironment(), overrides);
  if (!config.ok()) {
    std::cerr << "signpost-router: invalid configuration: " << config.status().message() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << signpost::services::PrintServiceConfig(*config);
    return 0;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::vector<std::string> domains;
  for (const signpost::services::DomainConfig& d : config->domains) {
    domains.push_back(d.id);
  }
  spdlog::info("starting instance {} for domain(s) {}", config->instance_id,
               absl::StrJoin(domains, ", "));
  const absl::Status result = signpost::services::RunService(*config, g_stop);
  if (!result.ok()) {
    spdlog::error("stopping: {}", result.ToString());
    return 1;
  }
  spdlog::info("stopped cleanly");
  return 0;
}

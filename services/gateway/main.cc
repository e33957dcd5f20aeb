// SPDX-License-Identifier: Apache-2.0
// signpost-gateway: HTTP and FHIR in, durable Kafka events out.
#include <csignal>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "services/config_fields.h"
#include "services/gateway/config.h"
#include "services/gateway/gateway.h"
#include "services/gateway/pseudonym.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  namespace gw = signpost::services::gateway;
  CLI::App app{"signpost-gateway: accepts referrals over HTTP and FHIR, answers after Kafka has them"};
  std::string config_path;
  std::vector<std::string> overrides;
  bool print_config = false;
  bool new_key = false;
  std::string hash_token;
  app.add_option("-c,--config", config_path, "YAML configuration file");
  app.add_option("--set", overrides, "override a field, e.g. --set listen=0.0.0.0:8080")
      ->take_all();
  app.add_flag("--print-config", print_config, "print the effective configuration and exit");
  app.add_flag("--new-key", new_key, "print a new random pseudonym key and exit");
  app.add_option("--hash-token", hash_token,
                 "print the token_sha256 to put in the integrators file for this token, and exit");
  CLI11_PARSE(app, argc, argv);
  if (new_key) {
    std::cout << gw::NewHexKey() << "\n";
    return 0;
  }
  if (!hash_token.empty()) {
    std::cout << gw::TokenHash(hash_token) << "\n";
    return 0;
  }

  // Structured JSON logs on stderr; never personal data (integrator ids, field names, counts).
  auto logger = spdlog::stderr_logger_mt("signpost");
  logger->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%v"})",
                      spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);

  auto config =
      gw::LoadGatewayConfig(config_path, signpost::services::ProcessEnvironment(), overrides);
  if (!config.ok()) {
    std::cerr << "signpost-gateway: invalid configuration: " << config.status().message() << "\n";
    return 2;
  }
  if (print_config) {
    std::cout << gw::PrintGatewayConfig(*config);
    return 0;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  auto gateway = gw::Gateway::Start(*std::move(config));
  if (!gateway.ok()) {
    spdlog::error("cannot start: {}", gateway.status().ToString());
    return 1;
  }
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  spdlog::info("stopping: answering what is in flight");
  gateway->reset();
  return 0;
}

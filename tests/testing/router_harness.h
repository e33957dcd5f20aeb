// SPDX-License-Identifier: Apache-2.0
// Running signpost-router as child processes against the test broker, and checking what they
// committed against a clean replay of the committed log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "services/kafka/client_config.h"

namespace signpost::testing {

struct LogRecord {
  int partition = 0;
  std::int64_t offset = 0;
  std::string value;
  std::string key;
  std::map<std::string, std::string> headers;
};

// GET http://127.0.0.1:<port><target>: "<status> <body>", or "" when nothing answered;
// `location` (if given) receives the Location header; `authorization`, if not empty, is sent.
[[nodiscard]] std::string HttpGet(int port, const std::string& target,
                                  std::string* location = nullptr,
                                  const std::string& authorization = "");
// A port nothing listens on right now.
[[nodiscard]] int FreePort();

// Every committed record of `topic`, by partition and offset.
[[nodiscard]] std::vector<LogRecord> ReadCommitted(const services::KafkaProperties& base,
                                                   const std::string& topic);

// One deployment's topics, unique to the test, created on the test broker.
struct RouterTopics {
  std::string suffix, intake, log, decisions, dlq;
  static RouterTopics Create(const services::KafkaProperties& base, int partitions);
};

// Starts signpost-router (`binary`) as instance `instance` with state in `data_dir`, routing the
// domain "banes" by `rules_file` (empty: the domains are in `extra`); `extra` are more --set
// overrides, e.g. "batch.max_records=100".
[[nodiscard]] pid_t SpawnRouter(const std::string& binary, const std::string& rules_file,
                                const std::string& bootstrap, const RouterTopics& topics,
                                const std::string& instance, const std::string& data_dir,
                                const std::vector<std::string>& extra = {});

// Pre-loads the intake topic with `referrals` referrals and `answers` random pod answers; with
// `rate` > 0, at that many records per second (so they flow while a test works on the router).
void PreloadIntake(const services::KafkaProperties& base, const std::string& topic,
                   int referrals, int answers, std::mt19937_64& rng, int rate = 0);

// Produces each (key, value) to `topic` and waits until all are acknowledged.
void ProduceAll(const services::KafkaProperties& base, const std::string& topic,
                const std::vector<std::pair<std::string, std::string>>& records);

// The routers' group's committed offset minus one, by partition: the last record each
// partition's owner consumed and committed.
[[nodiscard]] std::map<int, std::int64_t> LastCommitted(const services::KafkaProperties& base,
                                                        const RouterTopics& topics,
                                                        int partitions);

// Referrals with a first decision among the committed decisions.
[[nodiscard]] std::size_t DecidedReferrals(const std::vector<LogRecord>& decisions);

struct ReplayCheck {
  std::size_t committed = 0;
  std::size_t replayed = 0;
  bool equal = false;
  std::vector<std::string> duplicates;  // decision event ids committed twice
  std::string over_capacity;            // a pod over capacity in the clean run, if any
  // The clean run's RouterSnapshot, by "<partition>/<domain>".
  std::map<std::string, std::string> states;
};

// Replays the committed log (records at or below `upto[partition]` when given) with fresh
// routers, one per domain and partition as the service keeps them, and compares the decisions
// with the committed ones. `rules_files` by domain.
[[nodiscard]] ReplayCheck CheckAgainstReplay(const services::KafkaProperties& base,
                                             const RouterTopics& topics,
                                             const std::map<std::string, std::string>& rules_files,
                                             const std::map<int, std::int64_t>* upto);
// The same for the one domain "banes".
[[nodiscard]] ReplayCheck CheckAgainstReplay(const services::KafkaProperties& base,
                                             const RouterTopics& topics,
                                             const std::string& rules_file,
                                             const std::map<int, std::int64_t>* upto);

// The state stored under a router's `data_dir` by "<partition>/<domain>" (as
// ReplayCheck::states), and each partition's lowest stored offset in `applied`.
[[nodiscard]] std::map<std::string, std::string> StoredStates(
    const std::string& data_dir, const RouterTopics& topics, std::map<int, std::int64_t>& applied);

}  // namespace signpost::testing

// SPDX-License-Identifier: Apache-2.0
// The router service: the intake stage (signpost.intake.v1 -> validated log or DLQ) and the
// routing stage (signpost.log.v1 -> routing core -> decisions), each a consume-transform-produce
// loop with Kafka transactions, plus the HTTP endpoints (metrics, health, queries).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "services/config.h"
#include "services/http_server.h"

namespace signpost::services {

// Runs both stages until `stop` is set (SIGTERM), then finishes the batch, commits and leaves
// the group. Returns non-OK when the process must exit non-zero: a fatal Kafka error (fenced by
// a newer instance), a storage error, or a configuration the broker refuses.
[[nodiscard]] absl::Status RunService(const ServiceConfig& config, const std::atomic<bool>& stop);

// The limits of a stage's next batch (one transaction), given the records already waiting in
// its assigned partitions. Normally batch.max_records and batch.max_ms: a batch takes what
// arrives until either is reached, which bounds both the latency and the transactions per second.
// A backlog of batch.catchup_backlog_records or more (by default two normal batches, at most
// one catch-up batch: a bulk import, a restart, a moment's stall under a paced load) is
// queueing: fewer, bigger transactions of up to batch.catchup_max_records and
// batch.catchup_max_ms drain it faster, and such a batch ends as soon as nothing more is
// waiting, so it never waits for new records. (When it waited for its deadline, a paced 30,661
// referrals/s kept 250 ms transactions going once 10,000 records behind: p99 768 ms.)
struct BatchSize {
  int max_records = 0;
  int max_ms = 0;
  bool until_idle = false;  // end the batch at the first poll that finds nothing waiting
};
[[nodiscard]] BatchSize BatchFor(const ServiceConfig& config, std::int64_t backlog);

// A query for an id this instance does not hold.
struct QueryMiss {
  std::set<int> owned;              // the log partitions this instance owns
  std::set<int> domain_partitions;  // the log partitions of the configured domains (empty: unknown)
  std::string advertised;           // this instance's query address; empty when it has none
};
// The query address of a partition's owner, from a list at most `max_age` old: nullopt when no
// owner is known (while the group rebalances), "" when the owner advertises none.
using OwnerLookup =
    std::function<std::optional<std::string>(int partition, std::chrono::milliseconds max_age)>;
// The answer to such a query for `path`: 307 to the owner of the one other domain partition, as
// Kafka Streams' interactive queries do; 503 with Retry-After while that owner is not known or
// is still listed as this instance (a rebalance: the data may well exist); otherwise 404 naming
// the partitions this instance owns (and the others, when the domains are spread over several).
[[nodiscard]] HttpResponse AnswerMiss(const std::string& what, const std::string& path,
                                      const QueryMiss& miss, const OwnerLookup& owner_of);

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
// The router service: the intake stage (signpost.intake.v1 -> validated log or DLQ) and the
// routing stage (signpost.log.v1 -> routing core -> decisions), each a consume-transform-produce
// loop with Kafka transactions, plus the HTTP endpoints (metrics, health, queries).
#pragma once

#include <atomic>
#include <memory>

#include "absl/status/status.h"
#include "services/config.h"

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

}  // namespace signpost::services

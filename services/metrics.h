// SPDX-License-Identifier: Apache-2.0
// Every metric the router service exports, registered once at start. Labels stay
// low-cardinality: topic, type, outcome, reason, pod, need, partition — never client or referral
// ids. Thread-safe (prometheus-cpp metrics are atomic).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace signpost::services {

class Metrics {
 public:
  Metrics();

  prometheus::Registry& registry() { return *registry_; }
  // The text exposition format of every metric.
  [[nodiscard]] std::string Serialize() const;

  prometheus::Counter& RecordsIn(const std::string& topic, const std::string& type);
  prometheus::Counter& RecordsOut(const std::string& topic, const std::string& type);
  prometheus::Counter& Decisions(const std::string& outcome);
  prometheus::Counter& Dlq(const std::string& reason);
  prometheus::Gauge& PodOpen(const std::string& pod);
  prometheus::Gauge& PodCapacity(const std::string& pod);
  prometheus::Gauge& PodUtilisation(const std::string& pod);
  // Per routing domain and need (domains may share need codes).
  prometheus::Gauge& Waiting(const std::string& domain, const std::string& need);
  prometheus::Gauge& OldestWaitSeconds(const std::string& domain, const std::string& need);
  prometheus::Counter& Escalations(const std::string& domain, const std::string& need);
  // What pods did with offered work: accepted, declined, accept_timeout, completed, withdrawn,
  // pod_closed, client_erased.
  prometheus::Counter& PodAnswers(const std::string& pod, const std::string& answer);
  // Event time from the offer to the acceptance, and from the acceptance to the completion.
  prometheus::Histogram& TimeToAccept(const std::string& pod);
  prometheus::Histogram& TimeToComplete(const std::string& pod);
  prometheus::Gauge& ConsumerLag(int partition);
  prometheus::Gauge& RestoreRemaining(int partition);

  prometheus::Histogram& EndToEndLatency() { return *e2e_latency_; }
  prometheus::Histogram& CommitLatency() { return *commit_latency_; }
  prometheus::Counter& TransactionAborts() { return *aborts_; }
  prometheus::Counter& Replayed() { return *replayed_; }
  prometheus::Gauge& RocksDbMemory() { return *rocksdb_memory_; }
  prometheus::Gauge& AssignedPartitions() { return *assigned_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* records_in_;
  prometheus::Family<prometheus::Counter>* records_out_;
  prometheus::Family<prometheus::Counter>* decisions_;
  prometheus::Family<prometheus::Counter>* dlq_;
  prometheus::Family<prometheus::Gauge>* pod_open_;
  prometheus::Family<prometheus::Gauge>* pod_capacity_;
  prometheus::Family<prometheus::Gauge>* pod_utilisation_;
  prometheus::Family<prometheus::Gauge>* waiting_;
  prometheus::Family<prometheus::Gauge>* oldest_wait_;
  prometheus::Family<prometheus::Counter>* escalations_;
  prometheus::Family<prometheus::Counter>* pod_answers_;
  prometheus::Family<prometheus::Histogram>* time_to_accept_;
  prometheus::Family<prometheus::Histogram>* time_to_complete_;
  prometheus::Family<prometheus::Gauge>* lag_;
  prometheus::Family<prometheus::Gauge>* restore_;
  prometheus::Histogram* e2e_latency_;
  prometheus::Histogram* commit_latency_;
  prometheus::Counter* aborts_;
  prometheus::Counter* replayed_;
  prometheus::Gauge* rocksdb_memory_;
  prometheus::Gauge* assigned_;
};

}  // namespace signpost::services

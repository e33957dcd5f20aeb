// SPDX-License-Identifier: Apache-2.0
// Every metric the router service exports, registered once at start. Labels stay
// low-cardinality: topic, type, outcome, reason, pod, need, partition — never client or referral
// ids. Thread-safe (prometheus-cpp metrics are atomic).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace signpost::services {

// Observes, for each event time in `times_ms`, its age at `now_ms` in seconds (never negative:
// a clock ahead of ours counts as 0).
inline void ObserveAges(prometheus::Histogram& histogram, std::int64_t now_ms,
                        const std::vector<std::int64_t>& times_ms) {
  for (const std::int64_t t : times_ms) {
    histogram.Observe(static_cast<double>(std::max<std::int64_t>(0, now_ms - t)) / 1000.0);
  }
}

// The children of a labelled family, by label values, remembered after their first lookup:
// later lookups hash the values under one small lock instead of building prometheus-cpp's label
// map (a std::map of strings) and searching the family under its lock.
template <typename T, std::size_t N>
class MemoFamily {
 public:
  using Add = std::function<T&(const prometheus::Labels&)>;
  MemoFamily(std::array<const char*, N> names, Add add)
      : names_(names), add_(std::move(add)) {}
  MemoFamily(const MemoFamily&) = delete;
  MemoFamily& operator=(const MemoFamily&) = delete;

  T& Get(const std::array<std::string_view, N>& values) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = children_.find(values); it != children_.end()) {
      return *it->second;
    }
    prometheus::Labels labels;
    std::array<std::string, N> key;
    for (std::size_t i = 0; i < N; ++i) {
      key[i] = std::string(values[i]);
      labels.emplace(names_[i], key[i]);
    }
    T& child = add_(labels);
    children_.emplace(std::move(key), &child);
    return child;
  }

 private:
  struct Hash {
    using is_transparent = void;
    template <typename S>
    std::size_t operator()(const std::array<S, N>& values) const {
      std::size_t h = 0;
      for (const auto& v : values) {
        h = absl::HashOf(h, std::string_view(v));
      }
      return h;
    }
  };
  struct Eq {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const std::array<A, N>& a, const std::array<B, N>& b) const {
      for (std::size_t i = 0; i < N; ++i) {
        if (std::string_view(a[i]) != std::string_view(b[i])) {
          return false;
        }
      }
      return true;
    }
  };
  const std::array<const char*, N> names_;
  const Add add_;
  std::mutex mutex_;
  absl::flat_hash_map<std::array<std::string, N>, T*, Hash, Eq> children_;
};

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
  // Open needs (waiting, offered or accepted) of a routing domain held by this instance: what
  // its memory grows with.
  prometheus::Gauge& OpenNeeds(const std::string& domain);
  prometheus::Counter& Escalations(std::string_view domain, std::string_view need);
  // What pods did with offered work: accepted, declined, accept_timeout, completed, withdrawn,
  // pod_closed, client_erased.
  prometheus::Counter& PodAnswers(std::string_view pod, std::string_view answer);
  // Event time from the offer to the acceptance, and from the acceptance to the completion.
  prometheus::Histogram& TimeToAccept(std::string_view pod);
  prometheus::Histogram& TimeToComplete(std::string_view pod);
  prometheus::Gauge& ConsumerLag(int partition);
  prometheus::Gauge& RestoreRemaining(int partition);
  // Removes the partition's series (lag, restore): for a partition this instance gave up.
  void ForgetPartition(int partition);

  prometheus::Histogram& EndToEndLatency() { return *e2e_latency_; }
  // Transaction commit latency of the routing and the intake stage.
  prometheus::Histogram& CommitLatency() { return *commit_latency_; }
  prometheus::Histogram& IntakeCommitLatency() { return *intake_commit_latency_; }
  // Event time of a valid input to the commit of the intake transaction that logged it.
  prometheus::Histogram& IntakeLatency() { return *intake_latency_; }
  prometheus::Histogram& StateHandover() { return *state_handover_; }
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
  prometheus::Family<prometheus::Gauge>* open_needs_;
  prometheus::Family<prometheus::Gauge>* oldest_wait_;
  prometheus::Family<prometheus::Counter>* escalations_;
  prometheus::Family<prometheus::Counter>* pod_answers_;
  prometheus::Family<prometheus::Histogram>* time_to_accept_;
  prometheus::Family<prometheus::Histogram>* time_to_complete_;
  prometheus::Family<prometheus::Gauge>* lag_;
  prometheus::Family<prometheus::Gauge>* restore_;
  prometheus::Histogram* e2e_latency_;
  prometheus::Histogram* commit_latency_;
  prometheus::Histogram* intake_commit_latency_;
  prometheus::Histogram* intake_latency_;
  prometheus::Histogram* state_handover_;
  prometheus::Counter* aborts_;
  prometheus::Counter* replayed_;
  prometheus::Gauge* rocksdb_memory_;
  prometheus::Gauge* assigned_;
  // The lookups made per decision or pod answer.
  MemoFamily<prometheus::Counter, 2> escalations_memo_;
  MemoFamily<prometheus::Counter, 2> pod_answers_memo_;
  MemoFamily<prometheus::Histogram, 1> time_to_accept_memo_;
  MemoFamily<prometheus::Histogram, 1> time_to_complete_memo_;
};

}  // namespace signpost::services

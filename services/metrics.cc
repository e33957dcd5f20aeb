// SPDX-License-Identifier: Apache-2.0
#include "services/metrics.h"

#include "prometheus/text_serializer.h"

namespace signpost::services {
namespace {

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

// Pods answer in minutes to days.
prometheus::Histogram::BucketBoundaries AnswerBuckets() {
  return {60, 300, 900, 1800, 3600, 7200, 14'400, 28'800, 86'400, 172'800, 604'800};
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      escalations_memo_({"domain", "need"},
                        [this](const prometheus::Labels& l) -> prometheus::Counter& {
                          return escalations_->Add(l);
                        }),
      pod_answers_memo_({"pod", "answer"},
                        [this](const prometheus::Labels& l) -> prometheus::Counter& {
                          return pod_answers_->Add(l);
                        }),
      time_to_accept_memo_({"pod"},
                           [this](const prometheus::Labels& l) -> prometheus::Histogram& {
                             return time_to_accept_->Add(l, AnswerBuckets());
                           }),
      time_to_complete_memo_({"pod"},
                             [this](const prometheus::Labels& l) -> prometheus::Histogram& {
                               return time_to_complete_->Add(l, AnswerBuckets());
                             }) {
  auto& r = *registry_;
  records_in_ = &prometheus::BuildCounter()
                     .Name("signpost_records_in_total")
                     .Help("Records consumed, by topic and event type.")
                     .Register(r);
  records_out_ = &prometheus::BuildCounter()
                      .Name("signpost_records_out_total")
                      .Help("Records produced (committed or not), by topic and event type.")
                      .Register(r);
  decisions_ = &prometheus::BuildCounter()
                    .Name("signpost_decisions_total")
                    .Help("Routing decisions, by outcome.")
                    .Register(r);
  dlq_ = &prometheus::BuildCounter()
              .Name("signpost_dlq_total")
              .Help("Records sent to the dead-letter queue, by reason.")
              .Register(r);
  pod_open_ = &prometheus::BuildGauge()
                   .Name("signpost_pod_open_cost")
                   .Help("Open work held by a pod (cost units).")
                   .Register(r);
  pod_capacity_ = &prometheus::BuildGauge()
                       .Name("signpost_pod_capacity")
                       .Help("A pod's capacity (cost units).")
                       .Register(r);
  pod_utilisation_ = &prometheus::BuildGauge()
                          .Name("signpost_pod_utilisation_ratio")
                          .Help("Open work over capacity.")
                          .Register(r);
  waiting_ = &prometheus::BuildGauge()
                  .Name("signpost_need_waiting")
                  .Help("Needs waiting for a pod, by need.")
                  .Register(r);
  open_needs_ = &prometheus::BuildGauge()
                     .Name("signpost_open_needs")
                     .Help("Open needs (waiting, offered or accepted) held by this instance, by domain.")
                     .Register(r);
  oldest_wait_ = &prometheus::BuildGauge()
                      .Name("signpost_need_oldest_wait_seconds")
                      .Help("Age of the longest-waiting need, by need.")
                      .Register(r);
  escalations_ = &prometheus::BuildCounter()
                      .Name("signpost_escalations_total")
                      .Help("Needs escalated, by need.")
                      .Register(r);
  time_to_accept_ = &prometheus::BuildHistogram()
                         .Name("signpost_pod_time_to_accept_seconds")
                         .Help("Event time from a pod's offer to its acceptance, by pod.")
                         .Register(r);
  time_to_complete_ = &prometheus::BuildHistogram()
                           .Name("signpost_pod_time_to_complete_seconds")
                           .Help("Event time from acceptance (or the offer) to completion, by pod.")
                           .Register(r);
  pod_answers_ = &prometheus::BuildCounter()
                      .Name("signpost_pod_answers_total")
                      .Help("Offered work answered or ended, by pod and answer.")
                      .Register(r);
  lag_ = &prometheus::BuildGauge()
              .Name("signpost_consumer_lag_records")
              .Help("Records of the log not yet processed, by partition.")
              .Register(r);
  restore_ = &prometheus::BuildGauge()
                  .Name("signpost_restore_remaining_records")
                  .Help("Records still to replay before a partition is restored.")
                  .Register(r);
  e2e_latency_ = &prometheus::BuildHistogram()
                      .Name("signpost_end_to_end_latency_seconds")
                      .Help("Event time of an input to the commit of its decisions.")
                      .Register(r)
                      .Add({}, LatencyBuckets());
  auto& commits = prometheus::BuildHistogram()
                     .Name("signpost_transaction_commit_seconds")
                     .Help("Kafka transaction commit latency, by stage (intake, routing).")
                     .Register(r);
  commit_latency_ = &commits.Add({{"stage", "routing"}}, LatencyBuckets());
  intake_commit_latency_ = &commits.Add({{"stage", "intake"}}, LatencyBuckets());
  intake_latency_ = &prometheus::BuildHistogram()
                         .Name("signpost_intake_latency_seconds")
                         .Help("Event time of an input to the commit of the intake transaction "
                               "that put it on the log (the intake stage's part of the end-to-end "
                               "latency).")
                         .Register(r)
                         .Add({}, LatencyBuckets());
  state_handover_ = &prometheus::BuildHistogram()
                         .Name("signpost_state_handover_seconds")
                         .Help("Time the routing thread takes, after each transaction commit, to "
                               "hand the batch's state to the store: mostly waiting for the "
                               "previous batch's RocksDB write.")
                         .Register(r)
                         .Add({}, LatencyBuckets());
  aborts_ = &prometheus::BuildCounter()
                 .Name("signpost_transaction_aborts_total")
                 .Help("Kafka transactions aborted.")
                 .Register(r)
                 .Add({});
  replayed_ = &prometheus::BuildCounter()
                   .Name("signpost_replayed_records_total")
                   .Help("Log records replayed silently to rebuild state.")
                   .Register(r)
                   .Add({});
  rocksdb_memory_ = &prometheus::BuildGauge()
                         .Name("signpost_rocksdb_memory_bytes")
                         .Help("RocksDB block cache and memtables.")
                         .Register(r)
                         .Add({});
  assigned_ = &prometheus::BuildGauge()
                   .Name("signpost_assigned_partitions")
                   .Help("Partitions of the log this instance owns.")
                   .Register(r)
                   .Add({});
  for (const char* outcome :
       {"routed", "queued", "escalated", "released", "rejected", "client_erased"}) {
    Decisions(outcome);
  }
  for (const char* reason :
       {"oversized", "unparsable", "schema_version", "missing_event_id", "missing_event_time",
        "not_an_input", "invalid_referral", "invalid_response", "invalid_pod_change",
        "invalid_erasure", "unknown_domain"}) {
    Dlq(reason);
  }
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

prometheus::Counter& Metrics::RecordsIn(const std::string& topic, const std::string& type) {
  return records_in_->Add({{"topic", topic}, {"type", type}});
}
prometheus::Counter& Metrics::RecordsOut(const std::string& topic, const std::string& type) {
  return records_out_->Add({{"topic", topic}, {"type", type}});
}
prometheus::Counter& Metrics::Decisions(const std::string& outcome) {
  return decisions_->Add({{"outcome", outcome}});
}
prometheus::Counter& Metrics::Dlq(const std::string& reason) {
  return dlq_->Add({{"reason", reason}});
}
prometheus::Gauge& Metrics::PodOpen(const std::string& pod) { return pod_open_->Add({{"pod", pod}}); }
prometheus::Gauge& Metrics::PodCapacity(const std::string& pod) {
  return pod_capacity_->Add({{"pod", pod}});
}
prometheus::Gauge& Metrics::PodUtilisation(const std::string& pod) {
  return pod_utilisation_->Add({{"pod", pod}});
}
prometheus::Gauge& Metrics::OpenNeeds(const std::string& domain) {
  return open_needs_->Add({{"domain", domain}});
}

prometheus::Gauge& Metrics::Waiting(const std::string& domain, const std::string& need) {
  return waiting_->Add({{"domain", domain}, {"need", need}});
}
prometheus::Gauge& Metrics::OldestWaitSeconds(const std::string& domain, const std::string& need) {
  return oldest_wait_->Add({{"domain", domain}, {"need", need}});
}
prometheus::Counter& Metrics::Escalations(std::string_view domain, std::string_view need) {
  return escalations_memo_.Get({domain, need});
}
prometheus::Histogram& Metrics::TimeToAccept(std::string_view pod) {
  return time_to_accept_memo_.Get({pod});
}
prometheus::Histogram& Metrics::TimeToComplete(std::string_view pod) {
  return time_to_complete_memo_.Get({pod});
}
prometheus::Counter& Metrics::PodAnswers(std::string_view pod, std::string_view answer) {
  return pod_answers_memo_.Get({pod, answer});
}
prometheus::Gauge& Metrics::ConsumerLag(int partition) {
  return lag_->Add({{"partition", std::to_string(partition)}});
}
prometheus::Gauge& Metrics::RestoreRemaining(int partition) {
  return restore_->Add({{"partition", std::to_string(partition)}});
}
void Metrics::ForgetPartition(int partition) {
  lag_->Remove(&ConsumerLag(partition));
  restore_->Remove(&RestoreRemaining(partition));
}

}  // namespace signpost::services

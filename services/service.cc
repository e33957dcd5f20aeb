// SPDX-License-Identifier: Apache-2.0
#include "services/service.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/util/json_util.h"
#include "librdkafka/rdkafka.h"
#include "librdkafka/rdkafkacpp.h"
#include "nlohmann/json.hpp"
#include "router/base/status_macros.h"
#include "router/domain_routers.h"
#include "router/router.h"
#include "services/files.h"
#include "services/http_server.h"
#include "services/intake.h"
#include "services/kafka/client_config.h"
#include "services/kafka/group_consumer.h"
#include "services/kafka/txn_producer.h"
#include "services/metrics.h"
#include "spdlog/spdlog.h"
#include "storage/partition_store.h"

namespace signpost::services {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* TypeOf(v1::Envelope::BodyCase body) {
  switch (body) {
    case v1::Envelope::kReferralSubmitted: return "referral_submitted";
    case v1::Envelope::kPodResponse: return "pod_response";
    case v1::Envelope::kPodChanged: return "pod_changed";
    case v1::Envelope::kRulesChanged: return "rules_changed";
    case v1::Envelope::kTick: return "tick";
    case v1::Envelope::kClientErasureRequested: return "client_erasure_requested";
    case v1::Envelope::kRouted: return "routed";
    case v1::Envelope::kQueued: return "queued";
    case v1::Envelope::kEscalated: return "escalated";
    case v1::Envelope::kReleased: return "released";
    case v1::Envelope::kRejected: return "rejected";
    case v1::Envelope::kClientErased: return "client_erased";
    default: return "none";
  }
}

// One counter of a labelled family per envelope body, found once. prometheus-cpp's Family::Add
// builds a label map and takes the family's lock on every call: per record, that showed in the
// routing thread's profile. Counters stay valid as long as their family.
class CounterByBody {
 public:
  explicit CounterByBody(std::function<prometheus::Counter&(const char* type)> find)
      : find_(std::move(find)) {}
  // `find` usually captures its owner's `this`: a copy would call into the original.
  CounterByBody(const CounterByBody&) = delete;
  CounterByBody& operator=(const CounterByBody&) = delete;
  prometheus::Counter& operator()(v1::Envelope::BodyCase body) {
    const auto index = static_cast<std::size_t>(body);
    if (index >= counters_.size()) {
      return find_(TypeOf(body));
    }
    prometheus::Counter*& counter = counters_[index];
    if (counter == nullptr) {
      counter = &find_(TypeOf(body));
    }
    return *counter;
  }

 private:
  std::function<prometheus::Counter&(const char*)> find_;
  std::array<prometheus::Counter*, 64> counters_{};
};

// Each domain's rules, parsed once at start and shared by the intake stage (pods -> domains)
// and every router of the domain (rules are immutable; a RulesChanged event gives a router new
// ones of its own).
using DomainRules = std::map<std::string, std::shared_ptr<const router::Rules>>;

// Loads every domain's rules file; pod ids must be unique across domains (answers find their
// domain by pod; metrics label by pod).
absl::StatusOr<DomainRules> LoadDomainRules(const ServiceConfig& config) {
  DomainRules rules;
  std::map<std::string, std::string> pod_domain;
  for (const DomainConfig& d : config.domains) {
    SIGNPOST_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(d.rules_file));
    SIGNPOST_ASSIGN_OR_RETURN(rules[d.id], router::LoadRules(text, d.rules_file));
    for (const router::PodRule& pod : rules[d.id]->pods) {
      if (auto [it, fresh] = pod_domain.emplace(pod.id, d.id); !fresh) {
        return absl::InvalidArgumentError(absl::StrCat(d.rules_file, ": pod ", pod.id,
                                                       " is also in domain ", it->second,
                                                       "; pod ids must be unique"));
      }
    }
  }
  return rules;
}

// The domains as the intake stage resolves them.
IntakeRules MakeIntakeRules(const ServiceConfig& config, const DomainRules& rules) {
  IntakeRules intake;
  intake.max_record_bytes = config.max_record_bytes;
  for (const DomainConfig& d : config.domains) {
    IntakeDomain& domain = intake.domains.emplace_back();
    domain.id = d.id;
    domain.prefixes = d.prefixes;
    for (const router::PodRule& pod : rules.at(d.id)->pods) {
      domain.pods.push_back(pod.id);
    }
  }
  return intake;
}

// A new transactional producer for this instance's stage, retried while the cluster is away
// (for up to ten minutes). Creating it fences the broken one and aborts its open transaction.
absl::StatusOr<std::unique_ptr<TxnProducer>> ReplaceProducer(const ServiceConfig& config,
                                                            const char* stage) {
  const std::string id = absl::StrCat(config.group_id, stage, config.instance_id);
  absl::Status last;
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto producer = TxnProducer::Create(config.kafka, id, 30'000);
    if (producer.ok()) {
      return producer;
    }
    last = producer.status();
    spdlog::warn("replacing the producer failed ({}); retrying", last.ToString());
  }
  return last;
}

// What a stage may recover from, at most 3 times in 5 minutes (a genuine second instance would
// fence us again at once, and then we stop):
//  - static membership and a restarted broker: after a coordinator failover the broker can fence
//    a consumer with its own group.instance.id; the consumer is replaced;
//  - a producer fenced after its transaction outlived transaction.timeout.ms (e.g. across a
//    broker outage): the coordinator aborts such a transaction and bumps the epoch itself
//    (KIP-588), which librdkafka reports exactly as a newer instance. A newer instance fences a
//    younger transaction too, so only an old one is taken for the coordinator's doing; the
//    producer is replaced and the batch replayed. (Group membership cannot tell the two apart:
//    with static membership the instance that joins last always wins it back.)
class FencedMembership {
 public:
  // Whether `consumer`'s fatal error is a fenced static membership we may recover from.
  bool MayRecover(RdKafka::KafkaConsumer& consumer) {
    std::string reason;
    return consumer.fatal_error(reason) == RdKafka::ERR_FENCED_INSTANCE_ID && WithinBudget();
  }
  // Whether a fenced producer was fenced by the coordinator rather than by another instance.
  bool MayRecoverProducer(const TxnProducer& producer) {
    return producer.outlived_timeout() && WithinBudget();
  }

 private:
  bool WithinBudget() {
    const auto now = Clock::now();
    recent_.push_back(now);
    while (!recent_.empty() && now - recent_.front() > std::chrono::minutes(5)) {
      recent_.erase(recent_.begin());
    }
    return recent_.size() <= 3;
  }
  std::vector<Clock::time_point> recent_;
};

// The partitions of `topic` in a member's assignment (Kafka's ConsumerProtocolAssignment:
// int16 version, [string topic, [int32 partition]], bytes user data; big-endian).
std::vector<int> AssignedPartitions(const void* bytes, int size, const std::string& topic) {
  std::vector<int> out;
  const auto* p = static_cast<const unsigned char*>(bytes);
  int at = 0;
  auto need = [&](int n) { return p != nullptr && at + n <= size; };
  auto i16 = [&] { const int v = (p[at] << 8) | p[at + 1]; at += 2; return v; };
  auto i32 = [&] {
    const std::int32_t v = static_cast<std::int32_t>((std::uint32_t{p[at]} << 24) |
                                                     (std::uint32_t{p[at + 1]} << 16) |
                                                     (std::uint32_t{p[at + 2]} << 8) | p[at + 3]);
    at += 4;
    return v;
  };
  if (!need(6)) return out;
  i16();  // version
  const std::int32_t topics = i32();
  for (std::int32_t t = 0; t < topics && need(2); ++t) {
    const int len = i16();
    if (len < 0 || !need(len)) return out;
    const std::string name(reinterpret_cast<const char*>(p + at), static_cast<std::size_t>(len));
    at += len;
    if (!need(4)) return out;
    const std::int32_t n = i32();
    for (std::int32_t i = 0; i < n && need(4); ++i) {
      const std::int32_t partition = i32();
      if (name == topic) out.push_back(partition);
    }
  }
  return out;
}

// The advertised query address ("host:port") of each partition's owner in `group`, from the
// coordinator's member list and each member's client.id ("signpost-router/<instance>@<host:port>");
// "" for a partition whose owner advertises nothing; partitions with no owner are absent (as all
// are while the group rebalances: the coordinator lists assignments only of a stable group).
std::map<int, std::string> OwnerAddresses(rd_kafka_t* client, const std::string& group,
                                          const std::string& topic) {
  std::map<int, std::string> owners;
  const struct rd_kafka_group_list* list = nullptr;
  if (rd_kafka_list_groups(client, group.c_str(), &list, 5'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return owners;
  }
  for (int g = 0; g < list->group_cnt; ++g) {
    for (int m = 0; m < list->groups[g].member_cnt; ++m) {
      const rd_kafka_group_member_info& member = list->groups[g].members[m];
      const std::string client_id = member.client_id != nullptr ? member.client_id : "";
      const std::size_t at = client_id.rfind('@');
      for (int partition :
           AssignedPartitions(member.member_assignment, member.member_assignment_size, topic)) {
        owners[partition] = at == std::string::npos ? "" : client_id.substr(at + 1);
      }
    }
  }
  rd_kafka_group_list_destroy(list);
  return owners;
}

// Where queries for data this instance does not hold should go: the log partition of each
// domain and the instance that owns it. Asked from HTTP threads, with its own Kafka handle, so
// a lookup (up to seconds while the coordinator moves) never holds up routing. Thread-safe.
class OwnerDirectory {
 public:
  static absl::StatusOr<std::unique_ptr<OwnerDirectory>> Create(const ServiceConfig& config) {
    SIGNPOST_ASSIGN_OR_RETURN(auto conf, MakeClientConf(config.kafka));
    std::string error;
    std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
    if (client == nullptr) {
      return absl::InternalError(absl::StrCat("query client: ", error));
    }
    return std::unique_ptr<OwnerDirectory>(new OwnerDirectory(config, std::move(client)));
  }

  // The log partitions of the configured domains (the log is keyed by domain, with the
  // Java-compatible partitioner the intake stage's producer uses); empty while unknown.
  std::set<int> DomainPartitions() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (partitions_ == 0) {
      RdKafka::Metadata* raw = nullptr;
      std::string error;
      std::unique_ptr<RdKafka::Topic> topic(
          RdKafka::Topic::create(client_.get(), config_.log_topic, nullptr, error));
      if (topic != nullptr &&
          client_->metadata(false, topic.get(), &raw, 5'000) == RdKafka::ERR_NO_ERROR) {
        std::unique_ptr<RdKafka::Metadata> md(raw);
        if (md->topics()->size() == 1) {
          partitions_ = static_cast<int>(md->topics()->at(0)->partitions()->size());
        }
      }
    }
    std::set<int> out;
    for (const DomainConfig& d : config_.domains) {
      if (partitions_ > 0) {
        out.insert(rd_kafka_msg_partitioner_murmur2_random(nullptr, d.id.data(), d.id.size(),
                                                           partitions_, nullptr, nullptr));
      }
    }
    return out;
  }

  // The query address of `partition`'s owner, at most `max_age` old: nullopt when no owner is
  // known (as while the group rebalances), "" when the owner advertises none.
  std::optional<std::string> Owner(int partition, std::chrono::milliseconds max_age) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (Clock::now() - fetched_ > max_age) {
      owners_ = OwnerAddresses(client_->c_ptr(), config_.group_id, config_.log_topic);
      fetched_ = Clock::now();
    }
    auto it = owners_.find(partition);
    return it == owners_.end() ? std::nullopt : std::optional(it->second);
  }

 private:
  OwnerDirectory(const ServiceConfig& config, std::unique_ptr<RdKafka::Producer> client)
      : config_(config), client_(std::move(client)) {}

  const ServiceConfig& config_;
  std::unique_ptr<RdKafka::Producer> client_;
  std::mutex mutex_;
  int partitions_ = 0;
  std::map<int, std::string> owners_;
  Clock::time_point fetched_;
};

// A referral's open needs and history, from its client's record, as the query API shows them.
std::string ReferralJson(const std::string& referral_id, int partition, const std::string& domain,
                         const router::ClientState* state) {
  const std::optional<v1::ClientRecord> record =
      state != nullptr ? std::optional(state->ToRecord()) : std::nullopt;
  nlohmann::json out = {{"referral_id", referral_id}, {"partition", partition}, {"domain", domain}};
  out["open"] = nlohmann::json::array();
  out["history"] = nlohmann::json::array();
  if (record.has_value()) {
    for (const auto& o : record->open()) {
      if (o.referral_id() == referral_id) {
        out["open"].push_back({{"need", o.need_code()}, {"pod", o.pod_id()},
                               {"state", v1::NeedState_Name(o.state())},
                               {"since_ms", o.since_ms()}});
      }
    }
    for (const auto& h : record->history()) {
      if (h.referral_id() == referral_id) {
        out["history"].push_back({{"need", h.need_code()}, {"pod", h.pod_id()},
                                  {"kind", v1::HistoryKind_Name(h.kind())}, {"at_ms", h.at_ms()},
                                  {"outcome", v1::Outcome_Name(h.outcome())}});
      }
    }
  }
  return out.dump();
}

// After kFatal from a stage's producer: one fenced by a newer instance stops the stage; a
// broken one, or one the coordinator fenced itself, is replaced by a new producer with the same
// transactional id, which aborts whatever the old one left open.
absl::Status ReplaceFatalProducer(std::unique_ptr<TxnProducer>& producer,
                                  FencedMembership& fencing, const ServiceConfig& config,
                                  const char* stage, const std::string& why) {
  if (producer->fenced()) {
    if (!fencing.MayRecoverProducer(*producer)) {
      return absl::InternalError(absl::StrCat(stage, " transaction: fenced: ", why));
    }
    spdlog::warn("{} producer fenced after its transaction outlived the transaction timeout "
                 "(the coordinator aborted it); replacing it",
                 stage);
  } else {
    spdlog::warn("{} producer broken ({}); replacing it", stage, why);
  }
  SIGNPOST_ASSIGN_OR_RETURN(
      producer, ReplaceProducer(config, std::string_view(stage) == "intake" ? "-intake-" : "-router-"));
  return absl::OkStatus();
}

// The consumers' max.poll.interval.ms: a member that spends longer than this between polls
// (inside a rebalance callback, say) is dropped from its group.
constexpr int kDefaultMaxPollMs = 60'000;

std::chrono::milliseconds MaxPollInterval(const KafkaProperties& kafka) {
  int ms = kDefaultMaxPollMs;
  if (auto it = kafka.find("max.poll.interval.ms"); it != kafka.end()) {
    static_cast<void>(absl::SimpleAtoi(it->second, &ms));  // librdkafka checks it is a number
  }
  return std::chrono::milliseconds(ms);
}

absl::StatusOr<GroupConsumer> MakeConsumer(
    const ServiceConfig& config, const std::string& group, const std::string& instance,
    RdKafka::RebalanceCb* rebalance, const std::string& client_id = "") {
  KafkaProperties props = config.kafka;
  if (!client_id.empty()) {
    props["client.id"] = client_id;
  }
  props["group.id"] = group;
  props["group.instance.id"] = instance;
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  props["isolation.level"] = "read_committed";
  props.try_emplace("auto.offset.reset", "earliest");
  // A read_committed fetch otherwise waits up to 500 ms for more: latency, not throughput.
  props.try_emplace("fetch.wait.max.ms", "20");
  props.try_emplace("partition.assignment.strategy", "cooperative-sticky");
  props.try_emplace("session.timeout.ms", "10000");
  props.try_emplace("max.poll.interval.ms", std::to_string(kDefaultMaxPollMs));
  SIGNPOST_ASSIGN_OR_RETURN(auto conf, MakeClientConf(props));
  // Closing before the first assignment waits up to a session for it (see group_consumer.h):
  // a dead static member holds a rebalance up that long.
  int session_ms = 10'000;  // librdkafka has checked the property is a number
  static_cast<void>(absl::SimpleAtoi(props.at("session.timeout.ms"), &session_ms));
  std::string error;
  GroupConsumer consumer = CreateGroupConsumer(
      *conf, rebalance, std::chrono::milliseconds(session_ms) + std::chrono::seconds(5), error);
  if (consumer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", error));
  }
  return consumer;
}

RdKafka::Headers* DlqHeaders(DlqReason reason, const std::string& detail,
                             const RdKafka::Message& m) {
  RdKafka::Headers* h = RdKafka::Headers::create();
  h->add("signpost.dlq.reason", DlqReasonName(reason));
  h->add("signpost.dlq.detail", detail);
  h->add("signpost.dlq.source.topic", m.topic_name());
  h->add("signpost.dlq.source.partition", std::to_string(m.partition()));
  h->add("signpost.dlq.source.offset", std::to_string(m.offset()));
  return h;
}

// Rewinds `consumer` to the group's committed offsets for its whole assignment.
absl::Status RewindToCommitted(RdKafka::KafkaConsumer& consumer) {
  std::vector<RdKafka::TopicPartition*> assignment;
  consumer.assignment(assignment);
  if (assignment.empty()) {
    return absl::OkStatus();
  }
  RdKafka::ErrorCode err = consumer.committed(assignment, 30'000);
  absl::Status status = err == RdKafka::ERR_NO_ERROR
                            ? absl::OkStatus()
                            : absl::UnavailableError(absl::StrCat("committed: ", RdKafka::err2str(err)));
  for (RdKafka::TopicPartition* tp : assignment) {
    if (status.ok() && tp->err() != RdKafka::ERR_NO_ERROR) {
      // Not the group's offset: seeking to the start would publish those records again.
      status = absl::UnavailableError(absl::StrCat("committed: partition ", tp->partition(), ": ",
                                                   RdKafka::err2str(tp->err())));
    }
    if (status.ok()) {
      if (tp->offset() < 0) {
        tp->set_offset(RdKafka::Topic::OFFSET_BEGINNING);
      }
      err = consumer.seek(*tp, 10'000);
      if (err != RdKafka::ERR_NO_ERROR) {
        status = absl::UnavailableError(absl::StrCat("seek: ", RdKafka::err2str(err)));
      }
    }
  }
  RdKafka::TopicPartition::destroy(assignment);
  return status;
}

// ---------------------------------------------------------------------------------------------
// Intake stage

// Records waiting in the consumer's assigned partitions: high watermark minus position, from
// what the consumer already knows (no broker round trip). Includes transaction markers, so it
// is an upper bound.
std::int64_t Backlog(RdKafka::KafkaConsumer& consumer) {
  std::vector<RdKafka::TopicPartition*> assigned;
  if (consumer.assignment(assigned) != RdKafka::ERR_NO_ERROR) {
    return 0;
  }
  std::int64_t backlog = 0;
  if (consumer.position(assigned) == RdKafka::ERR_NO_ERROR) {
    for (RdKafka::TopicPartition* tp : assigned) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      if (tp->offset() >= 0 &&
          consumer.get_watermark_offsets(tp->topic(), tp->partition(), &low, &high) ==
              RdKafka::ERR_NO_ERROR &&
          high > tp->offset()) {
        backlog += high - tp->offset();
      }
    }
  }
  RdKafka::TopicPartition::destroy(assigned);
  return backlog;
}

// BatchFor's limits, from the backlog as the consumer knows it, as a deadline from now.
struct BatchLimits {
  Clock::time_point deadline;
  int max_records = 0;
  bool until_idle = false;

  static BatchLimits For(const ServiceConfig& config, RdKafka::KafkaConsumer& consumer) {
    const BatchSize size = BatchFor(config, Backlog(consumer));
    return {Clock::now() + std::chrono::milliseconds(size.max_ms), size.max_records,
            size.until_idle};
  }
};

// Sends `m` untouched to the DLQ inside the producer's open transaction, with the reason and
// its source in headers, a log line without personal data (`detail` names a field, never a
// value) and the metric.
absl::Status DeadLetter(TxnProducer& producer, Metrics& metrics, const std::string& dlq_topic,
                        RdKafka::Message& m, DlqReason reason, const std::string& detail) {
  metrics.Dlq(DlqReasonName(reason)).Increment();
  spdlog::warn("record {}/{}@{} to the DLQ: {} ({})", m.topic_name(), m.partition(), m.offset(),
               DlqReasonName(reason), detail);
  const std::string key = m.key() != nullptr ? *m.key() : std::string();
  return producer.Produce(dlq_topic, key,
                          std::string(static_cast<const char*>(m.payload()), m.len()),
                          DlqHeaders(reason, detail, m));
}

class IntakeStage {
 public:
  IntakeStage(const ServiceConfig& config, IntakeRules rules, Metrics& metrics)
      : config_(config), metrics_(metrics), rules_(std::move(rules)) {}

  absl::Status Run(const std::atomic<bool>& stop) {
    SIGNPOST_ASSIGN_OR_RETURN(
        producer_, TxnProducer::Create(config_.kafka, absl::StrCat(config_.group_id, "-intake-",
                                                                   config_.instance_id)));
    SIGNPOST_ASSIGN_OR_RETURN(consumer_, MakeConsumer(config_, config_.group_id + "-intake",
                                                      config_.instance_id + "-intake", nullptr));
    if (RdKafka::ErrorCode err = consumer_->subscribe({config_.intake_topic});
        err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("subscribe: ", RdKafka::err2str(err)));
    }
    absl::Status result = absl::OkStatus();
    while (!stop && result.ok()) {
      result = Batch();
    }
    if (producer_->open()) {
      std::string why;
      static_cast<void>(producer_->Abort(why));
    }
    CloseGroupConsumer(consumer_);
    return result;
  }

 private:
  absl::Status Batch() {
    std::map<std::pair<std::string, int>, std::int64_t> next;  // (topic, partition) -> offset
    const BatchLimits limits = BatchLimits::For(config_, *consumer_);
    int records = 0;
    while (records < limits.max_records && Clock::now() < limits.deadline) {
      std::unique_ptr<RdKafka::Message> m(consumer_->consume(records == 0 ? 200 : 10));
      if (m->err() == RdKafka::ERR__TIMED_OUT || m->err() == RdKafka::ERR__PARTITION_EOF) {
        if (records == 0) {
          return absl::OkStatus();
        }
        if (limits.until_idle) {
          break;  // caught up: commit now rather than wait for new records
        }
        continue;
      }
      if (m->err() != RdKafka::ERR_NO_ERROR) {
        if (m->err() == RdKafka::ERR__FATAL) {
          return RecoverFencedConsumer();
        }
        spdlog::warn("intake consume error: {}", m->errstr());
        continue;
      }
      SIGNPOST_RETURN_IF_ERROR(producer_->Begin());
      ++records;
      const std::string_view bytes(static_cast<const char*>(m->payload()), m->len());
      IntakeVerdict verdict = JudgeIntake(bytes, rules_);
      if (verdict.reason == DlqReason::kNone) {
        records_in_(verdict.envelope.body_case()).Increment();
        event_times_.push_back(verdict.envelope.event_time_ms());
        // Keyed by domain: each domain's records are one partition's total order.
        if (!verdict.every_domain) {
          SIGNPOST_RETURN_IF_ERROR(producer_->Produce(
              config_.log_topic, verdict.envelope.domain(), verdict.envelope.SerializeAsString()));
        }
        for (std::size_t i = 0; verdict.every_domain && i < rules_.domains.size(); ++i) {
          verdict.envelope.set_domain(rules_.domains[i].id);
          SIGNPOST_RETURN_IF_ERROR(producer_->Produce(config_.log_topic, rules_.domains[i].id,
                                                      verdict.envelope.SerializeAsString()));
        }
      } else {
        metrics_.RecordsIn(config_.intake_topic, "invalid").Increment();
        SIGNPOST_RETURN_IF_ERROR(DeadLetter(*producer_, metrics_, config_.dlq_topic, *m,
                                            verdict.reason, verdict.detail));
      }
      next[{m->topic_name(), m->partition()}] = m->offset() + 1;
    }
    if (records == 0) {
      return absl::OkStatus();
    }
    std::vector<RdKafka::TopicPartition*> offsets;
    for (const auto& [tp, offset] : next) {
      offsets.push_back(RdKafka::TopicPartition::create(tp.first, tp.second, offset));
    }
    std::string why;
    const auto started = Clock::now();
    const TxnResult r = producer_->SendOffsetsAndCommit(offsets, consumer_.get(), why);
    RdKafka::TopicPartition::destroy(offsets);
    if (r == TxnResult::kOk) {
      metrics_.IntakeCommitLatency().Observe(
          std::chrono::duration<double>(Clock::now() - started).count());
      ObserveAges(metrics_.IntakeLatency(), WallMs(), event_times_);
    }
    event_times_.clear();
    if (r == TxnResult::kFatal) {
      SIGNPOST_RETURN_IF_ERROR(ReplaceFatalProducer(producer_, fencing_, config_, "intake", why));
    }
    if (r != TxnResult::kOk) {
      metrics_.TransactionAborts().Increment();
      spdlog::warn("intake transaction aborted ({}); rewinding to the committed offsets", why);
      absl::Status rewound = RewindToCommitted(*consumer_);
      if (std::string reason; consumer_->fatal_error(reason) != RdKafka::ERR_NO_ERROR) {
        return RecoverFencedConsumer();  // the abort came from our consumer being fenced
      }
      if (!rewound.ok()) {
        // Mid-rebalance a partition can refuse the seek (ERR__STATE). Its aborted records must
        // not be skipped: a new consumer starts from the committed offsets.
        spdlog::warn("intake rewind failed ({}); restarting the consumer from the committed "
                     "offsets",
                     rewound.ToString());
        return ReplaceConsumer();
      }
      return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  // The consumer has a fatal error: a fenced static membership after a coordinator change is
  // replaced (within the budget); anything else stops the stage.
  absl::Status RecoverFencedConsumer() {
    std::string reason;
    consumer_->fatal_error(reason);
    if (!fencing_.MayRecover(*consumer_)) {
      return absl::InternalError(absl::StrCat("intake consumer: ", reason));
    }
    spdlog::warn("intake consumer fenced after a coordinator change; replacing it");
    return ReplaceConsumer();
  }

  // A new consumer, which starts from the group's committed offsets for whatever it is given.
  absl::Status ReplaceConsumer() {
    event_times_.clear();  // the open transaction, if any, is aborted here
    std::string why;
    if (producer_->open() && producer_->Abort(why) == TxnResult::kFatal) {
      SIGNPOST_RETURN_IF_ERROR(ReplaceFatalProducer(producer_, fencing_, config_, "intake", why));
    }
    CloseGroupConsumer(consumer_);
    SIGNPOST_ASSIGN_OR_RETURN(consumer_, MakeConsumer(config_, config_.group_id + "-intake",
                                                      config_.instance_id + "-intake", nullptr));
    if (consumer_->subscribe({config_.intake_topic}) != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError("subscribe after replacing the consumer");
    }
    return absl::OkStatus();
  }

  const ServiceConfig& config_;
  Metrics& metrics_;
  CounterByBody records_in_{[this](const char* type) -> prometheus::Counter& {
    return metrics_.RecordsIn(config_.intake_topic, type);
  }};
  IntakeRules rules_;
  std::vector<std::int64_t> event_times_;  // of the valid records in the open transaction
  FencedMembership fencing_;
  std::unique_ptr<TxnProducer> producer_;
  GroupConsumer consumer_;
};

}  // namespace
}  // namespace signpost::services

namespace signpost::services {
namespace {

// ---------------------------------------------------------------------------------------------
// Routing stage

class RoutingStage : public RdKafka::RebalanceCb {
 public:
  RoutingStage(const ServiceConfig& config, DomainRules rules, Metrics& metrics)
      : config_(config),
        metrics_(metrics),
        resources_(storage::StoreResources::Create(
            static_cast<std::size_t>(config.memory_budget_mb) << 20)),
        rules_(std::move(rules)) {}

  // Where other instances reach this one's query API; call before Init.
  void SetAdvertised(std::string address) { advertised_ = std::move(address); }

  absl::Status Init() {
    SIGNPOST_ASSIGN_OR_RETURN(owners_, OwnerDirectory::Create(config_));
    for (const auto& [domain, rules] : rules_) {
      // Every series a dashboard expects exists from the start, at zero.
      metrics_.OpenNeeds(domain);
      for (const router::NeedType& need : rules->needs) {
        metrics_.Escalations(domain, need.code);
        metrics_.Waiting(domain, need.code);
        metrics_.OldestWaitSeconds(domain, need.code);
      }
      for (const router::PodRule& pod : rules->pods) {
        for (const char* answer : {"accepted", "declined", "accept_timeout", "completed",
                                   "withdrawn", "pod_closed", "client_erased"}) {
          metrics_.PodAnswers(pod.id, answer);
        }
        metrics_.PodOpen(pod.id);
        metrics_.PodCapacity(pod.id);
        metrics_.PodUtilisation(pod.id);
      }
    }
    SIGNPOST_ASSIGN_OR_RETURN(
        producer_, TxnProducer::Create(config_.kafka, absl::StrCat(config_.group_id, "-router-",
                                                                   config_.instance_id)));
    SIGNPOST_ASSIGN_OR_RETURN(consumer_, MakeConsumer(config_, config_.group_id,
                                                      config_.instance_id, this, ClientId()));
    if (RdKafka::ErrorCode err = consumer_->subscribe({config_.log_topic});
        err != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("subscribe: ", RdKafka::err2str(err)));
    }
    return absl::OkStatus();
  }

  absl::Status Run(const std::atomic<bool>& stop) {
    absl::Status result = absl::OkStatus();
    next_tick_ = Clock::now();
    while (!stop && result.ok()) {
      ServeQueries();
      result = Batch();
      if (result.ok()) {
        result = callback_error_;
      }
    }
    if (result.ok() && producer_->open()) {
      result = Commit();  // finish the batch in hand
    }
    if (result.ok()) {
      result = callback_error_;
    }
    // Leaving the group: nothing is left to commit, so what the revocation callback meets while
    // the consumer closes (a rebalance still under way, say) is logged, not fatal.
    closing_ = true;
    CloseConsumer();
    partitions_.clear();
    ready_ = false;
    return result;
  }

  [[nodiscard]] bool Ready() const { return ready_; }

  std::string PodsJson() {
    std::lock_guard<std::mutex> lock(published_mutex_);
    return pods_json_;
  }

  // Runs `task` on the routing thread between batches; waits at most 3 s.
  HttpResponse OnRouterThread(std::function<HttpResponse()> task) {
    std::packaged_task<HttpResponse()> packaged(std::move(task));
    std::future<HttpResponse> result = packaged.get_future();
    {
      std::lock_guard<std::mutex> lock(mailbox_mutex_);
      mailbox_.push_back(std::move(packaged));
    }
    if (result.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
      return {503, "application/problem+json",
              R"({"title":"Busy","status":503,"detail":"the router did not answer in time"})",
              {}, /*retry_after_s=*/1};
    }
    return result.get();
  }

  HttpResponse QueryClient(const std::string& client_ref) {
    const std::string path = absl::StrCat("/v1/clients/", client_ref);
    return AnswerOrRedirect("client", path, [this, client_ref]() -> std::optional<HttpResponse> {
      for (auto& [id, part] : partitions_) {
        for (auto& [domain, store] : part.stores) {
          if (const router::ClientState* record = store->Clients().Find(client_ref)) {
            std::string json;
            static_cast<void>(
                google::protobuf::util::MessageToJsonString(record->ToRecord(), &json));
            return HttpResponse{200, "application/json", json};
          }
        }
      }
      return std::nullopt;
    });
  }

  HttpResponse QueryReferral(const std::string& referral_id) {
    const std::string path = absl::StrCat("/v1/referrals/", referral_id);
    return AnswerOrRedirect("referral", path, [this, referral_id]() -> std::optional<HttpResponse> {
      for (auto& [id, part] : partitions_) {
        for (auto& [domain, store] : part.stores) {
          const std::string* client = store->Clients().FindReferral(referral_id);
          if (client == nullptr) {
            continue;
          }
          return HttpResponse{200, "application/json",
                              ReferralJson(referral_id, id, domain, store->Clients().Find(*client))};
        }
      }
      return std::nullopt;
    });
  }

 private:
  struct Partition {
    int id = 0;
    // One store and one router per routing domain seen in the partition.
    std::map<std::string, std::unique_ptr<storage::PartitionStore>> stores;
    std::unique_ptr<router::DomainRouters> routers;
    std::set<std::string> dirty_domains;  // applied something since the last store commit
    std::int64_t applied = -1;       // the last offset handled (any domain, or dead-lettered)
    std::int64_t replay_until = 0;   // offsets below this are applied silently (already decided)
    bool dirty = false;              // handled records since the last store commit
    std::int64_t next = 0;           // offset after the last record of this batch, 0 if none
    std::uint64_t epoch = 0;         // which assignment of the partition this is
  };

  // "signpost-router/<instance>@<advertised host:port>": how other instances find our query API.
  std::string ClientId() const {
    return advertised_.empty() ? std::string()
                               : absl::StrCat("signpost-router/", config_.instance_id, "@",
                                              advertised_);
  }

  // Runs `lookup` on the routing thread. When this instance does not hold the answer, then off
  // that thread: AnswerMiss (307 to the owner, 503 mid-rebalance, or 404).
  HttpResponse AnswerOrRedirect(const char* what, const std::string& path,
                                std::function<std::optional<HttpResponse>()> lookup) {
    struct Miss {
      bool missing = false;
      std::set<int> owned;
    };
    auto miss = std::make_shared<Miss>();  // outlives a task that answers after the wait
    HttpResponse local = OnRouterThread([this, lookup, miss]() -> HttpResponse {
      if (std::optional<HttpResponse> found = lookup()) {
        return *found;
      }
      for (const auto& [id, part] : partitions_) {
        miss->owned.insert(id);
      }
      miss->missing = true;
      return {};
    });
    if (local.status == 503 || !miss->missing) {
      return local;  // the router was busy (its task may still run: miss is not ours), or found
    }
    // Off the routing thread: which other partition, and who owns it.
    return AnswerMiss(what, path, {miss->owned, owners_->DomainPartitions(), advertised_},
                      [this](int partition, std::chrono::milliseconds max_age) {
                        return owners_->Owner(partition, max_age);
                      });
  }

  void ServeQueries() {
    std::vector<std::packaged_task<HttpResponse()>> tasks;
    {
      std::lock_guard<std::mutex> lock(mailbox_mutex_);
      tasks.swap(mailbox_);
    }
    for (auto& task : tasks) {
      task();
    }
  }

  // State of partition `p` lives under <data_dir>/<log topic>-<p>/<domain>/, one RocksDB each.
  std::string PartitionDir(int partition) const {
    return absl::StrCat(config_.data_dir, "/", config_.log_topic, "-", partition);
  }

  // The store of `domain` in `part`, opened (and created) if need be.
  absl::StatusOr<storage::PartitionStore*> StoreOf(Partition& part, const std::string& domain) {
    std::unique_ptr<storage::PartitionStore>& store = part.stores[domain];
    if (store == nullptr) {
      storage::StoreOptions options;
      options.path = absl::StrCat(PartitionDir(part.id), "/", domain);
      options.resources = resources_;
      options.cached_clients = static_cast<std::size_t>(config_.store_cached_clients);
      options.wal = config_.store_wal;
      options.flush_interval = std::chrono::milliseconds(config_.store_flush_interval_ms);
      absl::StatusOr<std::unique_ptr<storage::PartitionStore>> opened =
          storage::PartitionStore::Open(options);
      if (!opened.ok()) {
        part.stores.erase(domain);
        return opened.status();
      }
      store = *std::move(opened);
    }
    return store.get();
  }

  // The router of a domain at its first record in the partition: kNotFound for a domain this
  // deployment does not route (the record is dead-lettered).
  absl::StatusOr<std::unique_ptr<router::Router>> MakeRouter(Partition& part,
                                                             const std::string& domain) {
    auto rules = rules_.find(domain);
    if (rules == rules_.end()) {
      return absl::NotFoundError("domain is not routed here");
    }
    SIGNPOST_ASSIGN_OR_RETURN(storage::PartitionStore * store, StoreOf(part, domain));
    return std::make_unique<router::Router>(rules->second, store->Clients());
  }

  // Opens the partition's stores (one per domain already seen there) and brings their routers
  // to the stored state. Records from the lowest stored offset up to the group's committed
  // offset will be replayed silently; each router skips what its state already holds.
  absl::Status Restore(Partition& part, std::int64_t committed) {
    namespace fs = std::filesystem;
    if (committed < 0) {
      // Every state would look ahead of it: rebuilt, again and again.
      return absl::InternalError(absl::StrCat("partition ", part.id, ": restore against offset ",
                                              committed));
    }
    const std::string root = PartitionDir(part.id);
    std::error_code ec;
    if (part.stores.empty() && fs::exists(root + "/CURRENT", ec)) {
      // The layout before domains (one store for the partition): rebuilt by replay.
      spdlog::warn("partition {}: state in the single-domain layout; rebuilding", part.id);
      fs::remove_all(root, ec);
    }
    for (const DomainConfig& d : config_.domains) {
      if (!part.stores.contains(d.id) && fs::exists(absl::StrCat(root, "/", d.id), ec)) {
        SIGNPOST_RETURN_IF_ERROR(StoreOf(part, d.id).status());
      }
    }
    std::int64_t applied = std::numeric_limits<std::int64_t>::max();
    std::int64_t newest = -1;
    for (auto& [domain, store] : part.stores) {
      store->DiscardUncommitted();
      applied = std::min(applied, store->AppliedOffset().Value());
      newest = std::max(newest, store->AppliedOffset().Value());
    }
    if (part.stores.empty()) {
      applied = -1;
    }
    if (newest + 1 > committed) {
      // Local state ahead of the group (a reset group or a recreated topic): rebuild.
      spdlog::warn("partition {}: local state at offset {} is ahead of the group's {}; rebuilding",
                   part.id, newest, committed);
      part.routers.reset();
      part.stores.clear();
      fs::remove_all(root, ec);
      return Restore(part, committed);
    }
    part.routers = std::make_unique<router::DomainRouters>(
        [this, &part](const std::string& domain) { return MakeRouter(part, domain); });
    for (auto& [domain, store] : part.stores) {
      SIGNPOST_ASSIGN_OR_RETURN(std::optional<v1::RouterSnapshot> state, store->LoadRouterState());
      if (state.has_value()) {
        SIGNPOST_ASSIGN_OR_RETURN(auto restored, router::Router::Restore(*state, store->Clients()));
        part.routers->Put(domain, std::move(restored));
      }  // else: its router starts with the domain's next record (see Handle)
    }
    part.applied = applied;
    part.replay_until = committed;
    part.dirty = false;
    part.dirty_domains.clear();
    part.next = 0;
    metrics_.RestoreRemaining(part.id).Set(static_cast<double>(committed - applied - 1));
    spdlog::info("partition {}: {} domain(s), state at offset {}, group committed {}, replaying {} "
                 "records",
                 part.id, part.stores.size(), applied, committed, committed - applied - 1);
    return absl::OkStatus();
  }

  // The group's committed offset of `partition` (0 when it has none). The coordinator can be
  // out of reach for a while (its broker restarting, say): retried for up to half the
  // consumers' max.poll.interval.ms (30 s by default), then kUnavailable and the stage stops.
  // Never a guess: restoring against a wrong offset would rebuild or skip state. The bound is
  // below the poll interval because this runs inside the rebalance callback: waiting longer
  // would get the member dropped from the group while it waits.
  absl::StatusOr<std::int64_t> Committed(int partition) {
    const Clock::time_point deadline = Clock::now() + MaxPollInterval(config_.kafka) / 2;
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      std::vector<RdKafka::TopicPartition*> tps = {
          RdKafka::TopicPartition::create(config_.log_topic, partition)};
      RdKafka::ErrorCode err = consumer_->committed(
          tps, static_cast<int>(std::clamp<std::int64_t>(left.count(), 1, 10'000)));
      const std::int64_t offset = tps[0]->offset();
      if (err == RdKafka::ERR_NO_ERROR) {
        // The partition's own error (the broker answers per partition): its offset is not the
        // group's, and taking it for "none committed" would replay and emit decisions again.
        err = tps[0]->err();
      }
      RdKafka::TopicPartition::destroy(tps);
      if (err == RdKafka::ERR_NO_ERROR) {
        return offset < 0 ? 0 : offset;
      }
      if (err == RdKafka::ERR__FATAL || Clock::now() >= deadline) {
        return absl::UnavailableError(absl::StrCat("partition ", partition,
                                                   ": committed offset: ", RdKafka::err2str(err)));
      }
      spdlog::warn("partition {}: reading the group's committed offset failed ({}); retrying",
                   partition, RdKafka::err2str(err));
      std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::seconds(1),
                                                            deadline - Clock::now()));
    }
  }

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (RdKafka::TopicPartition* tp : partitions) {
        Partition& part = partitions_[tp->partition()];
        part.id = tp->partition();
        part.epoch = ++epochs_;
        const absl::StatusOr<std::int64_t> committed = Committed(part.id);
        if (!committed.ok()) {
          callback_error_ = committed.status();  // the stage stops; nothing is assigned
          return;
        }
        if (absl::Status s = Restore(part, *committed); !s.ok()) {
          callback_error_ = s;
        }
        const std::int64_t from = part.applied + 1;
        tp->set_offset(from == 0 ? RdKafka::Topic::OFFSET_BEGINNING : from);
      }
      std::unique_ptr<RdKafka::Error> e(consumer->incremental_assign(partitions));
      if (e != nullptr) {
        callback_error_ = absl::InternalError(absl::StrCat("incremental_assign: ", e->str()));
      }
    } else {
      const bool lost = consumer->assignment_lost();
      if (producer_->open()) {
        if (lost) {
          std::string why;
          if (producer_->Abort(why) == TxnResult::kFatal) {
            callback_error_ = absl::InternalError(absl::StrCat("abort: ", why));
          }
          metrics_.TransactionAborts().Increment();
        } else if (absl::Status s = Commit(); !s.ok()) {
          callback_error_ = s;  // revoke: commit what was processed before giving it up
        }
      }
      for (RdKafka::TopicPartition* tp : partitions) {
        partitions_.erase(tp->partition());
        // Its lag and restore progress are now the new owner's to report; kept here, their last
        // values would stand beside the owner's (and a restore revoked midway would look stuck).
        metrics_.ForgetPartition(tp->partition());
      }
      std::unique_ptr<RdKafka::Error> e(consumer->incremental_unassign(partitions));
      if (e != nullptr) {
        if (closing_) {
          spdlog::warn("incremental_unassign while leaving the group: {}", e->str());
        } else {
          callback_error_ = absl::InternalError(absl::StrCat("incremental_unassign: ", e->str()));
        }
      }
    }
    metrics_.AssignedPartitions().Set(static_cast<double>(partitions_.size()));
    UpdateReady();
  }

  // Offset of the next record the consumer will return for `partition` (-1 if unknown).
  std::int64_t Position(int partition) {
    std::vector<RdKafka::TopicPartition*> tps = {
        RdKafka::TopicPartition::create(config_.log_topic, partition)};
    std::int64_t offset = -1;
    if (consumer_->position(tps) == RdKafka::ERR_NO_ERROR) {
      offset = tps[0]->offset();
    }
    RdKafka::TopicPartition::destroy(tps);
    return offset;
  }

  // Whether everything the group already committed has been replayed into the state.
  [[nodiscard]] bool Restored(Partition& part) {
    if (part.replay_until == 0) {
      return true;
    }
    return part.applied + 1 >= part.replay_until || Position(part.id) >= part.replay_until;
  }

  void UpdateReady() {
    bool ready = true;
    for (auto& [id, part] : partitions_) {
      ready = ready && Restored(part);
    }
    ready_ = ready && joined_;
  }

  absl::Status Batch() {
    const BatchLimits limits = BatchLimits::For(config_, *consumer_);
    int records = 0;
    while (records < limits.max_records && Clock::now() < limits.deadline) {
      // What is ready, up to a chunk: its client records are then read in one go.
      chunk_.clear();
      const std::size_t room =
          std::min<std::size_t>(kChunk, static_cast<std::size_t>(limits.max_records - records));
      while (chunk_.size() < room) {
        std::unique_ptr<RdKafka::Message> m(
            consumer_->consume(!chunk_.empty() ? 0 : records == 0 ? 100 : 5));
        if (!callback_error_.ok()) {
          return callback_error_;
        }
        joined_ = true;
        if (m->err() == RdKafka::ERR__TIMED_OUT || m->err() == RdKafka::ERR__PARTITION_EOF) {
          break;
        }
        if (m->err() != RdKafka::ERR_NO_ERROR) {
          if (m->err() == RdKafka::ERR__FATAL) {
            return RecoverFencedConsumer();
          }
          spdlog::warn("consume error: {}", m->errstr());
          continue;
        }
        auto it = partitions_.find(m->partition());
        if (it == partitions_.end()) {
          continue;  // a record of a partition revoked meanwhile
        }
        chunk_.push_back({std::move(m), it->second.epoch});
      }
      if (chunk_.empty()) {
        if (records == 0 || limits.until_idle) {
          break;  // nothing at all, or caught up: commit now rather than wait for new records
        }
        continue;
      }
      ParseAndPrefetch();
      for (std::size_t i = 0; i < chunk_.size(); ++i) {
        // The memory the record a few places ahead will look up starts loading now. In
        // route_bench, 4 ahead routed 10 % more decisions per second (median of six pairs);
        // end to end no change in the routing thread's CPU was measurable.
        if (constexpr std::size_t kAhead = 4; i + kAhead < chunk_.size()) {
          PrefetchFor(i + kAhead);
        }
        auto it = partitions_.find(chunk_[i].message->partition());
        if (it == partitions_.end() || it->second.epoch != chunk_[i].epoch) {
          continue;  // revoked (or revoked and assigned again) while the chunk filled
        }
        ++records;
        SIGNPOST_RETURN_IF_ERROR(
            Handle(it->second, *chunk_[i].message, *parsed_[i], chunk_[i].parsed));
      }
    }
    chunk_.clear();
    SIGNPOST_RETURN_IF_ERROR(MaybeTick());
    if (producer_->open()) {
      SIGNPOST_RETURN_IF_ERROR(Commit());
    } else {
      SIGNPOST_RETURN_IF_ERROR(CommitStores());  // replay-only batch: nothing for Kafka
    }
    UpdateReady();
    Publish();
    return absl::OkStatus();
  }

  // Parses the chunk's records into parsed_, then reads the client records and referral ids
  // its referrals will look up, per store, in one batched read each.
  void ParseAndPrefetch() {
    parsed_.clear();
    arena_.Reset();  // the last chunk's records are handled
    prefetch_.clear();
    for (std::size_t i = 0; i < chunk_.size(); ++i) {
      RdKafka::Message& m = *chunk_[i].message;
      v1::Envelope& event = *parsed_.emplace_back(
          google::protobuf::Arena::CreateMessage<v1::Envelope>(&arena_));
      chunk_[i].parsed = event.ParseFromArray(m.payload(), static_cast<int>(m.len()));
      if (!chunk_[i].parsed || !event.has_referral_submitted()) {
        continue;
      }
      auto part = partitions_.find(m.partition());
      if (part == partitions_.end() || part->second.epoch != chunk_[i].epoch) {
        continue;  // revoked while the chunk filled: it will not be handled
      }
      auto store = part->second.stores.find(event.domain());
      if (store == part->second.stores.end() || store->second == nullptr) {
        continue;  // the domain's first records here: nothing stored to read
      }
      auto keys = std::find_if(prefetch_.begin(), prefetch_.end(), [&](const PrefetchKeys& k) {
        return k.store == store->second.get();
      });
      if (keys == prefetch_.end()) {
        keys = prefetch_.insert(prefetch_.end(), PrefetchKeys{store->second.get(), {}, {}});
      }
      keys->clients.push_back(event.referral_submitted().client_ref());
      keys->referrals.push_back(event.referral_submitted().referral_id());
    }
    for (PrefetchKeys& keys : prefetch_) {
      keys.store->Prefetch(keys.clients, keys.referrals);
    }
  }

  void PrefetchFor(std::size_t i) {
    if (!chunk_[i].parsed) {
      return;
    }
    auto it = partitions_.find(chunk_[i].message->partition());
    if (it != partitions_.end() && it->second.epoch == chunk_[i].epoch) {
      it->second.routers->Prefetch(*parsed_[i]);
    }
  }

  absl::Status Handle(Partition& part, RdKafka::Message& m, v1::Envelope& event, bool parsed) {
    if (m.offset() <= part.applied) {
      return absl::OkStatus();  // delivered twice (librdkafka 2.0.2 can): nothing changes
    }
    const bool replaying = m.offset() < part.replay_until;
    part.applied = m.offset();
    part.dirty = true;
    if (!replaying) {
      part.next = m.offset() + 1;
    }
    if (!parsed) {
      return replaying ? absl::OkStatus()
                       : DeadLetter(m, DlqReason::kUnparsable, "log record is not an Envelope");
    }
    out_.Clear();
    if (absl::Status applied = part.routers->Apply(event, Offset(m.offset()), out_);
        !applied.ok()) {
      if (!absl::IsNotFound(applied)) {
        return applied;
      }
      return replaying ? absl::OkStatus()
                       : DeadLetter(m, DlqReason::kUnknownDomain, "domain is not routed here");
    }
    for (const router::DomainRouters::Touched& t : part.routers->Applied()) {
      part.dirty_domains.insert(*t.domain);
    }
    if (replaying) {
      metrics_.Replayed().Increment();
      return absl::OkStatus();
    }
    SIGNPOST_RETURN_IF_ERROR(producer_->Begin());
    records_in_(event.body_case()).Increment();
    for (std::size_t i = 0; i < out_.size(); ++i) {
      // Decisions come serialized, keyed by the pod they concern, else the need.
      SIGNPOST_RETURN_IF_ERROR(
          producer_->Produce(config_.decisions_topic, out_.key(i), out_.bytes(i)));
      const v1::Envelope::BodyCase body = out_.body(i);
      decisions_(body).Increment();
      if (body == v1::Envelope::kEscalated) {
        metrics_.Escalations(out_[i].domain(), out_.key(i)).Increment();  // rare: parsed
      } else if (body == v1::Envelope::kReleased) {
        static const std::map<int, const char*> kAnswer = {
            {v1::RELEASE_REASON_DECLINED, "declined"},
            {v1::RELEASE_REASON_COMPLETED, "completed"},
            {v1::RELEASE_REASON_WITHDRAWN, "withdrawn"},
            {v1::RELEASE_REASON_ACCEPT_TIMEOUT, "accept_timeout"},
            {v1::RELEASE_REASON_POD_CLOSED, "pod_closed"},
            {v1::RELEASE_REASON_CLIENT_ERASED, "client_erased"}};
        if (auto it = kAnswer.find(out_.reason(i)); it != kAnswer.end()) {
          metrics_.PodAnswers(out_.key(i), it->second).Increment();
        }
      }
    }
    for (const router::DomainRouters::Touched& t : part.routers->Applied()) {
      for (const router::PodTiming& timing : t.router->Timings()) {
        const std::string& pod = t.router->rules().pods[timing.pod].id;
        (timing.kind == router::PodTiming::kAccept ? metrics_.TimeToAccept(pod)
                                                   : metrics_.TimeToComplete(pod))
            .Observe(static_cast<double>(timing.ms) / 1000.0);
      }
    }
    // An accept changes state without a decision; counted when the router did not reject it.
    if (event.has_pod_response() && event.pod_response().has_accepted() &&
        !part.routers->Applied().empty() &&
        (out_.empty() || out_.body(0) != v1::Envelope::kRejected)) {
      metrics_.PodAnswers(event.pod_response().pod_id(), "accepted").Increment();
    }
    if (event.has_referral_submitted() || event.has_pod_response()) {
      event_times_.push_back(event.event_time_ms());
    }
    return absl::OkStatus();
  }

  // A log record the routers cannot use, to the DLQ inside the batch's transaction.
  absl::Status DeadLetter(RdKafka::Message& m, DlqReason reason, const char* detail) {
    SIGNPOST_RETURN_IF_ERROR(producer_->Begin());
    return services::DeadLetter(*producer_, metrics_, config_.dlq_topic, m, reason, detail);
  }

  // Writes a Tick into every owned partition of the log, so timers become part of the log.
  absl::Status MaybeTick() {
    if (Clock::now() < next_tick_ || partitions_.empty()) {
      return absl::OkStatus();
    }
    next_tick_ = Clock::now() + std::chrono::milliseconds(config_.tick_interval_ms);
    for (auto& [id, part] : partitions_) {
      if (part.routers == nullptr || part.routers->all().empty() || !Restored(part)) {
        continue;  // no domain routed here yet, or not restored yet
      }
      SIGNPOST_RETURN_IF_ERROR(producer_->Begin());
      v1::Envelope tick;
      tick.set_schema_version(1);
      const std::int64_t now_ms = WallMs();
      tick.set_event_id(
          absl::StrCat("tick/", config_.instance_id, "/", id, "/", now_ms, "-", ++tick_seq_));
      tick.set_event_time_ms(now_ms);
      tick.set_producer(absl::StrCat("router/", config_.instance_id));
      // No domain: every domain's router in the partition applies it.
      tick.mutable_tick()->set_sequence(tick_seq_);
      SIGNPOST_RETURN_IF_ERROR(
          producer_->Produce(config_.log_topic, "tick", tick.SerializeAsString(), nullptr, id));
    }
    return absl::OkStatus();
  }

  // Leaves the group. The consumer's messages go first: librdkafka waits for every message
  // still referenced before it destroys the handle, so one held would hang the close.
  void CloseConsumer() {
    chunk_.clear();
    CloseGroupConsumer(consumer_);
  }

  // Drops the batch in hand and every partition, and joins the group with a new consumer;
  // partitions come back through the rebalance callback and are restored from their stores.
  absl::Status ReplaceConsumer() {
    std::string why;
    if (producer_->open() && producer_->Abort(why) == TxnResult::kFatal) {
      SIGNPOST_RETURN_IF_ERROR(ReplaceFatalProducer(producer_, fencing_, config_, "routing", why));
    }
    event_times_.clear();
    CloseConsumer();
    partitions_.clear();
    callback_error_ = absl::OkStatus();
    SIGNPOST_ASSIGN_OR_RETURN(consumer_, MakeConsumer(config_, config_.group_id,
                                                      config_.instance_id, this, ClientId()));
    if (consumer_->subscribe({config_.log_topic}) != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError("subscribe after replacing the consumer");
    }
    return absl::OkStatus();
  }

  // Commits the transaction (decisions, DLQ records, ticks and the consumed offsets), then the
  // state of every partition it touched, each with its offset in one RocksDB batch.
  absl::Status Commit() {
    std::vector<RdKafka::TopicPartition*> offsets;
    for (auto& [id, part] : partitions_) {
      if (part.next > 0) {
        offsets.push_back(RdKafka::TopicPartition::create(config_.log_topic, id, part.next));
      }
    }
    std::string why;
    const auto started = Clock::now();
    const TxnResult r = producer_->SendOffsetsAndCommit(offsets, consumer_.get(), why);
    RdKafka::TopicPartition::destroy(offsets);
    if (r == TxnResult::kFatal) {
      SIGNPOST_RETURN_IF_ERROR(ReplaceFatalProducer(producer_, fencing_, config_, "routing", why));
    }
    if (r != TxnResult::kOk) {
      metrics_.TransactionAborts().Increment();
      spdlog::warn("transaction aborted ({}); restoring state and rewinding", why);
      event_times_.clear();
      return ResetAfterAbort();
    }
    const auto committed = Clock::now();
    metrics_.CommitLatency().Observe(std::chrono::duration<double>(committed - started).count());
    SIGNPOST_RETURN_IF_ERROR(CommitStores());
    metrics_.StateHandover().Observe(
        std::chrono::duration<double>(Clock::now() - committed).count());
    ObserveAges(metrics_.EndToEndLatency(), WallMs(), event_times_);
    event_times_.clear();
    return absl::OkStatus();
  }

  // Each store of a touched partition gets the partition's offset (so none lags far behind
  // and restores replay little), with its domain's changes when it has any.
  absl::Status CommitStores() {
    for (auto& [id, part] : partitions_) {
      part.next = 0;
      if (!part.dirty) {
        continue;
      }
      for (auto& [domain, store] : part.stores) {
        SIGNPOST_RETURN_IF_ERROR(store->ReadStatus());
        router::Router* router = part.routers->Find(domain);
        const bool changed = router != nullptr && part.dirty_domains.contains(domain);
        if (changed) {
          router->TakeChanges(changes_);
        }
        // Written while the next batch is routed; an error (of this write or the one before)
        // stops the process, and the restart replays the gap silently.
        SIGNPOST_RETURN_IF_ERROR(
            store->CommitAsync(changed ? &changes_ : nullptr, Offset(part.applied)));
      }
      part.dirty = false;
      part.dirty_domains.clear();
      metrics_.RestoreRemaining(id).Set(
          static_cast<double>(Restored(part) ? 0 : part.replay_until - part.applied - 1));
    }
    return absl::OkStatus();
  }

  // The consumer has a fatal error: see the intake stage's.
  absl::Status RecoverFencedConsumer() {
    std::string reason;
    consumer_->fatal_error(reason);
    if (!fencing_.MayRecover(*consumer_)) {
      return absl::InternalError(absl::StrCat("consumer: ", reason));
    }
    spdlog::warn("consumer fenced after a coordinator change; replacing it");
    return ReplaceConsumer();
  }

  absl::Status ResetAfterAbort() {
    if (std::string reason; consumer_->fatal_error(reason) != RdKafka::ERR_NO_ERROR) {
      return RecoverFencedConsumer();  // the abort came from our consumer being fenced
    }
    for (auto& [id, part] : partitions_) {
      SIGNPOST_ASSIGN_OR_RETURN(const std::int64_t committed, Committed(id));
      SIGNPOST_RETURN_IF_ERROR(Restore(part, committed));
      const std::int64_t from = part.applied + 1;
      std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(
          config_.log_topic, id, from == 0 ? RdKafka::Topic::OFFSET_BEGINNING : from));
      if (RdKafka::ErrorCode err = consumer_->seek(*tp, 10'000); err != RdKafka::ERR_NO_ERROR) {
        if (std::string reason; consumer_->fatal_error(reason) != RdKafka::ERR_NO_ERROR) {
          return RecoverFencedConsumer();
        }
        // Mid-rebalance a partition can refuse the seek (ERR__STATE): a new consumer restores
        // every partition it is given from its store and the committed offsets.
        spdlog::warn("rewind of partition {} failed ({}); restarting the consumer", id,
                     RdKafka::err2str(err));
        return ReplaceConsumer();
      }
    }
    return absl::OkStatus();
  }

  // Gauges and the published pod figures, after each batch.
  void Publish() {
    const auto now = Clock::now();
    if (now < next_publish_) {
      return;
    }
    next_publish_ = now + std::chrono::milliseconds(500);
    nlohmann::json pods = nlohmann::json::array();
    // Sums over the owned partitions (each may route part of the domains).
    std::map<std::string, std::pair<double, double>> pod_totals;  // open cost, capacity
    // (domain, need) -> waiting, oldest wait s
    std::map<std::pair<std::string, std::string>, std::pair<double, double>> need_totals;
    std::map<std::string, double> open_totals;  // domain -> open needs
    // Every configured domain and need starts at zero, so figures of partitions this instance
    // gave up fall to zero instead of staying at their last value (sums over instances would
    // count them twice).
    for (const auto& [domain, rules] : rules_) {
      open_totals[domain] = 0;
      for (const router::NeedType& need : rules->needs) {
        need_totals[{domain, need.code}] = {0.0, 0.0};
      }
      for (const router::PodRule& pod : rules->pods) {
        pod_totals[pod.id] = {0.0, 0.0};
      }
    }
    for (auto& [id, part] : partitions_) {
      if (part.routers == nullptr) {
        continue;
      }
      for (const auto& [domain, router] : part.routers->all()) {
        const router::Rules& rules = router->rules();
        for (const router::PodFigures& pod : router->Pods()) {
          auto& t = pod_totals[pod.id];
          t.first += pod.open_cost;
          t.second += pod.capacity;
          pods.push_back({{"partition", id},
                          {"domain", domain},
                          {"pod", pod.id},
                          {"status", v1::PodStatus_Name(pod.status)},
                          {"capacity", pod.capacity},
                          {"open_cost", pod.open_cost},
                          {"open_needs", pod.open_needs}});
        }
        open_totals[domain] += static_cast<double>(router->OpenNeedCount());
        for (router::NeedIndex n = 0; n < rules.needs.size(); ++n) {
          auto& t = need_totals[{domain, rules.needs[n].code}];
          t.first += static_cast<double>(router->QueuedCount(n));
          t.second = std::max(t.second, static_cast<double>(router->OldestWaitMs(n)) / 1000.0);
        }
      }
      // Records of the log not yet processed: from the last applied one (restored from the
      // store, so known before anything is consumed) to the end the last fetch saw. An empty
      // partition, which the consumer never returns a record from, is reported at 0.
      std::int64_t low = 0;
      std::int64_t high = 0;
      if (consumer_->get_watermark_offsets(config_.log_topic, id, &low, &high) ==
              RdKafka::ERR_NO_ERROR &&
          high >= 0) {
        const std::int64_t next = std::max<std::int64_t>(low, part.applied + 1);
        metrics_.ConsumerLag(id).Set(static_cast<double>(std::max<std::int64_t>(0, high - next)));
      }
    }
    for (const auto& [pod, t] : pod_totals) {
      metrics_.PodOpen(pod).Set(t.first);
      metrics_.PodCapacity(pod).Set(t.second);
      metrics_.PodUtilisation(pod).Set(t.second == 0 ? 0.0 : t.first / t.second);
    }
    for (const auto& [domain, open] : open_totals) {
      metrics_.OpenNeeds(domain).Set(open);
    }
    for (const auto& [key, t] : need_totals) {
      metrics_.Waiting(key.first, key.second).Set(t.first);
      metrics_.OldestWaitSeconds(key.first, key.second).Set(t.second);
    }
    metrics_.RocksDbMemory().Set(static_cast<double>(resources_->MemoryUsage()));
    std::lock_guard<std::mutex> lock(published_mutex_);
    pods_json_ = pods.dump();
  }

  const ServiceConfig& config_;
  Metrics& metrics_;
  CounterByBody records_in_{[this](const char* type) -> prometheus::Counter& {
    return metrics_.RecordsIn(config_.log_topic, type);
  }};
  CounterByBody decisions_{
      [this](const char* type) -> prometheus::Counter& { return metrics_.Decisions(type); }};
  std::shared_ptr<storage::StoreResources> resources_;
  const DomainRules rules_;
  std::unique_ptr<OwnerDirectory> owners_;
  std::unique_ptr<TxnProducer> producer_;
  GroupConsumer consumer_;
  std::map<int, Partition> partitions_;
  std::string advertised_;  // host:port of our query API, or empty
  FencedMembership fencing_;
  absl::Status callback_error_;
  std::atomic<bool> ready_{false};
  bool joined_ = false;
  bool closing_ = false;
  router::DecisionBuffer out_;
  router::RouterChanges changes_;
  // The records of a batch are handled in chunks of up to kChunk, parsed first so their
  // client records can be prefetched.
  static constexpr std::size_t kChunk = 256;
  struct Held {
    std::unique_ptr<RdKafka::Message> message;
    std::uint64_t epoch = 0;  // of the partition's assignment when consumed
    bool parsed = false;
  };
  std::vector<Held> chunk_;
  // The chunk's records, by position, parsed on an arena reset per chunk: the messages come
  // from its first block (kept across resets) and are freed together, not one by one. (Strings
  // past the short-string size still take a heap buffer each.)
  static constexpr std::size_t kArenaBlock = 512 << 10;
  static google::protobuf::ArenaOptions ArenaFor(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kArenaBlock;
    options.max_block_size = kArenaBlock;
    return options;
  }
  std::unique_ptr<char[]> arena_block_ = std::make_unique<char[]>(kArenaBlock);
  google::protobuf::Arena arena_{ArenaFor(arena_block_.get())};
  std::vector<v1::Envelope*> parsed_;
  struct PrefetchKeys {
    storage::PartitionStore* store;
    std::vector<std::string_view> clients;
    std::vector<std::string_view> referrals;
  };
  std::vector<PrefetchKeys> prefetch_;
  std::uint64_t epochs_ = 0;  // assignments so far
  std::vector<std::int64_t> event_times_;
  Clock::time_point next_tick_;
  Clock::time_point next_publish_;
  std::uint64_t tick_seq_ = 0;
  std::mutex published_mutex_;
  std::string pods_json_ = "[]";
  std::mutex mailbox_mutex_;
  std::vector<std::packaged_task<HttpResponse()>> mailbox_;
};

std::string PathParameter(const std::string& target, const std::string& prefix) {
  std::string rest = target.substr(prefix.size());
  const std::size_t q = rest.find('?');
  return q == std::string::npos ? rest : rest.substr(0, q);
}

}  // namespace

// (Draining 400,000 pre-loaded referrals on the 2-core machine: 34-38k/s with 30 ms / 2,000
// batches, 42-46k/s with 100 ms / 5,000.)
BatchSize BatchFor(const ServiceConfig& config, std::int64_t backlog) {
  const int catchup_records = std::max(config.batch_max_records, config.batch_catchup_max_records);
  const std::int64_t threshold =
      config.batch_catchup_backlog_records > 0
          ? config.batch_catchup_backlog_records
          : std::min<std::int64_t>(catchup_records, 2 * std::int64_t{config.batch_max_records});
  if (backlog >= threshold) {
    return {catchup_records, std::max(config.batch_max_ms, config.batch_catchup_max_ms), true};
  }
  return {config.batch_max_records, config.batch_max_ms, false};
}

absl::Status RunService(const ServiceConfig& config, const std::atomic<bool>& stop) {
  SIGNPOST_ASSIGN_OR_RETURN(DomainRules rules, LoadDomainRules(config));
  if (config.store_low_priority_compaction) {
    storage::StoreResources::LowerCompactionPriority();
  }
  Metrics metrics;
  RoutingStage routing(config, rules, metrics);
  SIGNPOST_ASSIGN_OR_RETURN(
      auto http, HttpServer::Start(config.http_listen, [&](const std::string& target) {
        if (target == "/metrics") {
          return HttpResponse{200, "text/plain; version=0.0.4", metrics.Serialize()};
        }
        if (target == "/healthz") {
          return HttpResponse{200, "application/json", R"({"status":"alive"})"};
        }
        if (target == "/readyz") {
          return routing.Ready()
                     ? HttpResponse{200, "application/json", R"({"status":"ready"})"}
                     : HttpResponse{503, "application/json",
                                    R"({"status":"restoring or joining the group"})"};
        }
        if (target == "/v1/pods") {
          return HttpResponse{200, "application/json", routing.PodsJson()};
        }
        if (target.rfind("/v1/clients/", 0) == 0) {
          return routing.QueryClient(PathParameter(target, "/v1/clients/"));
        }
        if (target.rfind("/v1/referrals/", 0) == 0) {
          return routing.QueryReferral(PathParameter(target, "/v1/referrals/"));
        }
        return HttpResponse{404, "application/problem+json",
                            R"({"title":"Not Found","status":404})"};
      }));
  // Other instances redirect queries here: the configured address, else the listen host with
  // the port actually bound (none when listening on every interface).
  std::string advertised = config.http_advertise;
  const std::string host = config.http_listen.substr(0, config.http_listen.rfind(':'));
  if (advertised.empty() && host != "0.0.0.0" && host != "::" && !host.empty()) {
    advertised = absl::StrCat(host, ":", http->port());
  }
  routing.SetAdvertised(advertised);
  spdlog::info("http on {}:{} (/metrics /healthz /readyz /v1/pods /v1/clients/<ref> "
               "/v1/referrals/<id>), advertised as {}", host, http->port(),
               advertised.empty() ? "nothing" : advertised);
  SIGNPOST_RETURN_IF_ERROR(routing.Init());

  IntakeStage intake(config, MakeIntakeRules(config, rules), metrics);
  absl::Status intake_result;
  std::atomic<bool> intake_failed{false};
  std::atomic<bool> stop_intake{false};
  std::thread intake_thread([&] {
    pthread_setname_np(pthread_self(), "intake");  // as `top -H` shows it
    intake_result = intake.Run(stop_intake);
    if (!intake_result.ok()) {
      spdlog::error("intake stage stopped: {}", intake_result.ToString());
      intake_failed = true;
    }
  });
  // The routing stage runs on this thread until stopped or failed; the intake stage follows it.
  std::atomic<bool> stop_routing{false};
  std::thread watcher([&] {
    while (!stop && !intake_failed && !stop_routing) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop_routing = true;
  });
  absl::Status routing_result = routing.Run(stop_routing);
  stop_routing = true;
  stop_intake = true;
  watcher.join();
  intake_thread.join();
  if (!routing_result.ok()) {
    return routing_result;
  }
  return intake_result;
}

HttpResponse AnswerMiss(const std::string& what, const std::string& path, const QueryMiss& miss,
                        const OwnerLookup& owner_of) {
  std::set<int> elsewhere;
  for (int partition : miss.domain_partitions) {
    if (!miss.owned.contains(partition)) {
      elsewhere.insert(partition);
    }
  }
  auto problem = [&](int status, std::string_view title, std::string_view detail) {
    nlohmann::json body = {{"title", title}, {"status", status}, {"detail", detail}};
    body["owned_partitions"] = miss.owned;
    return body;
  };
  auto retry = [&](std::string_view detail) {  // the data may exist: ask again in a second
    return HttpResponse{503, "application/problem+json",
                        problem(503, "Owner unknown", detail).dump(), {}, /*retry_after_s=*/1};
  };
  // Without an advertised address of our own, instances cannot find one another: 404 below.
  const bool routable = !miss.advertised.empty();
  if (elsewhere.size() == 1 && routable) {
    const int partition = *elsewhere.begin();
    std::optional<std::string> owner = owner_of(partition, std::chrono::seconds(1));
    if (!owner.has_value() || *owner == miss.advertised) {
      // Unknown, or still us in a cached list from before we lost it: ask again, at most every
      // 100 ms across queries.
      owner = owner_of(partition, std::chrono::milliseconds(100));
    }
    if (owner.has_value() && !owner->empty() && *owner != miss.advertised) {
      nlohmann::json body = {{"title", "Owned by another instance"},
                             {"status", 307},
                             {"partition", partition},
                             {"owner", *owner}};
      return {307, "application/problem+json", body.dump(), absl::StrCat("http://", *owner, path)};
    }
    if (!owner.has_value() || !owner->empty()) {
      // Not known, or still us: the group is rebalancing, and a "not found" would be wrong.
      return retry(absl::StrCat("partition ", partition, " is between owners (a rebalance)"));
    }
    // Owned by an instance that advertises no query address: nowhere to send the caller.
  }
  if (elsewhere.empty() && miss.owned.empty() && routable) {
    return retry("this instance owns no partition yet and the log's are not known");
  }
  nlohmann::json body =
      problem(404, "Not found here",
              absl::StrCat("no ", what, " with that id in the ", miss.owned.size(),
                           " partition(s) this instance owns"));
  if (elsewhere.size() > 1) {
    body["other_partitions"] = elsewhere;  // the domains are spread: ask their owners
  }
  return {404, "application/problem+json", body.dump()};
}

}  // namespace signpost::services

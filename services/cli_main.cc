// SPDX-License-Identifier: Apache-2.0
// signpost: the command line for operators and the demo.
//   signpost topics   create Signpost's topics
//   signpost load     publish a spring-2020-shaped surge and a bulk shielding-list import
//   signpost summary  read the committed decisions and print what happened
//   signpost rules apply / pod / erase   publish an operator's control event (services/control.h)
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <random>

#include <sys/resource.h>

#include "CLI/CLI.hpp"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "librdkafka/rdkafkacpp.h"
#include "services/control.h"
#include "services/kafka/client_config.h"
#include "services/kafka/topics.h"
#include "services/kafka/txn_producer.h"
#include "signpost/v1/envelope.pb.h"

namespace {

using signpost::services::KafkaProperties;
using signpost::services::MakeClientConf;

std::int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The May 2020 referral mix of the B&NES hub (Figure U7), by need code.
const std::vector<std::pair<const char*, int>> kMayMix = {
    {"community-volunteer", 444}, {"food", 146}, {"enhanced-triage", 123},
    {"logistics-transport", 115}, {"shielding-welfare-check", 15}, {"mental-wellbeing", 58},
    {"money-work", 45}, {"housing", 11}, {"general-wellbeing", 6}, {"public-health", 5},
    {"council-services", 5}, {"social-care", 2}, {"discharge-support", 1},
    {"family-support", 2}, {"health-access", 1}, {"social-prescribing", 1}};

int Topics(const std::string& bootstrap, int partitions, const std::vector<std::string>& also) {
  auto specs = signpost::services::SignpostTopics(partitions, 1);
  for (const std::string& name : also) {
    specs.push_back({name, partitions, 1, {}});
  }
  const absl::Status s =
      signpost::services::CreateTopics({{"bootstrap.servers", bootstrap}}, specs, 30'000);
  if (!s.ok()) {
    std::cerr << "signpost topics: " << s << "\n";
    return 1;
  }
  std::cout << "topics ready (" << partitions << " partitions each)\n";
  return 0;
}

int Load(const std::string& bootstrap, const std::string& topic, int referrals, int shielding,
         std::uint64_t seed, int rate) {
  auto conf = MakeClientConf({{"bootstrap.servers", bootstrap},
                              {"enable.idempotence", "true"},
                              {"acks", "all"},
                              {"linger.ms", "10"},
                              {"batch.num.messages", "10000"}});
  if (!conf.ok()) {
    std::cerr << conf.status() << "\n";
    return 1;
  }
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  if (producer == nullptr) {
    std::cerr << error << "\n";
    return 1;
  }
  std::mt19937_64 rng(seed);
  int total_weight = 0;
  for (const auto& [need, weight] : kMayMix) {
    total_weight += weight;
  }
  static const char* kOutward[] = {"BA1", "BA2", "BA2", "BA1", "BA3", "BS31", "BS39", "BS40"};
  const auto paced_start = std::chrono::steady_clock::now();
  auto send = [&](int n, const std::string& need, signpost::v1::Source source,
                  signpost::v1::Urgency urgency) {
    signpost::v1::Envelope e;
    e.set_schema_version(1);
    e.set_event_id(absl::StrCat("demo-", seed, "-", n));
    e.set_event_time_ms(WallMs());
    e.set_producer("signpost-cli/load");
    auto* r = e.mutable_referral_submitted();
    r->set_referral_id(absl::StrCat("demo-ref-", seed, "-", n));
    // Pseudonymous client refs; a few clients are referred more than once.
    r->set_client_ref(absl::StrCat("client-", rng() % static_cast<std::uint64_t>(
                                                  std::max(1, (referrals + shielding) * 9 / 10))));
    r->set_source(source);
    r->add_needs()->set_code(need);
    r->set_urgency(urgency);
    r->set_postcode_outward(kOutward[rng() % 8]);
    r->set_birth_year(1925 + static_cast<std::uint32_t>(rng() % 75));
    r->add_consent(signpost::v1::CONSENT_SCOPE_SHARE_WITH_PODS);
    if (rng() % 10 != 0) {
      r->add_consent(signpost::v1::CONSENT_SCOPE_VOLUNTEER_CONTACT);
    }
    if (source == signpost::v1::SOURCE_LIST_IMPORT) {
      r->add_flags(signpost::v1::CLIENT_FLAG_SHIELDING);
    }
    if (rate > 0) {  // paced: record n is due at n / rate seconds
      const auto due = paced_start + std::chrono::microseconds(static_cast<std::int64_t>(n) *
                                                               1'000'000 / rate);
      while (std::chrono::steady_clock::now() < due) {
        producer->poll(1);
      }
      e.set_event_time_ms(WallMs());
    }
    const std::string value = e.SerializeAsString();
    const std::string& key = r->client_ref();
    while (true) {
      const RdKafka::ErrorCode err = producer->produce(
          topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
          const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, nullptr);
      if (err == RdKafka::ERR_NO_ERROR) {
        break;
      }
      if (err != RdKafka::ERR__QUEUE_FULL) {
        std::cerr << "produce: " << RdKafka::err2str(err) << "\n";
        return false;
      }
      producer->poll(10);
    }
    return true;
  };
  const auto started = std::chrono::steady_clock::now();
  int n = 0;
  for (int i = 0; i < referrals; ++i, ++n) {
    int pick = static_cast<int>(rng() % static_cast<std::uint64_t>(total_weight));
    const char* need = kMayMix[0].first;
    for (const auto& [code, weight] : kMayMix) {
      if ((pick -= weight) < 0) {
        need = code;
        break;
      }
    }
    const auto urgency = rng() % 10 == 0 ? signpost::v1::URGENCY_URGENT : signpost::v1::URGENCY_ROUTINE;
    if (!send(n, need, signpost::v1::SOURCE_HUB_TRIAGE, urgency)) {
      return 1;
    }
  }
  for (int i = 0; i < shielding; ++i, ++n) {
    if (!send(n, "shielding-welfare-check", signpost::v1::SOURCE_LIST_IMPORT,
              signpost::v1::URGENCY_SOON)) {
      return 1;
    }
  }
  if (producer->flush(120'000) != RdKafka::ERR_NO_ERROR) {
    std::cerr << "signpost load: not every record was acknowledged\n";
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "published " << referrals << " surge referrals and a shielding list of "
            << shielding << " in " << seconds << " s\n";
  return 0;
}

// A consumer of `topic` from its start, read_committed, in a group of its own.
std::unique_ptr<RdKafka::KafkaConsumer> FreshReader(const std::string& bootstrap,
                                                    const std::string& group_prefix,
                                                    const std::string& topic,
                                                    const KafkaProperties& extra = {},
                                                    bool subscribe = true) {
  KafkaProperties props = {{"bootstrap.servers", bootstrap},
                           {"group.id", absl::StrCat(group_prefix, WallMs())},
                           {"isolation.level", "read_committed"},
                           {"auto.offset.reset", "earliest"},
                           {"enable.auto.commit", "false"}};
  props.insert(extra.begin(), extra.end());
  auto conf = MakeClientConf(props);
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      conf.ok() ? RdKafka::KafkaConsumer::create(conf->get(), error) : nullptr);
  if (consumer == nullptr ||
      (subscribe && consumer->subscribe({topic}) != RdKafka::ERR_NO_ERROR)) {
    std::cerr << "signpost: cannot read " << topic << ": " << error << "\n";
    return nullptr;
  }
  return consumer;
}

// Assigns every partition of `topic` at its current end (no group, so no rebalance wait): a
// reader started before a load then reads only what the load causes, not the topic's history.
bool AssignAtEnd(RdKafka::KafkaConsumer& consumer, const std::string& topic) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> handle(RdKafka::Topic::create(&consumer, topic, nullptr, error));
  RdKafka::Metadata* raw = nullptr;
  if (handle == nullptr ||
      consumer.metadata(false, handle.get(), &raw, 10'000) != RdKafka::ERR_NO_ERROR) {
    return false;
  }
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::vector<RdKafka::TopicPartition*> partitions;
  bool ok = true;
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      ok = ok && consumer.query_watermark_offsets(topic, p->id(), &low, &high, 10'000) ==
                     RdKafka::ERR_NO_ERROR;
      partitions.push_back(RdKafka::TopicPartition::create(topic, p->id(), high));
    }
  }
  ok = ok && !partitions.empty() && consumer.assign(partitions) == RdKafka::ERR_NO_ERROR;
  RdKafka::TopicPartition::destroy(partitions);
  return ok;
}

// User + system CPU of this process so far, all threads (librdkafka's included).
std::int64_t ProcessCpuMicros() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000LL + usage.ru_utime.tv_usec +
         usage.ru_stime.tv_usec;
}

// The ceiling the router is measured against: a transactional consume -> produce copy of
// `count` records from `from` to `to`, batched like the router (up to `batch` records or `max_ms`
// a transaction), with no routing. Prints records/s.
int Copy(const std::string& bootstrap, const std::string& from, const std::string& to, int count,
         int batch, int max_ms) {
  std::unique_ptr<RdKafka::KafkaConsumer> consumer = FreshReader(bootstrap, absl::StrCat("signpost-copy-", from, "-"), from);
  auto producer = signpost::services::TxnProducer::Create(
      {{"bootstrap.servers", bootstrap}}, absl::StrCat("signpost-copy-", from, "-", WallMs()));
  if (consumer == nullptr || !producer.ok()) {
    std::cerr << "signpost copy: cannot start\n";
    return 1;
  }
  int copied = 0;
  std::chrono::steady_clock::time_point started;
  std::int64_t cpu_started_us = 0;
  while (copied < count) {
    std::map<int, std::int64_t> next;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
    int in_batch = 0;
    while (in_batch < batch && copied + in_batch < count &&
           std::chrono::steady_clock::now() < deadline) {
      std::unique_ptr<RdKafka::Message> m(consumer->consume(in_batch == 0 ? 1000 : 5));
      if (m->err() != RdKafka::ERR_NO_ERROR) {
        continue;
      }
      if (copied == 0 && in_batch == 0) {
        started = std::chrono::steady_clock::now();
        cpu_started_us = ProcessCpuMicros();
      }
      if (!(*producer)->Begin().ok() ||
          !(*producer)
               ->Produce(to, m->key() ? *m->key() : "",
                         std::string(static_cast<const char*>(m->payload()), m->len()))
               .ok()) {
        return 1;
      }
      next[m->partition()] = m->offset() + 1;
      ++in_batch;
    }
    if (in_batch == 0) {
      continue;
    }
    std::vector<RdKafka::TopicPartition*> offsets;
    for (const auto& [partition, offset] : next) {
      offsets.push_back(RdKafka::TopicPartition::create(from, partition, offset));
    }
    std::string why;
    const auto result = (*producer)->SendOffsetsAndCommit(offsets, consumer.get(), why);
    RdKafka::TopicPartition::destroy(offsets);
    if (result != signpost::services::TxnResult::kOk) {
      std::cerr << "signpost copy: " << why << "\n";
      return 1;
    }
    copied += in_batch;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::int64_t cpu_us = ProcessCpuMicros() - cpu_started_us;
  consumer->close();
  std::cout << "copy: " << copied << " records in " << seconds << " s = "
            << static_cast<std::int64_t>(copied / seconds) << " records/s, CPU "
            << cpu_us / std::max(1, copied / 1000) / 1000 << " ms per 1,000\n";
  return 0;
}

double Percentile(std::vector<std::int64_t>& v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  return static_cast<double>(v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))]);
}

int Summary(const std::string& bootstrap, const std::string& topic, int expect, int timeout_s,
            const std::string& metrics_url, const std::string& prefix, bool from_end,
            bool by_second) {
  // fetch.wait.max.ms: measure the router, not the reader.
  std::unique_ptr<RdKafka::KafkaConsumer> consumer = FreshReader(
      bootstrap, "signpost-summary-", topic, {{"fetch.wait.max.ms", "10"}}, !from_end);
  if (consumer == nullptr) {
    return 1;
  }
  if (from_end) {
    if (!AssignAtEnd(*consumer, topic)) {
      std::cerr << "signpost summary: cannot find the end of " << topic << "\n";
      return 1;
    }
    std::cerr << "signpost summary: reading " << topic << " from its end\n";
  }
  std::map<std::string, int> routed_by_pod, queued_by_need, escalated_by_need;
  absl::flat_hash_set<std::string> decided;  // referral/need with a first decision
  std::vector<std::int64_t> latency;
  std::vector<std::int64_t> submitted;  // event time of each latency's need
  std::int64_t first_ms = 0;
  std::int64_t last_ms = 0;
  std::int64_t first_seen = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  signpost::v1::Envelope d;
  // The reader shares the machine with what it measures: its own CPU is printed at the end.
  const std::int64_t cpu_started_us = ProcessCpuMicros();
  std::int64_t read = 0;
  std::string key;
  while (static_cast<int>(decided.size()) < expect && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> m(consumer->consume(500));
    if (m->err() != RdKafka::ERR_NO_ERROR ||
        !d.ParseFromArray(m->payload(), static_cast<int>(m->len()))) {
      continue;
    }
    ++read;
    const std::int64_t now = WallMs();
    if (d.has_routed()) {
      key = absl::StrCat(d.routed().referral_id(), "/", d.routed().need_code());
      ++routed_by_pod[d.routed().pod_id()];
    } else if (d.has_queued()) {
      key = absl::StrCat(d.queued().referral_id(), "/", d.queued().need_code());
      if (decided.contains(key)) {
        continue;
      }
      ++queued_by_need[d.queued().need_code()];
    } else if (d.has_escalated()) {
      key = absl::StrCat(d.escalated().referral_id(), "/", d.escalated().need_code());
      ++escalated_by_need[d.escalated().need_code()];
    } else {
      continue;
    }
    if (!prefix.empty() && key.rfind(prefix, 0) != 0) {
      continue;
    }
    if (decided.insert(key).second) {
      first_seen = first_seen == 0 ? now : first_seen;
      latency.push_back(now - d.event_time_ms());
      submitted.push_back(d.event_time_ms());
      first_ms = first_ms == 0 ? d.event_time_ms() : std::min(first_ms, d.event_time_ms());
      last_ms = std::max(last_ms, now);
    }
  }
  const std::int64_t cpu_us = ProcessCpuMicros() - cpu_started_us;
  consumer->close();
  std::cout << "\n=== Signpost demo summary ===\n";
  std::cout << "needs decided: " << decided.size() << " of " << expect << "\n";
  std::cout << "\nrouted, by pod:\n";
  for (const auto& [pod, n] : routed_by_pod) {
    std::cout << "  " << pod << ": " << n << "\n";
  }
  std::cout << "\nwaiting (first decision queued), by need:\n";
  for (const auto& [need, n] : queued_by_need) {
    std::cout << "  " << need << ": " << n << "\n";
  }
  std::cout << "\nescalated, by need:\n";
  for (const auto& [need, n] : escalated_by_need) {
    std::cout << "  " << need << ": " << n << "\n";
  }
  const double seconds = static_cast<double>(std::max<std::int64_t>(1, last_ms - first_ms)) / 1000.0;
  std::cout << "\nthroughput: " << static_cast<std::int64_t>(static_cast<double>(decided.size()) / seconds)
            << " needs decided/s (first submit to last decision visible, " << seconds << " s)\n";
  const double draining = static_cast<double>(std::max<std::int64_t>(1, last_ms - first_seen)) / 1000.0;
  std::cout << "drain: " << static_cast<std::int64_t>(static_cast<double>(decided.size()) / draining)
            << " needs decided/s (first decision visible to last, " << draining << " s)\n";
  if (by_second) {
    // The worst latency of the needs submitted in each second (the first 600): where in time
    // a tail comes from (a stall shows as a run of seconds, a steady backlog as a rising line).
    std::vector<std::int64_t> worst;
    for (std::size_t i = 0; i < latency.size(); ++i) {
      const auto second = static_cast<std::size_t>((submitted[i] - first_ms) / 1000);
      if (second < 600) {
        worst.resize(std::max(worst.size(), second + 1), 0);
        worst[second] = std::max(worst[second], latency[i]);
      }
    }
    std::cout << "worst latency by second of submission (ms):";
    for (std::int64_t w : worst) {
      std::cout << " " << w;
    }
    std::cout << "\n";
  }
  std::cout << "latency submit -> decision visible (read_committed): p50 "
            << Percentile(latency, 0.50) << " ms, p99 " << Percentile(latency, 0.99) << " ms, p999 "
            << Percentile(latency, 0.999) << " ms\n";
  std::cout << "reader: " << read << " decisions read, CPU "
            << cpu_us / std::max<std::int64_t>(1, read / 1000) / 1000 << " ms per 1,000\n";
  std::cout << "metrics were at " << metrics_url << "\n";
  return static_cast<int>(decided.size()) == expect ? 0 : 1;
}

// Publishes a control event (or prints why it could not be built) and says where it went.
int Control(const KafkaProperties& kafka, const std::string& topic,
            const absl::StatusOr<signpost::v1::Envelope>& event) {
  if (!event.ok()) {
    std::cerr << "signpost: " << event.status().message() << " (nothing was published)\n";
    return 2;
  }
  const absl::StatusOr<signpost::services::Published> at =
      signpost::services::PublishControl(kafka, topic, *event);
  if (!at.ok()) {
    const bool sent = at.status().code() != absl::StatusCode::kInvalidArgument &&
                      at.status().code() != absl::StatusCode::kNotFound;
    std::cerr << "signpost: " << at.status().message()
              << (sent ? " (it may still have been published; repeating it is harmless)\n"
                       : " (nothing was published)\n");
    return sent ? 1 : 2;
  }
  std::cout << "published " << event->event_id() << " to " << topic << " partition "
            << at->partition << " offset " << at->offset << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"signpost: Signpost's command line"};
  app.require_subcommand(1);
  std::string bootstrap = "127.0.0.1:9092";
  app.add_option("-b,--bootstrap", bootstrap, "Kafka bootstrap servers");

  int partitions = 3;
  std::vector<std::string> also;
  auto* topics = app.add_subcommand("topics", "create Signpost's topics");
  topics->add_option("--partitions", partitions, "partitions per topic");
  topics->add_option("--also", also, "more topics to create alike");

  int referrals = 20'000;
  int shielding = 50'000;
  std::uint64_t seed = 1;
  std::string intake_topic = signpost::services::kIntakeTopic;
  auto* load = app.add_subcommand("load", "publish a surge and a shielding-list import");
  load->add_option("--referrals", referrals, "surge referrals in the May 2020 mix");
  load->add_option("--shielding", shielding, "welfare checks of the bulk shielding import");
  load->add_option("--seed", seed, "seed of the generated load");
  load->add_option("--topic", intake_topic, "the intake topic");
  int rate = 0;
  load->add_option("--rate", rate, "records per second (0: as fast as possible)");

  int expect = 0;
  int timeout = 120;
  std::string decisions_topic = signpost::services::kDecisionsTopic;
  std::string metrics_url = "http://127.0.0.1:9464/metrics";
  auto* summary = app.add_subcommand("summary", "read the committed decisions and summarise");
  summary->add_option("--expect", expect, "needs to wait for")->required();
  summary->add_option("--timeout", timeout, "seconds to wait at most");
  summary->add_option("--topic", decisions_topic, "the decisions topic");
  summary->add_option("--metrics-url", metrics_url, "where /metrics is, for the report");
  std::string prefix;
  summary->add_option("--referral-prefix", prefix, "count only referral ids starting so");
  bool from_end = false;
  summary->add_flag("--from-end", from_end,
                    "read only decisions written after the start (prints a line to stderr once "
                    "positioned; start the load after it)");
  bool by_second = false;
  summary->add_flag("--by-second", by_second,
                    "also print the worst latency of the needs submitted in each second");
  std::string copy_from;
  std::string copy_to;
  int copy_count = 0;
  int copy_batch = 1000;
  int copy_max_ms = 100;
  auto* copy = app.add_subcommand("copy", "transactional copy between topics (the bench ceiling)");
  copy->add_option("--from", copy_from)->required();
  copy->add_option("--to", copy_to)->required();
  copy->add_option("--count", copy_count)->required();
  copy->add_option("--batch", copy_batch, "records per transaction at most");
  copy->add_option("--max-ms", copy_max_ms, "milliseconds a transaction gathers records at most")
      ->check(CLI::Range(1, 60'000));

  // Operator control events, published to the intake topic like any input.
  std::vector<std::string> kafka_settings;
  app.add_option("-X,--kafka", kafka_settings,
                 "a librdkafka property for the control commands, e.g. -X security.protocol=SSL");
  std::string domain;
  std::string control_topic = signpost::services::kIntakeTopic;
  auto* rules = app.add_subcommand("rules", "rules of a routing domain");
  rules->require_subcommand(1);
  std::string rules_file;
  auto* rules_apply = rules->add_subcommand(
      "apply", "check a rules file with the router's loader, then publish it as a rules change");
  rules_apply->add_option("file", rules_file, "the rules file (YAML)")->required();
  rules_apply->add_option("--domain", domain, "the routing domain (default: the only one)");
  rules_apply->add_option("--topic", control_topic, "the intake topic");
  signpost::services::PodChange pod_change;
  auto* pod = app.add_subcommand("pod", "change a pod at run time: status, capacity, daily intake");
  pod->add_option("id", pod_change.pod_id, "the pod's id")->required();
  pod->add_option("--status", pod_change.status, "open, paused or closed");
  pod->add_option("--capacity", pod_change.capacity, "open referrals at once (cost units)");
  pod->add_option("--daily-intake", pod_change.daily_intake, "new referrals per day");
  pod->add_option("--domain", pod_change.domain, "the pod's domain (default: found by pod id)");
  pod->add_option("--topic", control_topic, "the intake topic");
  std::string client_ref;
  std::string basis = "uk-gdpr-art17";
  auto* erase = app.add_subcommand("erase", "erase a client everywhere (their record and key)");
  erase->add_option("client_ref", client_ref, "the pseudonymous client ref")->required();
  erase->add_option("--basis", basis, "the legal basis, recorded with the request");
  erase->add_option("--domain", domain, "one routing domain (default: every domain)");
  erase->add_option("--topic", control_topic, "the intake topic");
  CLI11_PARSE(app, argc, argv);

  if (rules->parsed() || pod->parsed() || erase->parsed()) {
    KafkaProperties kafka = {{"bootstrap.servers", bootstrap}};
    for (const std::string& setting : kafka_settings) {
      const std::size_t eq = setting.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "signpost: -X " << setting << ": expected property=value\n";
        return 2;
      }
      kafka[setting.substr(0, eq)] = setting.substr(eq + 1);
    }
    const std::int64_t now = WallMs();
    if (rules->parsed()) {
      return Control(kafka, control_topic,
                     signpost::services::RulesChangeEvent(rules_file, domain, now));
    }
    if (pod->parsed()) {
      return Control(kafka, control_topic, signpost::services::PodChangeEvent(pod_change, now));
    }
    return Control(kafka, control_topic,
                   signpost::services::ErasureEvent(client_ref, basis, domain, now));
  }

  if (copy->parsed()) {
    return Copy(bootstrap, copy_from, copy_to, copy_count, copy_batch, copy_max_ms);
  }
  if (topics->parsed()) {
    return Topics(bootstrap, partitions, also);
  }
  if (load->parsed()) {
    return Load(bootstrap, intake_topic, referrals, shielding, seed, rate);
  }
  return Summary(bootstrap, decisions_topic, expect, timeout, metrics_url, prefix, from_end,
                 by_second);
}

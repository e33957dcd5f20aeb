// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/router_harness.h"

#include <utility>  // Boost 1.74 asio needs std::exchange declared first under C++20

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafkacpp.h"
#include "router/domain_routers.h"
#include "router/router.h"
#include "services/kafka/topics.h"
#include "storage/partition_store.h"
#include "tests/testing/events.h"
#include "tests/testing/kafka_test_env.h"

namespace signpost::testing {

using namespace std::chrono_literals;

std::vector<LogRecord> ReadCommitted(const services::KafkaProperties& base,
                                     const std::string& topic) {
  services::KafkaProperties props = base;
  props["group.id"] = UniqueName("reader");
  props["isolation.level"] = "read_committed";
  props["auto.offset.reset"] = "earliest";
  props["enable.partition.eof"] = "true";
  props["enable.auto.commit"] = "false";
  auto conf = services::MakeClientConf(props);
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf->get(), error));
  std::vector<LogRecord> out;
  if (c == nullptr || c->subscribe({topic}) != RdKafka::ERR_NO_ERROR) {
    return out;
  }
  std::set<int> eof;
  int partitions = -1;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline &&
         (partitions < 0 || static_cast<int>(eof.size()) < partitions)) {
    std::unique_ptr<RdKafka::Message> m(c->consume(200));
    if (partitions < 0) {
      std::vector<RdKafka::TopicPartition*> a;
      c->assignment(a);
      partitions = a.empty() ? -1 : static_cast<int>(a.size());
      RdKafka::TopicPartition::destroy(a);
    }
    if (m->err() == RdKafka::ERR__PARTITION_EOF) {
      eof.insert(m->partition());
    } else if (m->err() == RdKafka::ERR_NO_ERROR) {
      eof.erase(m->partition());
      LogRecord r{m->partition(), m->offset(),
                  std::string(static_cast<const char*>(m->payload()), m->len()),
                  m->key() != nullptr ? *m->key() : std::string(), {}};
      if (m->headers() != nullptr) {
        for (const auto& h : m->headers()->get_all()) {
          r.headers[h.key()] = std::string(static_cast<const char*>(h.value()), h.value_size());
        }
      }
      out.push_back(std::move(r));
    }
  }
  c->close();
  std::stable_sort(out.begin(), out.end(), [](const LogRecord& a, const LogRecord& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return out;
}

RouterTopics RouterTopics::Create(const services::KafkaProperties& base, int partitions) {
  RouterTopics t;
  t.suffix = UniqueName("rt");
  t.intake = "intake-" + t.suffix;
  t.log = "log-" + t.suffix;
  t.decisions = "decisions-" + t.suffix;
  t.dlq = "dlq-" + t.suffix;
  static_cast<void>(services::CreateTopics(base,
                                           {{t.intake, partitions, 1, {}},
                                            {t.log, partitions, 1, {}},
                                            {t.decisions, partitions, 1, {}},
                                            {t.dlq, 1, 1, {}}},
                                           30'000));
  return t;
}

namespace {
// Every router this process started; whatever is still running when the test binary exits
// (a failed assertion skipped the test's own stop) is killed, so no test leaves one behind.
std::vector<pid_t>& Spawned() {
  static std::vector<pid_t>* spawned = [] {
    auto* v = new std::vector<pid_t>();
    std::atexit([] {
      for (pid_t pid : Spawned()) {
        if (kill(pid, 0) == 0) {
          kill(pid, SIGKILL);
          waitpid(pid, nullptr, 0);
        }
      }
    });
    return v;
  }();
  return *spawned;
}
}  // namespace

pid_t SpawnRouter(const std::string& binary, const std::string& rules_file,
                  const std::string& bootstrap, const RouterTopics& topics,
                  const std::string& instance, const std::string& data_dir,
                  const std::vector<std::string>& extra) {
  std::vector<std::string> args = {
      binary,
      "--set", "kafka.bootstrap.servers=" + bootstrap,
      "--set", "instance_id=" + instance,
      "--set", "group_id=g-" + topics.suffix,
      "--set", "data_dir=" + data_dir,
      "--set", "topics.intake=" + topics.intake, "--set", "topics.log=" + topics.log,
      "--set", "topics.decisions=" + topics.decisions, "--set", "topics.dlq=" + topics.dlq,
      "--set", "http.listen=127.0.0.1:0",
      "--set", "batch.max_ms=30", "--set", "batch.max_records=500",
      "--set", "tick_interval_ms=100", "--set", "memory_budget_mb=32"};
  if (!rules_file.empty()) {
    args.insert(args.end(), {"--set", "rules_file=" + rules_file, "--set", "domain=banes"});
  }
  for (const std::string& e : extra) {
    args.push_back("--set");
    args.push_back(e);
  }
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const std::string& a : args) {
      argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    // Its log goes to <data_dir>.log (kept with the test's temporary files).
    const int log = ::open((data_dir + ".log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(log, 2);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  Spawned().push_back(pid);
  return pid;
}

std::string HttpGet(int port, const std::string& target, std::string* location,
                    const std::string& authorization) {
  namespace beast = boost::beast;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  beast::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)},
                 ec);
  if (ec) {
    return "";
  }
  beast::http::request<beast::http::empty_body> request{beast::http::verb::get, target, 11};
  request.set(beast::http::field::host, "127.0.0.1");
  if (!authorization.empty()) {
    request.set(beast::http::field::authorization, authorization);
  }
  beast::http::write(socket, request, ec);
  beast::flat_buffer buffer;
  beast::http::response<beast::http::string_body> response;
  beast::http::read(socket, buffer, response, ec);
  if (location != nullptr) {
    *location = std::string(response[beast::http::field::location]);
  }
  return ec ? "" : absl::StrCat(response.result_int(), " ", response.body());
}

int FreePort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

void PreloadIntake(const services::KafkaProperties& base, const std::string& topic, int referrals,
                   int answers, std::mt19937_64& rng, int rate) {
  auto conf = services::MakeClientConf(base);
  std::string error;
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf->get(), error));
  EventFactory events;
  static const char* kNeeds[] = {"community-volunteer", "food", "enhanced-triage", "housing",
                                 "logistics-transport", "shielding-welfare-check"};
  static const char* kPods[] = {"food-bath-foodbank", "food-virgin-care", "connectors-bath",
                                "housing-dhi-curo", "logistics", "hub-enhanced-triage"};
  static const char* kOutward[] = {"BA1", "BA2", "BS31", "BA3"};
  auto send = [&](v1::Envelope e, const std::string& key) {
    e.clear_domain();
    const std::string v = e.SerializeAsString();
    while (p->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                      const_cast<char*>(v.data()), v.size(), key.data(), key.size(), 0,
                      nullptr) == RdKafka::ERR__QUEUE_FULL) {
      p->poll(10);
    }
  };
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < referrals + answers; ++i) {
    if (rate > 0) {  // record i is due at i / rate seconds
      const auto due = started + std::chrono::microseconds(std::int64_t{i} * 1'000'000 / rate);
      while (std::chrono::steady_clock::now() < due) {
        p->poll(1);
      }
    }
    events.Advance(60'000);
    if (i < referrals) {
      send(events.Referral(absl::StrCat("r", i), absl::StrCat("c", i % 5000), {kNeeds[rng() % 6]},
                           kOutward[rng() % 4]),
           absl::StrCat("c", i % 5000));
    } else {
      const std::string ref = absl::StrCat("r", rng() % static_cast<std::uint64_t>(referrals));
      const std::string need = kNeeds[rng() % 6];
      const std::string pod = kPods[rng() % 6];
      switch (rng() % 3) {
        case 0: send(events.Accept(ref, need, pod), ref); break;
        case 1: send(events.Complete(ref, need, pod), ref); break;
        default: send(events.Decline(ref, need, pod), ref);
      }
    }
  }
  p->flush(60'000);
}

void ProduceAll(const services::KafkaProperties& base, const std::string& topic,
                const std::vector<std::pair<std::string, std::string>>& records) {
  auto conf = services::MakeClientConf(base);
  ASSERT_TRUE(conf.ok()) << conf.status();
  std::string error;
  std::unique_ptr<RdKafka::Producer> p(RdKafka::Producer::create(conf->get(), error));
  ASSERT_NE(p, nullptr) << error;
  for (const auto& [key, value] : records) {
    while (p->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0,
                      nullptr) == RdKafka::ERR__QUEUE_FULL) {
      p->poll(10);
    }
  }
  ASSERT_EQ(p->flush(60'000), RdKafka::ERR_NO_ERROR);
}

std::map<int, std::int64_t> LastCommitted(const services::KafkaProperties& base,
                                          const RouterTopics& topics, int partitions) {
  services::KafkaProperties props = base;
  props["group.id"] = "g-" + topics.suffix;
  auto conf = services::MakeClientConf(props);
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> c(RdKafka::KafkaConsumer::create(conf->get(), error));
  std::vector<RdKafka::TopicPartition*> tps;
  for (int p = 0; p < partitions; ++p) {
    tps.push_back(RdKafka::TopicPartition::create(topics.log, p));
  }
  std::map<int, std::int64_t> out;
  if (c != nullptr && c->committed(tps, 30'000) == RdKafka::ERR_NO_ERROR) {
    for (RdKafka::TopicPartition* tp : tps) {
      out[tp->partition()] = tp->offset() < 0 ? -1 : tp->offset() - 1;  // -1: nothing committed
    }
  }
  RdKafka::TopicPartition::destroy(tps);
  if (c != nullptr) {
    c->close();
  }
  return out;
}

std::size_t DecidedReferrals(const std::vector<LogRecord>& decisions) {
  std::set<std::string> decided;
  v1::Envelope d;
  for (const LogRecord& r : decisions) {
    d.ParseFromString(r.value);
    if (d.has_routed()) decided.insert(d.routed().referral_id());
    if (d.has_queued()) decided.insert(d.queued().referral_id());
    if (d.has_escalated()) decided.insert(d.escalated().referral_id());
  }
  return decided.size();
}

ReplayCheck CheckAgainstReplay(const services::KafkaProperties& base, const RouterTopics& topics,
                               const std::string& rules_file,
                               const std::map<int, std::int64_t>* upto) {
  return CheckAgainstReplay(base, topics, {{"banes", rules_file}}, upto);
}

ReplayCheck CheckAgainstReplay(const services::KafkaProperties& base, const RouterTopics& topics,
                               const std::map<std::string, std::string>& rules_files,
                               const std::map<int, std::int64_t>* upto) {
  std::map<std::string, std::string> yaml;
  for (const auto& [domain, file] : rules_files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    yaml[domain] = text.str();
  }
  // By partition: each domain's client store and the partition's routers.
  std::map<int, std::map<std::string, router::InMemoryClientStore>> stores;
  std::map<int, std::unique_ptr<router::DomainRouters>> routers;
  std::vector<std::string> replay;
  router::DecisionBuffer buffer;
  v1::Envelope event;
  ReplayCheck check;
  for (const LogRecord& r : ReadCommitted(base, topics.log)) {
    if (upto != nullptr && (!upto->contains(r.partition) || r.offset > upto->at(r.partition))) {
      continue;
    }
    if (!routers.contains(r.partition)) {
      auto& partition_stores = stores[r.partition];
      routers[r.partition] = std::make_unique<router::DomainRouters>(
          [&yaml, &partition_stores](
              const std::string& domain) -> absl::StatusOr<std::unique_ptr<router::Router>> {
            if (!yaml.contains(domain)) {
              return absl::NotFoundError("not routed");
            }
            return std::make_unique<router::Router>(*router::LoadRules(yaml[domain], domain),
                                                    partition_stores[domain]);
          });
    }
    if (!event.ParseFromString(r.value)) {
      continue;  // the router dead-letters it too
    }
    buffer.Clear();
    static_cast<void>(routers[r.partition]->Apply(event, Offset(r.offset), buffer));
    for (std::size_t i = 0; i < buffer.size(); ++i) {
      replay.push_back(buffer[i].SerializeAsString());
    }
    for (const router::DomainRouters::Touched& t : routers[r.partition]->Applied()) {
      for (const router::PodFigures& pod : t.router->Pods()) {
        if (pod.open_cost > pod.capacity && check.over_capacity.empty()) {
          check.over_capacity = pod.id;
        }
      }
    }
  }
  for (const auto& [partition, domains] : routers) {
    for (const auto& [domain, router] : domains->all()) {
      check.states[absl::StrCat(partition, "/", domain)] = router->Snapshot().SerializeAsString();
    }
  }
  std::vector<std::string> committed;
  std::set<std::string> ids;
  v1::Envelope d;
  for (const LogRecord& r : ReadCommitted(base, topics.decisions)) {
    committed.push_back(r.value);
    d.ParseFromString(r.value);
    if (!ids.insert(d.event_id()).second) {
      check.duplicates.push_back(d.event_id());
    }
  }
  std::sort(committed.begin(), committed.end());
  std::sort(replay.begin(), replay.end());
  check.committed = committed.size();
  check.replayed = replay.size();
  check.equal = committed == replay;
  return check;
}

std::map<std::string, std::string> StoredStates(const std::string& data_dir,
                                                const RouterTopics& topics,
                                                std::map<int, std::int64_t>& applied) {
  std::map<std::string, std::string> stored;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind(topics.log + "-", 0) != 0) {
      continue;
    }
    const int partition = std::stoi(name.substr(topics.log.size() + 1));
    for (const auto& domain : std::filesystem::directory_iterator(entry.path())) {
      storage::StoreOptions options;
      options.path = domain.path().string();
      options.resources = storage::StoreResources::Create(32 << 20);
      auto store = storage::PartitionStore::Open(options);
      EXPECT_TRUE(store.ok()) << store.status();
      if (!store.ok()) {
        continue;
      }
      const std::int64_t offset = (*store)->AppliedOffset().Value();
      applied[partition] =
          applied.contains(partition) ? std::min(applied[partition], offset) : offset;
      auto state = (*store)->LoadRouterState();
      EXPECT_TRUE(state.ok()) << state.status();
      if (state.ok() && state->has_value()) {
        stored[absl::StrCat(partition, "/", domain.path().filename().string())] =
            (*state)->SerializeAsString();
      }
    }
  }
  return stored;
}

}  // namespace signpost::testing

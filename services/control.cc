// SPDX-License-Identifier: Apache-2.0
#include "services/control.h"

#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "librdkafka/rdkafkacpp.h"
#include "router/rules.h"
#include "services/checks.h"
#include "services/files.h"

namespace signpost::services {
namespace {

// "ctl-<kind>-<time>-<8 random hex digits>": unique without coordination between operators.
std::string ControlEventId(const char* kind, std::int64_t now_ms) {
  std::random_device random;
  return absl::StrFormat("ctl-%s-%d-%08x", kind, now_ms, random());
}

v1::Envelope NewControlEvent(const char* kind, const std::string& domain, std::int64_t now_ms) {
  v1::Envelope e;
  e.set_schema_version(1);
  e.set_event_id(ControlEventId(kind, now_ms));
  e.set_event_time_ms(now_ms);
  e.set_producer("signpost-cli");
  e.set_domain(domain);
  return e;
}

// Delivery reports of one produce.
class Delivery : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    done = true;
    err = message.err();
    partition = message.partition();
    offset = message.offset();
  }
  bool done = false;
  RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
  int partition = -1;
  std::int64_t offset = -1;
};

}  // namespace

absl::StatusOr<v1::Envelope> RulesChangeEvent(const std::string& path, const std::string& domain,
                                              std::int64_t now_ms) {
  absl::StatusOr<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return text.status();
  }
  absl::StatusOr<std::shared_ptr<const router::Rules>> rules = router::LoadRules(*text, path);
  if (!rules.ok()) {
    return rules.status();
  }
  v1::Envelope e = NewControlEvent("rules", domain, now_ms);
  v1::RulesChanged* change = e.mutable_rules_changed();
  change->set_version((*rules)->version);
  change->set_rules_yaml(*std::move(text));
  return e;
}

absl::StatusOr<v1::Envelope> PodChangeEvent(const PodChange& change, std::int64_t now_ms) {
  if (!ValidId(change.pod_id)) {
    return absl::InvalidArgumentError("pod id must be 1-128 bytes");
  }
  v1::PodStatus status = v1::POD_STATUS_UNSPECIFIED;
  if (!change.status.empty()) {
    const std::optional<v1::PodStatus> named = router::PodStatusByName(change.status);
    if (!named.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("status must be open, paused or closed, not \"", change.status, "\""));
    }
    status = *named;
  }
  if (status == v1::POD_STATUS_UNSPECIFIED && !change.capacity.has_value() &&
      !change.daily_intake.has_value()) {
    return absl::InvalidArgumentError("nothing to change: give a status, capacity or daily intake");
  }
  v1::Envelope e = NewControlEvent("pod", change.domain, now_ms);
  v1::PodChanged* c = e.mutable_pod_changed();
  c->set_pod_id(change.pod_id);
  c->set_status(status);
  if (change.capacity.has_value()) {
    c->set_capacity(*change.capacity);
  }
  if (change.daily_intake.has_value()) {
    c->set_daily_intake(*change.daily_intake);
  }
  return e;
}

absl::StatusOr<v1::Envelope> ErasureEvent(const std::string& client_ref, const std::string& basis,
                                          const std::string& domain, std::int64_t now_ms) {
  if (!ValidId(client_ref)) {
    return absl::InvalidArgumentError("client ref must be 1-128 bytes");
  }
  v1::Envelope e = NewControlEvent("erase", domain, now_ms);
  v1::ClientErasureRequested* r = e.mutable_client_erasure_requested();
  r->set_client_ref(client_ref);
  r->set_basis(basis);
  return e;
}

absl::StatusOr<Published> PublishControl(const KafkaProperties& kafka, const std::string& topic,
                                         const v1::Envelope& event, int timeout_ms) {
  KafkaProperties properties = kafka;
  properties["enable.idempotence"] = "true";
  properties["acks"] = "all";
  // The delivery report comes within the timeout, with the reason (an unknown topic, an
  // unreachable broker), rather than the message being left in the queue.
  properties.try_emplace("message.timeout.ms", std::to_string(timeout_ms));
  Delivery delivery;
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeClientConf(properties);
  if (!conf.ok()) {
    return conf.status();
  }
  std::string error;
  if ((*conf)->set("dr_cb", &delivery, error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(error);
  }
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf->get(), error));
  if (producer == nullptr) {
    return absl::InvalidArgumentError(error);
  }
  // An unknown topic (a typo in --topic) is refused at once, not after the delivery timeout.
  {
    std::unique_ptr<RdKafka::Topic> handle(
        RdKafka::Topic::create(producer.get(), topic, nullptr, error));
    RdKafka::Metadata* raw = nullptr;
    if (handle != nullptr &&
        producer->metadata(false, handle.get(), &raw, timeout_ms) == RdKafka::ERR_NO_ERROR) {
      std::unique_ptr<RdKafka::Metadata> metadata(raw);
      for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
        if (t->topic() == topic && (t->err() == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART ||
                                    t->err() == RdKafka::ERR__UNKNOWN_TOPIC)) {
          return absl::NotFoundError(absl::StrCat("topic ", topic, " does not exist"));
        }
      }
    }
  }
  const std::string value = event.SerializeAsString();
  const std::string key = event.domain().empty() ? "control" : event.domain();
  const RdKafka::ErrorCode err = producer->produce(
      topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, nullptr);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("produce: ", RdKafka::err2str(err)));
  }
  producer->flush(timeout_ms + 5'000);
  if (!delivery.done) {
    return absl::DeadlineExceededError(
        absl::StrCat("no acknowledgement from the broker within ", timeout_ms, " ms"));
  }
  if (delivery.err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("delivery: ", RdKafka::err2str(delivery.err)));
  }
  return Published{delivery.partition, delivery.offset};
}

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
#include "services/kafka/topics.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "librdkafka/rdkafka.h"
#include "router/base/status_macros.h"

namespace signpost::services {
namespace {

// RAII owners for the C API's admin objects (the C++ API has no admin client in 2.0.2).
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};

}  // namespace

std::vector<TopicSpec> SignpostTopics(int partitions, int replication_factor) {
  return {
      {kIntakeTopic, partitions, replication_factor, {}},
      {kLogTopic, partitions, replication_factor, {{"retention.ms", "-1"}}},
      {kDecisionsTopic, partitions, replication_factor, {}},
      {kDlqTopic, partitions, replication_factor, {}},
  };
}

absl::Status CreateTopics(const KafkaProperties& client, const std::vector<TopicSpec>& topics,
                          int timeout_ms) {
  SIGNPOST_ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> conf, MakeClientConf(client));
  std::string error;
  std::unique_ptr<RdKafka::Producer> handle(RdKafka::Producer::create(conf.get(), error));
  if (handle == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka admin client: ", error));
  }
  rd_kafka_t* rk = handle->c_ptr();

  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  char errstr[512];
  for (const TopicSpec& spec : topics) {
    rd_kafka_NewTopic_t* t = rd_kafka_NewTopic_new(spec.name.c_str(), spec.partitions,
                                                   spec.replication_factor, errstr, sizeof errstr);
    if (t == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("topic ", spec.name, ": ", errstr));
    }
    owned.emplace_back(t);
    raw.push_back(t);
    for (const auto& [name, value] : spec.config) {
      if (rd_kafka_NewTopic_set_config(t, name.c_str(), value.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return absl::InvalidArgumentError(absl::StrCat("topic ", spec.name, " config ", name));
      }
    }
  }

  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS));
  if (rd_kafka_AdminOptions_set_operation_timeout(options.get(), timeout_ms, errstr,
                                                  sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      rd_kafka_AdminOptions_set_request_timeout(options.get(), timeout_ms, errstr,
                                                sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("admin timeout: ", errstr));
  }
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk));
  rd_kafka_CreateTopics(rk, raw.data(), raw.size(), options.get(), queue.get());

  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), timeout_ms + 1000));
  if (event == nullptr) {
    return absl::UnavailableError("create topics: no answer from the cluster");
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("create topics: ", rd_kafka_event_error_string(event.get())));
  }
  const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      return absl::InternalError(absl::StrCat("create topic ", rd_kafka_topic_result_name(results[i]),
                                              ": ", rd_kafka_err2str(err), " ",
                                              rd_kafka_topic_result_error_string(results[i])));
    }
  }
  return absl::OkStatus();
}

}  // namespace signpost::services

// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/gateway.h"

#include <sodium.h>

#include <utility>  // Boost 1.74 asio needs std::exchange declared first under C++20

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "librdkafka/rdkafkacpp.h"
#include "nlohmann/json.hpp"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "services/gateway/fhir.h"
#include "services/gateway/idempotency.h"
#include "services/gateway/json_form.h"
#include "services/gateway/pseudonym.h"
#include "services/http/server.h"
#include "services/kafka/client_config.h"
#include "signpost/v1/envelope.pb.h"
#include "spdlog/spdlog.h"

namespace signpost::services::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr char kSubmitJson[] = "/v1/referrals";
constexpr char kSubmitFhir[] = "/fhir/ServiceRequest";
constexpr char kResponses[] = "/v1/referrals/{id}/responses";
constexpr char kStatus[] = "/v1/referrals/{id}";
constexpr std::size_t kMaxIdempotencyKey = 255;

std::string Hex(const unsigned char* bytes, std::size_t n) {
  std::string out(2 * n + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes, n);
  out.pop_back();
  return out;
}

std::string Fingerprint(std::string_view bytes) {
  unsigned char out[16];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size(), nullptr, 0);
  return Hex(out, sizeof out);
}

std::string RandomHex(std::size_t bytes) {
  unsigned char buf[32];
  randombytes_buf(buf, bytes);
  return Hex(buf, bytes);
}

// The W3C trace id of a `traceparent` header ("00-<32 hex>-<16 hex>-<2 hex>"), else a new one.
std::string TraceId(std::string_view traceparent) {
  if (traceparent.size() >= 55 && traceparent[2] == '-' && traceparent[35] == '-') {
    const std::string_view id = traceparent.substr(3, 32);
    if (id.find_first_not_of("0123456789abcdef") == std::string_view::npos &&
        id != std::string(32, '0')) {
      return std::string(id);
    }
  }
  return RandomHex(16);
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::Reply JsonReply(int status, const json& body, std::string type = "application/json") {
  return {status, std::move(type), body.dump(), {}};
}

http::Reply ValidationProblem(const std::vector<FieldProblem>& problems) {
  json errors = json::array();
  for (const FieldProblem& p : problems) {
    errors.push_back({{"pointer", p.field}, {"detail", p.problem}});
  }
  json body = {{"type", "about:blank"},
               {"title", "Invalid request body"},
               {"status", 400},
               {"detail", absl::StrCat(problems.size(), " field(s) are invalid; nothing was sent")},
               {"errors", errors}};
  return JsonReply(400, body, "application/problem+json");
}

http::Reply FhirProblem(int status, std::vector<FhirIssue> issues) {
  return JsonReply(status, OperationOutcome(issues), "application/fhir+json");
}

http::Reply Unavailable(std::string_view detail, int retry_after_s) {
  http::Reply r = http::Problem(503, "Service Unavailable", detail);
  r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return r;
}

// Records awaiting the broker's acknowledgement for one request.
struct Batch {
  std::atomic<int> remaining{0};
  std::atomic<bool> failed{false};
  std::function<void(bool ok)> done;

  void Settle(int records, bool ok) {
    if (!ok) failed = true;
    if (remaining.fetch_sub(records) == records) {
      done(!failed);
    }
  }
};

class DeliveryReports : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    auto* batch = static_cast<std::shared_ptr<Batch>*>(message.msg_opaque());
    (*batch)->Settle(1, message.err() == RdKafka::ERR_NO_ERROR);
    delete batch;
  }
};

struct Metrics {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("signpost_gateway_requests_total")
          .Help("HTTP requests answered, by route template and status code.")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& latency =
      prometheus::BuildHistogram()
          .Name("signpost_gateway_request_seconds")
          .Help("Time from a request's arrival to its answer (for submissions: broker ack).")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& produced =
      prometheus::BuildCounter()
          .Name("signpost_gateway_records_produced_total")
          .Help("Records the broker acknowledged, by event type.")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& rejected =
      prometheus::BuildCounter()
          .Name("signpost_gateway_rejected_total")
          .Help("Requests refused, by reason.")
          .Register(*registry);
  prometheus::Counter& replays = prometheus::BuildCounter()
                                     .Name("signpost_gateway_idempotent_replays_total")
                                     .Help("Retries answered from the idempotency store.")
                                     .Register(*registry)
                                     .Add({});
  prometheus::Counter& unmapped = prometheus::BuildCounter()
                                      .Name("signpost_gateway_unmapped_codes_total")
                                      .Help("FHIR codes with no concept map entry (to triage).")
                                      .Register(*registry)
                                      .Add({});
  prometheus::Gauge& in_flight = prometheus::BuildGauge()
                                     .Name("signpost_gateway_in_flight_requests")
                                     .Help("Requests waiting for the broker's acknowledgement.")
                                     .Register(*registry)
                                     .Add({});
  prometheus::Gauge& broker_ready = prometheus::BuildGauge()
                                        .Name("signpost_gateway_broker_ready")
                                        .Help("1 when the intake topic's leader answered lately.")
                                        .Register(*registry)
                                        .Add({});

  void Rejected(const char* reason) { rejected.Add({{"reason", reason}}).Increment(); }
};

}  // namespace

const std::vector<Route>& Gateway::Routes() {
  static const std::vector<Route> routes = {
      {"POST", kSubmitJson}, {"POST", kSubmitFhir}, {"POST", kResponses}, {"GET", kStatus},
      {"GET", "/metrics"},   {"GET", "/healthz"},   {"GET", "/readyz"}};
  return routes;
}

struct Gateway::Impl {
  GatewayConfig config;
  ConceptMap concepts;
  Pseudonymiser pseudonymiser;
  absl::flat_hash_map<std::string, const Integrator*> by_token;
  IdempotencyStore idempotency;
  Metrics metrics;
  absl::flat_hash_map<std::string, prometheus::Histogram*> latency_by_route;

  DeliveryReports reports;
  std::unique_ptr<RdKafka::Producer> producer;
  std::unique_ptr<RdKafka::Topic> topic;
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> in_flight{0};
  std::thread poller;
  std::thread health;
  std::mutex health_mu;
  std::condition_variable health_cv;

  asio::io_context client_io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> client_work;
  std::thread client_thread;

  std::unique_ptr<http::Server> server;

  Impl(GatewayConfig c, ConceptMap m, Pseudonymiser p)
      : config(std::move(c)), concepts(std::move(m)), pseudonymiser(p),
        idempotency(static_cast<std::size_t>(config.idempotency_max_entries),
                    std::chrono::seconds(config.idempotency_ttl_s)) {
    for (const Integrator& i : config.integrators) {
      by_token[i.token_sha256] = &i;
    }
    // One histogram per route, registered once: a request only observes into it.
    const prometheus::Histogram::BucketBoundaries buckets = {
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    latency_by_route["unknown"] = &metrics.latency.Add({{"route", "unknown"}}, buckets);
    for (const Route& r : Gateway::Routes()) {
      latency_by_route[r.path] = &metrics.latency.Add({{"route", r.path}}, buckets);
    }
  }

  // --- Kafka ---------------------------------------------------------------------------------

  absl::Status StartProducer() {
    KafkaProperties props = config.kafka;
    props["enable.idempotence"] = "true";
    props["acks"] = "all";
    props.try_emplace("linger.ms", "2");  // each request waits for its ack: keep it short
    props["message.timeout.ms"] = std::to_string(config.delivery_timeout_ms);
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf = MakeClientConf(props);
    if (!conf.ok()) {
      return conf.status();
    }
    std::string error;
    if ((*conf)->set("dr_cb", &reports, error) != RdKafka::Conf::CONF_OK) {
      return absl::InternalError(error);
    }
    producer.reset(RdKafka::Producer::create(conf->get(), error));
    if (producer == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", error));
    }
    topic.reset(RdKafka::Topic::create(producer.get(), config.intake_topic, nullptr, error));
    if (topic == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("topic ", config.intake_topic, ": ", error));
    }
    poller = std::thread([this] {
      while (!stopping) {
        producer->poll(50);
      }
    });
    CheckBroker();
    health = std::thread([this] {
      std::unique_lock<std::mutex> lock(health_mu);
      while (!health_cv.wait_for(lock, std::chrono::seconds(1), [this] { return stopping.load(); })) {
        lock.unlock();
        CheckBroker();
        lock.lock();
      }
    });
    return absl::OkStatus();
  }

  // Ready when the intake topic's metadata comes back with a leader for every partition.
  void CheckBroker() {
    RdKafka::Metadata* raw = nullptr;
    bool ok = producer->metadata(false, topic.get(), &raw, 1000) == RdKafka::ERR_NO_ERROR;
    std::unique_ptr<RdKafka::Metadata> md(raw);
    if (ok) {
      ok = md->topics()->size() == 1 && md->topics()->at(0)->err() == RdKafka::ERR_NO_ERROR &&
           !md->topics()->at(0)->partitions()->empty();
      for (const auto* p : ok ? *md->topics()->at(0)->partitions()
                              : std::vector<const RdKafka::PartitionMetadata*>{}) {
        ok = ok && p->leader() >= 0;
      }
    }
    if (ok != ready.exchange(ok)) {
      spdlog::warn(ok ? "broker reachable: accepting submissions"
                      : "broker unreachable or intake topic without a leader: answering 503");
    }
    metrics.broker_ready.Set(ok ? 1 : 0);
  }

  // Produces `envelopes` keyed by their referral ids; `done(true)` once the broker has
  // acknowledged all of them, `done(false)` when any failed. Returns false (and calls nothing)
  // when the request is refused before anything was produced.
  bool Produce(const std::vector<v1::Envelope>& envelopes, const std::vector<std::string>& keys,
               std::function<void(bool)> done) {
    if (in_flight.fetch_add(1) >= config.max_in_flight) {
      in_flight.fetch_sub(1);
      return false;
    }
    metrics.in_flight.Increment();
    auto batch = std::make_shared<Batch>();
    const int n = static_cast<int>(envelopes.size());
    batch->remaining = n;
    batch->done = [this, done = std::move(done)](bool ok) {
      in_flight.fetch_sub(1);
      metrics.in_flight.Decrement();
      done(ok);
    };
    for (int i = 0; i < n; ++i) {
      std::string bytes;
      envelopes[i].SerializeToString(&bytes);
      auto* opaque = new std::shared_ptr<Batch>(batch);
      const RdKafka::ErrorCode err = producer->produce(
          topic.get(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY, bytes.data(),
          bytes.size(), &keys[i], opaque);
      if (err != RdKafka::ERR_NO_ERROR) {
        delete opaque;
        spdlog::warn("produce refused: {}", RdKafka::err2str(err));
        batch->Settle(n - i, false);  // the records not produced count as failed
        break;
      }
    }
    return true;
  }

  // --- HTTP ----------------------------------------------------------------------------------

  void Handle(http::Request request, http::Respond respond) {
    const Clock::time_point start = Clock::now();
    const std::string path(request.path());
    std::string route;
    std::string id;
    if (path == kSubmitJson || path == kSubmitFhir || path == "/metrics" || path == "/healthz" ||
        path == "/readyz") {
      route = std::string(path);
    } else if (absl::StartsWith(path, "/v1/referrals/")) {
      std::vector<std::string> parts = absl::StrSplit(path.substr(14), '/');
      if (parts.size() == 1 && !parts[0].empty()) {
        route = kStatus;
        id = parts[0];
      } else if (parts.size() == 2 && !parts[0].empty() && parts[1] == "responses") {
        route = kResponses;
        id = parts[0];
      }
    }
    http::Respond answer = [this, route, start, respond = std::move(respond)](http::Reply r) {
      const std::string label = route.empty() ? "unknown" : route;
      metrics.requests.Add({{"route", label}, {"code", std::to_string(r.status)}}).Increment();
      latency_by_route.at(label)->Observe(
          std::chrono::duration<double>(Clock::now() - start).count());
      respond(std::move(r));
    };
    if (route.empty()) {
      return answer(http::Problem(404, "Not Found", "no such route; see the OpenAPI document"));
    }
    const std::string method = request.method == "HEAD" ? "GET" : request.method;
    bool known = false;
    std::string allow;
    for (const Route& r : Routes()) {
      if (r.path == route) {
        allow += allow.empty() ? r.method : ", " + r.method;
        known = known || r.method == method;
      }
    }
    if (!known) {
      http::Reply r = http::Problem(405, "Method Not Allowed", absl::StrCat("use ", allow));
      r.headers.emplace_back("Allow", allow);
      return answer(std::move(r));
    }
    if (route == "/metrics") {
      return answer({200, "text/plain; version=0.0.4",
                     prometheus::TextSerializer().Serialize(metrics.registry->Collect()), {}});
    }
    if (route == "/healthz") {
      return answer(JsonReply(200, {{"status", "alive"}}));
    }
    if (route == "/readyz") {
      const bool ok = ready && !draining;
      return answer(JsonReply(ok ? 200 : 503, {{"ready", ok}, {"broker", ready.load()}}));
    }
    const bool fhir = route == kSubmitFhir;
    const unsigned scope = route == kStatus ? kRead : route == kResponses ? kRespond : kSubmit;
    const Integrator* who = nullptr;
    if (http::Reply refused; !Authenticate(request, scope, who, refused)) {
      return answer(std::move(refused));
    }
    if (route == kStatus) {
      return Forward(absl::StrCat("/v1/referrals/", id), std::move(answer));
    }
    if (draining || !ready) {
      metrics.Rejected("unavailable");
      return answer(Unavailable(draining ? "the gateway is shutting down"
                                         : "Kafka is not reachable; nothing was sent",
                                5));
    }
    const std::string_view type = request.header("content-type");
    if (!type.empty() && type.find("json") == std::string_view::npos) {
      metrics.Rejected("media_type");
      return answer(http::Problem(415, "Unsupported Media Type",
                                  fhir ? "send application/fhir+json" : "send application/json"));
    }
    json document;
    try {
      document = json::parse(request.body);
    } catch (const json::parse_error& e) {
      metrics.Rejected("malformed");
      const std::string detail = absl::StrCat("the body is not JSON (byte ", e.byte, ")");
      return answer(fhir ? FhirProblem(400, {{"", "structure", detail}})
                         : http::Problem(400, "Malformed JSON", detail));
    }
    if (route == kSubmitJson) {
      return SubmitJson(request, document, *who, std::move(answer));
    }
    if (fhir) {
      return SubmitFhir(request, document, *who, std::move(answer));
    }
    return SubmitResponse(request, document, id, *who, std::move(answer));
  }

  bool Authenticate(const http::Request& request, unsigned scope, const Integrator*& who,
                    http::Reply& refused) {
    const std::string auth(request.header("authorization"));
    if (!absl::StartsWithIgnoreCase(auth, "bearer ") || auth.size() <= 7) {
      metrics.Rejected("unauthenticated");
      refused = http::Problem(401, "Unauthorized", "send Authorization: Bearer <token>");
      refused.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="signpost")");
      return false;
    }
    auto it = by_token.find(TokenHash(auth.substr(7)));
    if (it == by_token.end()) {
      metrics.Rejected("unauthenticated");
      refused = http::Problem(401, "Unauthorized", "the token is not known");
      refused.headers.emplace_back("WWW-Authenticate",
                                   R"(Bearer realm="signpost", error="invalid_token")");
      return false;
    }
    who = it->second;
    if ((who->scopes & scope) == 0) {
      metrics.Rejected("forbidden");
      refused = http::Problem(403, "Forbidden", "the token does not have the scope this needs");
      return false;
    }
    return true;
  }

  // Every event names the integrator that sent it ("integrator/<id>").
  v1::Envelope NewEnvelope(const http::Request& request, const Integrator& who) {
    v1::Envelope e;
    e.set_schema_version(1);
    e.set_event_time_ms(NowMs());
    e.set_producer(absl::StrCat("integrator/", who.id));
    e.set_trace_id(TraceId(request.header("traceparent")));
    return e;
  }

  // Claims the idempotency key (if any) and produces; answers `accepted` after the ack.
  void Send(const std::string& key, const std::string& fingerprint,
            std::vector<v1::Envelope> envelopes, std::vector<std::string> record_keys,
            http::Reply accepted, const char* type, http::Respond answer) {
    if (!key.empty()) {
      IdempotencyStore::Begin begin = idempotency.Start(key, fingerprint);
      switch (begin.outcome) {
        case IdempotencyStore::Outcome::kNew:
          break;
        case IdempotencyStore::Outcome::kReplay:
          metrics.replays.Increment();
          begin.reply.headers.emplace_back("Idempotent-Replayed", "true");
          return answer(std::move(begin.reply));
        case IdempotencyStore::Outcome::kInFlight: {
          metrics.Rejected("conflict");
          http::Reply r = http::Problem(409, "Conflict",
                                        "a request with this idempotency key is in progress");
          r.headers.emplace_back("Retry-After", "1");
          return answer(std::move(r));
        }
        case IdempotencyStore::Outcome::kMismatch:
          metrics.Rejected("idempotency_mismatch");
          return answer(http::Problem(
              422, "Unprocessable Content",
              "this idempotency key was used for a different request; use a new key"));
      }
    }
    const int records = static_cast<int>(envelopes.size());
    const bool produced = Produce(
        envelopes, record_keys,
        [this, key, accepted = std::move(accepted), type, records, answer](bool ok) {
          if (ok) {
            metrics.produced.Add({{"type", type}}).Increment(records);
            if (!key.empty()) idempotency.Finish(key, accepted, true);
            return answer(accepted);
          }
          metrics.Rejected("unavailable");
          http::Reply r = Unavailable("Kafka did not acknowledge in time; retry with the same "
                                      "idempotency key",
                                      5);
          if (!key.empty()) idempotency.Finish(key, r, false);
          answer(std::move(r));
        });
    if (!produced) {
      metrics.Rejected("overloaded");
      http::Reply r = Unavailable("too many requests are waiting for Kafka", 1);
      if (!key.empty()) idempotency.Finish(key, r, false);
      answer(std::move(r));
    }
  }

  std::string IdempotencyKey(const http::Request& request, const Integrator& who,
                             const std::string& fallback, http::Reply* refused) {
    std::string key(request.header("idempotency-key"));
    if (key.size() > kMaxIdempotencyKey) {
      *refused = http::Problem(400, "Bad Request", "Idempotency-Key is longer than 255 characters");
      return {};
    }
    if (key.empty()) key = fallback;
    return key.empty() ? std::string() : absl::StrCat(who.id, "\x1f", key);
  }

  void Defaults(v1::ReferralSubmitted& r, const Integrator& who) {
    r.set_integrator_id(who.id);
    if (r.source() == v1::SOURCE_UNSPECIFIED) r.set_source(who.source);
    if (r.source_org().empty()) r.set_source_org(who.org);
    if (r.consent().empty()) {
      for (v1::ConsentScope c : who.consent) r.add_consent(c);
    }
  }

  void SubmitJson(const http::Request& request, const json& document, const Integrator& who,
                  http::Respond answer) {
    v1::Envelope e = NewEnvelope(request, who);
    v1::ReferralSubmitted& r = *e.mutable_referral_submitted();
    std::vector<FieldProblem> problems;
    ReferralFromJson(document, r, problems);
    if (!problems.empty()) {
      metrics.Rejected("invalid");
      spdlog::info("refused a referral from {}: {} invalid field(s), first {}", who.id,
                   problems.size(), problems[0].field);
      return answer(ValidationProblem(problems));
    }
    Defaults(r, who);
    http::Reply refused;
    const std::string key = IdempotencyKey(request, who, r.referral_id(), &refused);
    if (refused.status != 200) return answer(std::move(refused));
    e.set_event_id(pseudonymiser.EventId(who.id, key));
    const std::string id = r.referral_id();
    std::string fingerprint;
    r.SerializeToString(&fingerprint);
    http::Reply accepted = JsonReply(
        202, {{"referral_id", id}, {"event_id", e.event_id()}, {"status_url", StatusUrl(id)}});
    accepted.headers.emplace_back("Location", StatusUrl(id));
    Send(key, Fingerprint(fingerprint), {std::move(e)}, {id}, std::move(accepted),
         "referral_submitted", std::move(answer));
  }

  static std::string StatusUrl(const std::string& referral_id) {
    return absl::StrCat("/v1/referrals/", referral_id);
  }

  void SubmitFhir(const http::Request& request, const json& document, const Integrator& who,
                  http::Respond answer) {
    Submitter submitter{who.id, who.source, who.org, who.consent};
    FhirResult mapped = MapFhir(document, concepts, pseudonymiser, submitter);
    if (!mapped.issues.empty()) {
      metrics.Rejected("invalid");
      spdlog::info("refused a FHIR request from {}: {} issue(s), first at {}", who.id,
                   mapped.issues.size(), mapped.issues[0].expression);
      return answer(FhirProblem(400, std::move(mapped.issues)));
    }
    const std::string header(request.header("idempotency-key"));
    bool all_identified = true;
    std::vector<v1::Envelope> envelopes;
    std::vector<std::string> keys;
    std::string fingerprint;
    for (std::size_t i = 0; i < mapped.referrals.size(); ++i) {
      FhirReferral& f = mapped.referrals[i];
      metrics.unmapped.Increment(f.unmapped_codes);
      v1::ReferralSubmitted& r = f.referral;
      if (r.referral_id().empty()) {
        all_identified = false;
        // Without an identifier a retry is recognised only through Idempotency-Key.
        r.set_referral_id(header.empty()
                              ? absl::StrCat("r-", RandomHex(16))
                              : pseudonymiser.ReferralId(absl::StrCat("idempotency-key/", who.id),
                                                         absl::StrCat(header, "/", i)));
      }
      fingerprint += r.SerializeAsString();
      keys.push_back(r.referral_id());
      v1::Envelope e = NewEnvelope(request, who);
      *e.mutable_referral_submitted() = std::move(r);
      envelopes.push_back(std::move(e));
    }
    http::Reply refused;
    const std::string key = IdempotencyKey(
        request, who, all_identified ? absl::StrCat("fhir/", absl::StrJoin(keys, ",")) : "",
        &refused);
    if (refused.status != 200) return answer(std::move(refused));
    for (std::size_t i = 0; i < envelopes.size(); ++i) {
      envelopes[i].set_event_id(key.empty() ? absl::StrCat("g-", RandomHex(16))
                                            : pseudonymiser.EventId(who.id, absl::StrCat(key, "/", i)));
    }
    http::Reply accepted;
    if (mapped.bundle) {
      json entries = json::array();
      for (const std::string& id : keys) {
        entries.push_back({{"response", {{"status", "202 Accepted"}, {"location", StatusUrl(id)}}}});
      }
      accepted = JsonReply(202, {{"resourceType", "Bundle"}, {"type", "batch-response"},
                                 {"entry", entries}},
                           "application/fhir+json");
    } else {
      accepted = JsonReply(202,
                           {{"resourceType", "OperationOutcome"},
                            {"issue", json::array({{{"severity", "information"},
                                                    {"code", "informational"},
                                                    {"diagnostics", "accepted"},
                                                    {"expression", json::array({StatusUrl(keys[0])})}}})}},
                           "application/fhir+json");
      accepted.headers.emplace_back("Location", StatusUrl(keys[0]));
    }
    Send(key, Fingerprint(fingerprint), std::move(envelopes), std::move(keys), std::move(accepted),
         "referral_submitted", std::move(answer));
  }

  void SubmitResponse(const http::Request& request, const json& document, const std::string& id,
                      const Integrator& who, http::Respond answer) {
    v1::Envelope e = NewEnvelope(request, who);
    v1::PodResponse& r = *e.mutable_pod_response();
    std::vector<FieldProblem> problems;
    json body = document;
    if (body.is_object() && !body.contains("referral_id") && !body.contains("referralId")) {
      body["referral_id"] = id;
    }
    PodResponseFromJson(body, r, problems);
    if (problems.empty() && r.referral_id() != id) {
      problems.push_back({"/referral_id", "differs from the referral in the path"});
    }
    if (!problems.empty()) {
      metrics.Rejected("invalid");
      return answer(ValidationProblem(problems));
    }
    if (!who.pods.empty() &&
        std::find(who.pods.begin(), who.pods.end(), r.pod_id()) == who.pods.end()) {
      metrics.Rejected("forbidden");
      return answer(http::Problem(403, "Forbidden", "this token may not answer for that pod"));
    }
    http::Reply refused;
    const std::string key = IdempotencyKey(request, who, "", &refused);
    if (refused.status != 200) return answer(std::move(refused));
    e.set_event_id(key.empty() ? absl::StrCat("g-", RandomHex(16))
                               : pseudonymiser.EventId(who.id, key));
    http::Reply accepted = JsonReply(202, {{"referral_id", id}, {"event_id", e.event_id()},
                                           {"status_url", StatusUrl(id)}});
    Send(key, Fingerprint(r.SerializeAsString()), {std::move(e)}, {id}, std::move(accepted),
         "pod_response", std::move(answer));
  }

  // GET on the router's query API; its answer is passed back as it is, except that a redirect
  // to the instance owning the referral's partition (an address inside the deployment, which the
  // caller may not reach) is followed once. A second redirect means ownership moved between the
  // two lookups (a rebalance): 503 with Retry-After, for the caller to ask again.
  void Forward(const std::string& target, http::Respond answer) {
    if (config.router_url.empty() || config.router_url.find(':') == std::string::npos) {
      return answer(http::Problem(503, "Service Unavailable", "no router_url is configured"));
    }
    Get(config.router_url, target, /*redirects=*/1, std::move(answer));
  }

  // "http://host:port/path" -> {"host:port", "/path"}; false for anything else.
  static bool SplitLocation(std::string_view location, std::string& host_port,
                            std::string& target) {
    constexpr std::string_view kScheme = "http://";
    if (location.substr(0, kScheme.size()) != kScheme) return false;
    location.remove_prefix(kScheme.size());
    const std::size_t slash = location.find('/');
    if (slash == std::string_view::npos || location.substr(0, slash).find(':') ==
                                               std::string_view::npos) {
      return false;
    }
    host_port = std::string(location.substr(0, slash));
    target = std::string(location.substr(slash));
    return true;
  }

  void Get(const std::string& host_port, const std::string& target, int redirects,
           http::Respond answer) {
    const std::size_t colon = host_port.rfind(':');
    struct Call {
      explicit Call(asio::io_context& io) : resolver(io), stream(io) {}
      asio::ip::tcp::resolver resolver;
      beast::tcp_stream stream;
      bhttp::request<bhttp::empty_body> req;
      bhttp::response<bhttp::string_body> res;
      beast::flat_buffer buffer;
      http::Respond answer;
      void Fail() {
        answer(http::Problem(502, "Bad Gateway", "the router's query API did not answer"));
      }
    };
    auto call = std::make_shared<Call>(client_io);
    call->answer = std::move(answer);
    call->req = {bhttp::verb::get, target, 11};
    call->req.set(bhttp::field::host, host_port);
    auto done = [this, call, redirects] {
      const int status = static_cast<int>(call->res.result_int());
      std::string host;
      std::string next;
      if ((status == 307 || status == 308) &&
          SplitLocation(std::string(call->res[bhttp::field::location]), host, next)) {
        if (redirects > 0) {
          return Get(host, next, redirects - 1, std::move(call->answer));
        }
        http::Reply busy = http::Problem(503, "Service Unavailable",
                                         "the referral's owner is changing (a rebalance); retry");
        busy.headers.emplace_back("Retry-After", "1");
        return call->answer(std::move(busy));
      }
      http::Reply reply{status, std::string(call->res[bhttp::field::content_type]),
                        std::move(call->res.body()), {}};
      if (const auto retry = call->res.find(bhttp::field::retry_after); retry != call->res.end()) {
        reply.headers.emplace_back("Retry-After", std::string(retry->value()));
      }
      call->answer(std::move(reply));
    };
    call->resolver.async_resolve(
        host_port.substr(0, colon), host_port.substr(colon + 1),
        [call, done](beast::error_code ec, asio::ip::tcp::resolver::results_type results) {
          if (ec) return call->Fail();
          call->stream.expires_after(std::chrono::seconds(3));
          call->stream.async_connect(results, [call, done](beast::error_code ec, auto) {
            if (ec) return call->Fail();
            bhttp::async_write(call->stream, call->req,
                               [call, done](beast::error_code ec, std::size_t) {
                                 if (ec) return call->Fail();
                                 bhttp::async_read(call->stream, call->buffer, call->res,
                                                   [call, done](beast::error_code ec, std::size_t) {
                                                     if (ec) return call->Fail();
                                                     done();
                                                   });
                               });
          });
        });
  }
};

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

int Gateway::port() const { return impl_->server->port(); }

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayConfig config) {
  absl::StatusOr<ConceptMap> concepts = ConceptMap::Load(config.concept_map_file);
  if (!concepts.ok()) return concepts.status();
  absl::StatusOr<Pseudonymiser> pseudonymiser = Pseudonymiser::FromHex(config.pseudonym_key);
  if (!pseudonymiser.ok()) return pseudonymiser.status();
  auto impl = std::make_unique<Impl>(std::move(config), *std::move(concepts), *pseudonymiser);
  Impl& g = *impl;
  if (absl::Status s = g.StartProducer(); !s.ok()) return s;
  g.client_work.emplace(g.client_io.get_executor());
  g.client_thread = std::thread([&g] { g.client_io.run(); });
  http::ServerOptions options;
  options.threads = g.config.threads;
  options.max_body_bytes = static_cast<std::size_t>(g.config.max_body_bytes);
  options.tls_cert_file = g.config.tls_cert_file;
  options.tls_key_file = g.config.tls_key_file;
  absl::StatusOr<std::unique_ptr<http::Server>> server = http::Server::Start(
      g.config.listen, options,
      [&g](http::Request request, http::Respond respond) {
        g.Handle(std::move(request), std::move(respond));
      });
  if (!server.ok()) {
    g.stopping = true;
    g.health_cv.notify_all();
    g.poller.join();
    g.health.join();
    g.client_work.reset();
    g.client_thread.join();
    return server.status();
  }
  g.server = *std::move(server);
  spdlog::info("gateway listening on port {} for {} integrators", g.server->port(),
               g.config.integrators.size());
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::~Gateway() {
  Impl& g = *impl_;
  g.draining = true;  // new submissions get 503 from here on
  // Every accepted request is answered before the server goes: flush waits for the acks (or
  // their failures) of everything produced.
  g.producer->flush(static_cast<int>(g.config.delivery_timeout_ms) + 1000);
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(2);
  while (g.in_flight > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  g.stopping = true;
  g.health_cv.notify_all();
  g.poller.join();
  g.health.join();
  g.producer->poll(0);
  g.server.reset();
  g.client_work.reset();
  g.client_io.stop();
  g.client_thread.join();
  spdlog::info("gateway stopped; {} requests were still waiting for Kafka", g.in_flight.load());
}

}  // namespace signpost::services::gateway

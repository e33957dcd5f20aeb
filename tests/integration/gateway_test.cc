// SPDX-License-Identifier: Apache-2.0
// signpost-gateway against the real broker, over real HTTP: what it acknowledges is in Kafka
// exactly as mapped, what it refuses leaves nothing behind, retries produce one event, and a
// broker outage gives 503s without losing anything that was acknowledged.
#include <signal.h>

#include <utility>  // Boost 1.74 asio needs std::exchange declared first under C++20

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/gateway/fhir.h"
#include "services/gateway/gateway.h"
#include "services/http/server.h"
#include "services/intake.h"
#include "services/kafka/topics.h"
#include "signpost/v1/envelope.pb.h"
#include "tests/testing/kafka_test_env.h"
#include "tests/testing/own_broker.h"
#include "tests/testing/router_harness.h"

namespace signpost::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace gw = services::gateway;
using nlohmann::json;
using namespace std::chrono_literals;

const std::string kExamples = SIGNPOST_EXAMPLES;
const std::string kFhir = SIGNPOST_FHIR_DIR;
const std::string kKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string kGp = "Bearer demo-gp-token";
const std::string kPod = "Bearer demo-pod-token";
const std::string kReader = "Bearer demo-read-token";

struct Answer {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  json Json() const { return json::parse(body, nullptr, false); }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

Answer Call(int port, const std::string& method, const std::string& target,
            const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers,
            const std::string& content_type = "application/json") {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                         static_cast<unsigned short>(port)),
                 ec);
  if (ec) return {};
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!body.empty()) req.set(bhttp::field::content_type, content_type);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  bhttp::write(stream, req, ec);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buffer, res, ec);
  if (ec) return {};
  Answer a{static_cast<int>(res.result_int()), res.body(), {}};
  for (const auto& f : res) a.headers[std::string(f.name_string())] = std::string(f.value());
  return a;
}

std::string File(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

gw::GatewayConfig Config(const std::string& bootstrap, const std::string& topic) {
  gw::GatewayConfig c;
  c.listen = "127.0.0.1:0";
  c.intake_topic = topic;
  c.kafka = {{"bootstrap.servers", bootstrap}};
  c.pseudonym_key = kKey;
  c.concept_map_file = kExamples + "/concept-map.yaml";
  c.integrators_file = kExamples + "/integrators.yaml";
  c.integrators = *gw::ParseIntegrators(File(c.integrators_file), "integrators.yaml");
  return c;
}

std::vector<v1::Envelope> Envelopes(const services::KafkaProperties& base,
                                    const std::string& topic, std::vector<std::string>* keys) {
  std::vector<v1::Envelope> out;
  for (const LogRecord& r : ReadCommitted(base, topic)) {
    v1::Envelope e;
    EXPECT_TRUE(e.ParseFromString(r.value));
    out.push_back(std::move(e));
    if (keys != nullptr) keys->push_back(r.key);
  }
  return out;
}

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<services::KafkaProperties> base = TestClientProperties();
    ASSERT_TRUE(base.ok()) << base.status();
    base_ = *base;
    topic_ = UniqueName("gw-intake");
    ASSERT_TRUE(services::CreateTopics(base_, {{topic_, 3, 1, {}}}, 30'000).ok());
    absl::StatusOr<std::unique_ptr<gw::Gateway>> g =
        gw::Gateway::Start(Config(base_.at("bootstrap.servers"), topic_));
    ASSERT_TRUE(g.ok()) << g.status();
    gateway_ = *std::move(g);
    port_ = gateway_->port();
    for (int i = 0; i < 100 && Call(port_, "GET", "/readyz", "", {}).status != 200; ++i) {
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_EQ(Call(port_, "GET", "/readyz", "", {}).status, 200);
  }

  services::KafkaProperties base_;
  std::string topic_;
  std::unique_ptr<gw::Gateway> gateway_;
  int port_ = 0;
};

TEST_F(GatewayTest, AcknowledgedSubmissionsAreInKafkaExactlyAsMapped) {
  absl::StatusOr<gw::ConceptMap> concepts = gw::ConceptMap::Load(kExamples + "/concept-map.yaml");
  absl::StatusOr<gw::Pseudonymiser> pseudo = gw::Pseudonymiser::FromHex(kKey);
  ASSERT_TRUE(concepts.ok() && pseudo.ok());
  const gw::Submitter gp{"demo-gp-system", v1::SOURCE_GP_PRACTICE, "L81004",
                         {v1::CONSENT_SCOPE_SHARE_WITH_PODS}};
  std::map<std::string, std::string> expected;  // referral id -> serialized referral
  for (const char* doc : {"gp-social-prescribing.json", "self-referral.json",
                          "hospital-discharge.json", "bundle.json", "unmapped-codes.json"}) {
    const std::string body = File(kFhir + "/" + doc);
    const Answer a = Call(port_, "POST", "/fhir/ServiceRequest", body,
                          {{"Authorization", kGp}}, "application/fhir+json");
    ASSERT_EQ(a.status, 202) << doc << ": " << a.body;
    EXPECT_EQ(a.Header("Content-Type"), "application/fhir+json");
    const gw::FhirResult mapped = gw::MapFhir(json::parse(body), *concepts, *pseudo, gp);
    for (const gw::FhirReferral& f : mapped.referrals) {
      expected[f.referral.referral_id()] = f.referral.SerializeAsString();
      EXPECT_THAT(a.body, ::testing::HasSubstr(f.referral.referral_id())) << doc;
    }
  }
  const json referral = {{"referral_id", "json-1"}, {"client_ref", "c-json"},
                         {"needs", {{{"code", "Food"}}}}, {"postcode_outward", "ba1"}};
  const Answer j = Call(port_, "POST", "/v1/referrals", referral.dump(),
                        {{"Authorization", kGp},
                         {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  ASSERT_EQ(j.status, 202) << j.body;
  EXPECT_EQ(j.Json()["referral_id"], "json-1");
  EXPECT_EQ(j.Header("Location"), "/v1/referrals/json-1");
  const Answer r = Call(port_, "POST", "/v1/referrals/json-1/responses",
                        R"({"pod_id":"food-bath-foodbank","need_code":"food","accepted":{}})",
                        {{"Authorization", kPod}});
  ASSERT_EQ(r.status, 202) << r.body;

  std::vector<std::string> keys;
  const std::vector<v1::Envelope> got = Envelopes(base_, topic_, &keys);
  ASSERT_EQ(got.size(), expected.size() + 2);
  std::set<std::string> event_ids;
  services::IntakeRules rules;
  rules.domains = {services::IntakeDomain{"banes", {}, {}}};
  for (std::size_t i = 0; i < got.size(); ++i) {
    const v1::Envelope& e = got[i];
    EXPECT_EQ(e.schema_version(), 1u);
    EXPECT_EQ(e.producer(), e.has_pod_response() ? "integrator/demo-food-pod"
                                                  : "integrator/demo-gp-system");
    EXPECT_GT(e.event_time_ms(), 0);
    EXPECT_EQ(e.trace_id().size(), 32u);
    EXPECT_TRUE(event_ids.insert(e.event_id()).second) << "event ids are unique";
    // What the gateway produces passes the router's own intake checks.
    const services::IntakeVerdict v = services::JudgeIntake(e.SerializeAsString(), rules);
    EXPECT_EQ(v.reason, services::DlqReason::kNone) << v.detail;
    if (e.has_referral_submitted()) {
      const v1::ReferralSubmitted& s = e.referral_submitted();
      EXPECT_EQ(keys[i], s.referral_id()) << "records are keyed by referral id";
      if (s.referral_id() == "json-1") {
        EXPECT_EQ(s.needs(0).code(), "food");
        EXPECT_EQ(s.postcode_outward(), "BA1");
        EXPECT_EQ(s.integrator_id(), "demo-gp-system") << "stamped from the token";
        EXPECT_EQ(s.source_org(), "L81004");
        EXPECT_EQ(e.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        continue;
      }
      ASSERT_TRUE(expected.contains(s.referral_id()));
      EXPECT_EQ(s.SerializeAsString(), expected[s.referral_id()]) << s.DebugString();
    } else {
      ASSERT_TRUE(e.has_pod_response());
      EXPECT_EQ(e.pod_response().referral_id(), "json-1");
      EXPECT_TRUE(e.pod_response().has_accepted());
    }
  }
  const std::string metrics = Call(port_, "GET", "/metrics", "", {}).body;
  EXPECT_THAT(metrics, ::testing::HasSubstr(
                           R"(signpost_gateway_records_produced_total{type="referral_submitted"} 7)"));
  EXPECT_THAT(metrics, ::testing::HasSubstr("signpost_gateway_unmapped_codes_total 2"));
}

TEST_F(GatewayTest, RefusedRequestsProduceNothingAndSayWhy) {
  json fhir = json::parse(File(kFhir + "/gp-social-prescribing.json"));
  auto damaged = [&](auto damage) {
    json d = fhir;
    damage(d);
    return d.dump();
  };
  struct Bad {
    const char* name;
    std::string path, body, auth, type;
    int status;
  };
  const std::string fhir_path = "/fhir/ServiceRequest";
  const std::string ok_json = R"({"referral_id":"r1","client_ref":"c1"})";
  const std::vector<Bad> cases = {
      {"malformed FHIR", fhir_path, "{\"resourceType\": \"ServiceRequest\",", kGp, "application/fhir+json", 400},
      {"malformed JSON", "/v1/referrals", "{not json", kGp, "application/json", 400},
      {"wrong resourceType", fhir_path, damaged([](json& d) { d["resourceType"] = "Observation"; }), kGp, "application/fhir+json", 400},
      {"missing subject", fhir_path, damaged([](json& d) { d.erase("subject"); }), kGp, "application/fhir+json", 400},
      {"wrong types", fhir_path, damaged([](json& d) { d["reasonCode"] = 5; d["priority"] = true; }), kGp, "application/fhir+json", 400},
      {"huge string", fhir_path, damaged([](json& d) { d["contained"][0]["identifier"][0]["value"] = std::string(200'000, '9'); }), kGp, "application/fhir+json", 400},
      {"invalid JSON form", "/v1/referrals", R"({"referral_id":"","client_ref":7,"needs":[{"urgency":"LOUD"}]})", kGp, "application/json", 400},
      {"too large", "/v1/referrals", std::string(2 << 20, ' '), kGp, "application/json", 413},
      {"no token", "/v1/referrals", ok_json, "", "application/json", 401},
      {"unknown token", "/v1/referrals", ok_json, "Bearer guess", "application/json", 401},
      {"no submit scope", "/v1/referrals", ok_json, kPod, "application/json", 403},
      {"not this pod", "/v1/referrals/r1/responses", R"({"pod_id":"housing-dhi-curo","accepted":{}})", kPod, "application/json", 403},
      {"bad response", "/v1/referrals/r1/responses", R"({"pod_id":"food-bath-foodbank"})", kPod, "application/json", 400},
      {"media type", "/v1/referrals", ok_json, kGp, "text/plain", 415},
      {"unknown route", "/v2/referrals", ok_json, kGp, "application/json", 404},
  };
  for (const Bad& c : cases) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!c.auth.empty()) headers.emplace_back("Authorization", c.auth);
    const Answer a = Call(port_, "POST", c.path, c.body, headers, c.type);
    EXPECT_EQ(a.status, c.status) << c.name << ": " << a.body.substr(0, 300);
    const json body = a.Json();
    if (c.status == 400 && c.path == fhir_path) {
      EXPECT_EQ(body["resourceType"], "OperationOutcome") << c.name;
      EXPECT_FALSE(body["issue"].empty()) << c.name;
    } else {
      EXPECT_EQ(body["status"], c.status) << c.name << ": problem details";
    }
  }
  const Answer invalid = Call(port_, "POST", "/v1/referrals",
                              R"({"referral_id":"","client_ref":7,"needs":[{"urgency":"LOUD"}]})",
                              {{"Authorization", kGp}});
  std::set<std::string> pointers;
  const json problem = invalid.Json();
  for (const json& e : problem["errors"]) pointers.insert(e["pointer"]);
  EXPECT_EQ(pointers, (std::set<std::string>{"/referral_id", "/client_ref", "/needs/0/urgency"}))
      << invalid.status << " " << invalid.body;
  const Answer wrong_method = Call(port_, "GET", "/v1/referrals", "", {{"Authorization", kGp}});
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.Header("Allow"), "POST");
  ASSERT_EQ(Call(port_, "POST", "/v1/referrals", ok_json, {{"Authorization", kGp}}).status, 202);
  const std::vector<v1::Envelope> got = Envelopes(base_, topic_, nullptr);
  ASSERT_EQ(got.size(), 1u) << "only the valid request reached Kafka";
  EXPECT_EQ(got[0].referral_submitted().referral_id(), "r1");
}

TEST_F(GatewayTest, RetriesWithTheSameKeyProduceOneEvent) {
  const std::string body = R"({"referral_id":"retry-1","client_ref":"c-retry","needs":[{"code":"food"}]})";
  std::string first;
  for (int i = 0; i < 5; ++i) {
    const Answer a = Call(port_, "POST", "/v1/referrals", body,
                          {{"Authorization", kGp}, {"Idempotency-Key", "key-1"}});
    ASSERT_EQ(a.status, 202) << a.body;
    if (i == 0) {
      first = a.body;
      EXPECT_EQ(a.headers.count("Idempotent-Replayed"), 0u);
    } else {
      EXPECT_EQ(a.body, first) << "the same answer";
      EXPECT_EQ(a.Header("Idempotent-Replayed"), "true");
    }
  }
  const Answer reused = Call(port_, "POST", "/v1/referrals",
                             R"({"referral_id":"retry-2","client_ref":"c-retry"})",
                             {{"Authorization", kGp}, {"Idempotency-Key", "key-1"}});
  EXPECT_EQ(reused.status, 422) << reused.body;

  // Concurrent retries: one is produced; the others wait (409) or replay its answer.
  const std::string racing = R"({"referral_id":"race-1","client_ref":"c-race"})";
  std::vector<std::thread> threads;
  std::vector<int> statuses(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = Call(port_, "POST", "/v1/referrals", racing,
                         {{"Authorization", kGp}, {"Idempotency-Key", "race"}})
                        .status;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(statuses, ::testing::Each(::testing::AnyOf(202, 409)));
  EXPECT_THAT(statuses, ::testing::Contains(202));

  // FHIR: the ServiceRequest identifier is the key when no header is sent.
  const std::string fhir = File(kFhir + "/bundle.json");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Call(port_, "POST", "/fhir/ServiceRequest", fhir, {{"Authorization", kGp}},
                   "application/fhir+json")
                  .status,
              202);
  }
  std::multiset<std::string> ids;
  for (const v1::Envelope& e : Envelopes(base_, topic_, nullptr)) {
    ids.insert(e.referral_submitted().referral_id());
  }
  EXPECT_EQ(ids.size(), 4u) << "retry-1, race-1 and the bundle's two referrals, once each";
  EXPECT_EQ(ids.count("retry-1"), 1u);
  EXPECT_EQ(ids.count("race-1"), 1u);
}

TEST_F(GatewayTest, StatusIsForwardedToTheRouter) {
  // A stand-in for the router's query API (the real one is tested with the router).
  absl::StatusOr<std::unique_ptr<services::http::Server>> router = services::http::Server::Start(
      "127.0.0.1:0", {}, [](services::http::Request req, services::http::Respond respond) {
        if (req.target == "/v1/referrals/moving") {  // its owner unknown mid-rebalance
          return respond({503, "application/problem+json", "{}", {{"Retry-After", "1"}}});
        }
        respond({req.target == "/v1/referrals/abc" ? 200 : 404, "application/json",
                 json{{"asked", req.target}}.dump(), {}});
      });
  ASSERT_TRUE(router.ok());
  gw::GatewayConfig c = Config(base_.at("bootstrap.servers"), topic_);
  c.router_url = absl::StrCat("127.0.0.1:", (*router)->port());
  absl::StatusOr<std::unique_ptr<gw::Gateway>> g = gw::Gateway::Start(c);
  ASSERT_TRUE(g.ok());
  const int port = (*g)->port();
  const Answer a = Call(port, "GET", "/v1/referrals/abc", "", {{"Authorization", kReader}});
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Json()["asked"], "/v1/referrals/abc");
  EXPECT_EQ(Call(port, "GET", "/v1/referrals/zzz", "", {{"Authorization", kReader}}).status, 404);
  const Answer moving = Call(port, "GET", "/v1/referrals/moving", "", {{"Authorization", kReader}});
  EXPECT_EQ(moving.status, 503);
  EXPECT_EQ(moving.Header("Retry-After"), "1") << "the router's Retry-After is passed on";
  EXPECT_EQ(Call(port, "GET", "/v1/referrals/abc", "", {}).status, 401);
  router->reset();
  EXPECT_EQ(Call(port, "GET", "/v1/referrals/abc", "", {{"Authorization", kReader}}).status, 502);
}

// Behind the router's headless Service the gateway reaches any instance; one that does not own
// the referral answers 307 with the owner's address inside the deployment, which an integrator
// outside it cannot reach. The gateway follows that redirect once and answers with the owner's
// reply; a second redirect (ownership moving) is a 503 to retry, never a Location leaked out.
TEST_F(GatewayTest, StatusFollowsTheRoutersRedirectToTheOwner) {
  auto stand_in = [](std::function<services::http::Reply(const services::http::Request&)> f) {
    return services::http::Server::Start(
        "127.0.0.1:0", {}, [f](services::http::Request req, services::http::Respond respond) {
          respond(f(req));
        });
  };
  absl::StatusOr<std::unique_ptr<services::http::Server>> owner =
      stand_in([](const services::http::Request& req) -> services::http::Reply {
        return {200, "application/json", json{{"owner_asked", req.target}}.dump(), {}};
      });
  ASSERT_TRUE(owner.ok());
  const std::string owner_url = absl::StrCat("http://127.0.0.1:", (*owner)->port());
  std::atomic<int> asked{0};
  std::atomic<int> other_port{0};
  absl::StatusOr<std::unique_ptr<services::http::Server>> other =
      stand_in([&](const services::http::Request& req) -> services::http::Reply {
        ++asked;
        // "loop" redirects to this same stand-in: ownership that keeps moving.
        const std::string to = req.target == "/v1/referrals/loop"
                                   ? absl::StrCat("http://127.0.0.1:", other_port.load())
                                   : owner_url;
        return {307, "application/json", "{}", {{"Location", to + req.target}}};
      });
  ASSERT_TRUE(other.ok());
  other_port = (*other)->port();
  gw::GatewayConfig c = Config(base_.at("bootstrap.servers"), topic_);
  c.router_url = absl::StrCat("127.0.0.1:", (*other)->port());
  absl::StatusOr<std::unique_ptr<gw::Gateway>> g = gw::Gateway::Start(c);
  ASSERT_TRUE(g.ok());
  const int port = (*g)->port();

  const Answer a = Call(port, "GET", "/v1/referrals/abc", "", {{"Authorization", kReader}});
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Json()["owner_asked"], "/v1/referrals/abc");
  EXPECT_EQ(asked.load(), 1);

  const Answer loop = Call(port, "GET", "/v1/referrals/loop", "", {{"Authorization", kReader}});
  EXPECT_EQ(loop.status, 503);
  EXPECT_EQ(loop.Header("Retry-After"), "1");
  EXPECT_EQ(loop.Header("Location"), "");
  EXPECT_EQ(asked.load(), 3) << "the first answer and one redirect followed";
}

// The broker is killed mid-stream and restarted. While it is down the gateway answers 503
// (never 202); every referral it acknowledged, before or after, is in Kafka at the end.
TEST(GatewayOutageTest, BrokerDownGives503AndNothingAcknowledgedIsLost) {
  const OwnBroker own;
  const std::string bootstrap = own.Run("start");
  ASSERT_FALSE(bootstrap.empty());
  const services::KafkaProperties base = {{"bootstrap.servers", bootstrap}};
  const std::string topic = "gw-outage";
  ASSERT_TRUE(services::CreateTopics(base, {{topic, 3, 1, {}}}, 30'000).ok());
  gw::GatewayConfig c = Config(bootstrap, topic);
  c.delivery_timeout_ms = 3000;
  c.kafka["reconnect.backoff.max.ms"] = "500";
  absl::StatusOr<std::unique_ptr<gw::Gateway>> g = gw::Gateway::Start(c);
  ASSERT_TRUE(g.ok()) << g.status();
  const int port = (*g)->port();
  for (int i = 0; i < 100 && Call(port, "GET", "/readyz", "", {}).status != 200; ++i) {
    std::this_thread::sleep_for(100ms);
  }

  std::atomic<bool> stop{false};
  std::atomic<int> unavailable{0};
  std::set<std::string> acknowledged;
  std::thread client([&] {
    // One referral at a time, each retried with its key until acknowledged.
    for (int i = 0; !stop; ++i) {
      const std::string id = absl::StrCat("outage-", i);
      const std::string body =
          json{{"referral_id", id}, {"client_ref", "c-" + id}, {"needs", {{{"code", "food"}}}}}.dump();
      while (!stop) {
        const Answer a = Call(port, "POST", "/v1/referrals", body,
                              {{"Authorization", kGp}, {"Idempotency-Key", id}});
        if (a.status == 202) {
          acknowledged.insert(id);
          break;
        }
        EXPECT_EQ(a.status, 503) << a.body;
        if (a.status == 503) {
          EXPECT_FALSE(a.Header("Retry-After").empty());
          ++unavailable;
        }
        std::this_thread::sleep_for(100ms);
      }
      std::this_thread::sleep_for(5ms);
    }
  });
  std::this_thread::sleep_for(2s);
  own.Run("kill");
  std::this_thread::sleep_for(6s);
  const int before_restart = unavailable;
  EXPECT_EQ(own.Run("start"), bootstrap);
  std::this_thread::sleep_for(8s);
  stop = true;
  client.join();
  EXPECT_GT(before_restart, 0) << "the outage was answered with 503s";
  ASSERT_GT(acknowledged.size(), 20u);

  std::set<std::string> in_kafka;
  for (const LogRecord& r : ReadCommitted(base, topic)) {
    v1::Envelope e;
    ASSERT_TRUE(e.ParseFromString(r.value));
    in_kafka.insert(e.referral_submitted().referral_id());
  }
  std::vector<std::string> lost;
  std::set_difference(acknowledged.begin(), acknowledged.end(), in_kafka.begin(), in_kafka.end(),
                      std::back_inserter(lost));
  EXPECT_TRUE(lost.empty()) << lost.size() << " acknowledged referrals are missing, e.g. "
                            << (lost.empty() ? "" : lost[0]);
  std::cout << "acknowledged " << acknowledged.size() << ", 503 answers " << unavailable.load()
            << ", records in Kafka " << in_kafka.size() << "\n";
}

}  // namespace
}  // namespace signpost::testing

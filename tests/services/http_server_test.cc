// SPDX-License-Identifier: Apache-2.0
// The shared asynchronous HTTP server: answers from other threads, keep-alive, the body limit,
// and TLS with a certificate made for the test.
#include "services/http/server.h"

#include <utility>  // Boost 1.74 asio needs std::exchange declared first under C++20

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "gtest/gtest.h"

namespace signpost::services::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// Echoes method, path and body; answers from a new thread after a short wait, as the gateway
// does when Kafka acknowledges.
Handler LateEcho() {
  return [](Request req, Respond respond) {
    std::thread([req = std::move(req), respond = std::move(respond)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      respond({200, "text/plain", req.method + " " + std::string(req.path()) + " " + req.body +
                                      " " + std::string(req.header("x-test")), {{"X-Late", "yes"}}});
    }).detach();
  };
}

TEST(HttpServerTest, AnswersFromAnotherThreadOnAKeptAliveConnection) {
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start("127.0.0.1:0", {}, LateEcho());
  ASSERT_TRUE(server.ok()) << server.status();
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>((*server)->port())));
  for (int i = 0; i < 3; ++i) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/a/b?q=1", 11};
    req.set(bhttp::field::host, "x");
    req.set("X-Test", "h" + std::to_string(i));
    req.body() = "body" + std::to_string(i);
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "POST /a/b body" + std::to_string(i) + " h" + std::to_string(i));
    EXPECT_EQ(res["X-Late"], "yes");
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST(HttpServerTest, HeadGetsTheHeadersWithoutTheBody) {
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start("127.0.0.1:0", {}, LateEcho());
  ASSERT_TRUE(server.ok());
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>((*server)->port())));
  for (const bhttp::verb verb : {bhttp::verb::head, bhttp::verb::get}) {
    bhttp::request<bhttp::string_body> req{verb, "/x", 11};
    req.set(bhttp::field::host, "x");
    bhttp::write(stream, req);
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(verb == bhttp::verb::head);
    bhttp::read(stream, buffer, parser);
    const auto& res = parser.get();
    EXPECT_EQ(res.result_int(), 200u);
    if (verb == bhttp::verb::head) {
      EXPECT_EQ(res[bhttp::field::content_length], "9");  // the length of "HEAD /x  "
      EXPECT_TRUE(res.body().empty());
    } else {
      EXPECT_EQ(res.body(), "GET /x  ") << "the connection is still in step after the HEAD";
    }
  }
}

TEST(HttpServerTest, OversizedBodiesGet413) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start("127.0.0.1:0", options, LateEcho());
  ASSERT_TRUE(server.ok());
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>((*server)->port())));
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/", 11};
  req.body() = std::string(5000, 'x');
  req.prepare_payload();
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buffer, res);
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(res[bhttp::field::content_type], "application/problem+json");
}

TEST(HttpServerTest, BadAddressesAreRefused) {
  EXPECT_EQ(Server::Start("nonsense", {}, LateEcho()).status().code(),
            absl::StatusCode::kInvalidArgument);
  ServerOptions tls;
  tls.tls_cert_file = "/nonexistent/cert.pem";
  tls.tls_key_file = "/nonexistent/key.pem";
  EXPECT_EQ(Server::Start("127.0.0.1:0", tls, LateEcho()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HttpServerTest, ServesTlsWithTheGivenCertificate) {
  const std::string dir = ::testing::TempDir() + "/signpost-tls";
  std::filesystem::create_directories(dir);
  const std::string cert = dir + "/cert.pem";
  const std::string key = dir + "/key.pem";
  const std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " +
                              key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0) << "openssl (scripts/setup installs it)";
  ServerOptions options;
  options.tls_cert_file = cert;
  options.tls_key_file = key;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start("127.0.0.1:0", options, LateEcho());
  ASSERT_TRUE(server.ok()) << server.status();

  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  beast::get_lowest_layer(stream).connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                    static_cast<unsigned short>((*server)->port())));
  stream.handshake(asio::ssl::stream_base::client);
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/secure", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buffer, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "GET /secure  ");

  // A plain-text client gets no answer from the TLS port.
  beast::tcp_stream plain(io);
  plain.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                              static_cast<unsigned short>((*server)->port())));
  plain.expires_after(std::chrono::seconds(5));
  bhttp::write(plain, req);
  beast::flat_buffer b2;
  bhttp::response<bhttp::string_body> r2;
  beast::error_code ec;
  bhttp::read(plain, b2, r2, ec);
  EXPECT_TRUE(ec) << "plain HTTP is not served on a TLS port";
}

}  // namespace
}  // namespace signpost::services::http

// SPDX-License-Identifier: Apache-2.0
#include "services/http_server.h"

#include <sys/socket.h>

#include <utility>  // Boost 1.74 asio needs std::exchange declared first under C++20

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace signpost::services {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::State {
  std::atomic<bool> stopping{false};
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  HttpHandler handler;
};

namespace {

void Serve(tcp::socket socket, const HttpHandler& handler) {
  // An idle keep-alive client must not hold the only serving thread for long.
  timeval timeout{5, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  beast::error_code ec;
  beast::flat_buffer buffer;
  while (true) {
    http::request<http::string_body> request;
    http::read(socket, buffer, request, ec);
    if (ec) {
      return;
    }
    HttpResponse r;
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      r = {405, "application/problem+json",
           R"({"title":"Method Not Allowed","status":405,"detail":"the API is read-only"})"};
    } else {
      r = handler(std::string(request.target()));
    }
    http::response<http::string_body> response{static_cast<http::status>(r.status),
                                               request.version()};
    response.set(http::field::server, "signpost");
    response.set(http::field::content_type, r.content_type);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(r.body);
    response.prepare_payload();
    http::write(socket, response, ec);
    if (ec || !response.keep_alive()) {
      break;
    }
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen,
                                                              HttpHandler handler) {
  const std::size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("listen address ", listen));
  }
  auto server = std::unique_ptr<HttpServer>(new HttpServer());
  server->state_ = std::make_unique<State>();
  State& s = *server->state_;
  s.handler = std::move(handler);
  beast::error_code ec;
  const tcp::endpoint endpoint(asio::ip::make_address(listen.substr(0, colon), ec),
                               static_cast<unsigned short>(port));
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("listen address ", listen, ": ", ec.message()));
  }
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("listen on ", listen, ": ", ec.message()));
  }
  server->port_ = s.acceptor.local_endpoint().port();
  server->thread_ = std::thread([&s] {
    while (!s.stopping) {
      beast::error_code accept_error;
      tcp::socket socket(s.io);
      s.acceptor.accept(socket, accept_error);
      if (accept_error) {
        continue;
      }
      Serve(std::move(socket), s.handler);
    }
    beast::error_code ignored;
    s.acceptor.close(ignored);
  });
  return server;
}

HttpServer::~HttpServer() {
  if (state_ != nullptr) {
    state_->stopping = true;
    // Wakes the blocking accept(); the thread then closes the acceptor.
    ::shutdown(state_->acceptor.native_handle(), SHUT_RDWR);
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

}  // namespace signpost::services

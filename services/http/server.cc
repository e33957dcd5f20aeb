// SPDX-License-Identifier: Apache-2.0
#include "services/http/server.h"

#include <utility>  // Boost 1.74 asio needs std::exchange declared first under C++20

#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace signpost::services::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

std::string_view Request::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view Request::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return {};
}

Reply Problem(int status, std::string_view title, std::string_view detail) {
  nlohmann::json body = {{"type", "about:blank"},
                         {"title", std::string(title)},
                         {"status", status},
                         {"detail", std::string(detail)}};
  return {status, "application/problem+json", body.dump(), {}};
}

struct Server::State {
  explicit State(int threads) : io(threads) {}
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<asio::ssl::context> tls;
  ServerOptions options;
  Handler handler;
  std::vector<std::thread> threads;
  int port = 0;
};

namespace {

// One connection: read a request, hand it to the handler, write its answer, repeat while the
// client keeps the connection alive. Stream is beast::tcp_stream or an ssl_stream over one.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, const Server::State& server)
      : stream_(std::move(stream)), server_(server) {}

  void Run() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      Read();
    } else {
      Lowest().expires_after(std::chrono::seconds(server_.options.idle_timeout_s));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->Read();
                              });
    }
  }

 private:
  beast::tcp_stream& Lowest() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      return stream_;
    } else {
      return beast::get_lowest_layer(stream_);
    }
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(16 * 1024);
    Lowest().expires_after(std::chrono::seconds(server_.options.idle_timeout_s));
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        self->OnRead(ec);
                      });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      return Write(Problem(413, "Payload Too Large",
                           absl::StrCat("the body is larger than ",
                                        server_.options.max_body_bytes, " bytes")),
                   11);
    }
    if (ec) {
      keep_alive_ = false;
      return Write(Problem(400, "Bad Request", "the request is not valid HTTP/1.1"), 11);
    }
    bhttp::request<bhttp::string_body> message = parser_->release();
    keep_alive_ = message.keep_alive();
    head_ = message.method() == bhttp::verb::head;
    const unsigned version = message.version();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.body = std::move(message.body());
    for (const auto& field : message) {
      std::string name(field.name_string());
      absl::AsciiStrToLower(&name);
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    // The handler may answer from another thread; the answer is written on this
    // connection's strand.
    server_.handler(std::move(request), [self = this->shared_from_this(), version](Reply reply) {
      asio::post(self->Lowest().get_executor(),
                 [self, version, reply = std::move(reply)]() mutable {
                   self->Write(std::move(reply), version);
                 });
    });
  }

  void Write(Reply reply, unsigned version) {
    auto response = std::make_shared<bhttp::response<bhttp::string_body>>(
        static_cast<bhttp::status>(reply.status), version);
    response->set(bhttp::field::server, "signpost");
    response->set(bhttp::field::content_type, reply.content_type);
    for (auto& [name, value] : reply.headers) {
      response->set(name, value);
    }
    response->keep_alive(keep_alive_);
    if (head_) {
      // HEAD: the headers GET would send, Content-Length included, and no body.
      response->content_length(reply.body.size());
    } else {
      response->body() = std::move(reply.body);
      response->prepare_payload();
    }
    Lowest().expires_after(std::chrono::seconds(server_.options.idle_timeout_s));
    bhttp::async_write(stream_, *response,
                       [self = this->shared_from_this(), response](beast::error_code ec,
                                                                   std::size_t) {
                         if (ec || !self->keep_alive_) {
                           return self->Close();
                         }
                         self->Read();
                       });
  }

  void Close() {
    beast::error_code ignored;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } else {
      Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
  }

  Stream stream_;
  const Server::State& server_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool keep_alive_ = true;
  bool head_ = false;
};

void Accept(Server::State& s) {
  s.acceptor.async_accept(asio::make_strand(s.io), [&s](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !s.acceptor.is_open()) {
      return;
    }
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      if (s.tls != nullptr) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
            beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *s.tls), s)
            ->Run();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), s)
            ->Run();
      }
    }
    Accept(s);
  });
}

}  // namespace

Server::Server(std::unique_ptr<State> state) : state_(std::move(state)) {}

int Server::port() const { return state_->port; }

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const std::string& listen,
                                                      const ServerOptions& options,
                                                      Handler handler) {
  const std::size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("listen address ", listen, ": not host:port"));
  }
  auto state = std::make_unique<State>(std::max(1, options.threads));
  State& s = *state;
  s.options = options;
  s.handler = std::move(handler);
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    s.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    s.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    s.tls->use_certificate_chain_file(options.tls_cert_file, ec);
    if (!ec) s.tls->use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("tls: ", ec.message()));
    }
  }
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
  s.port = s.acceptor.local_endpoint().port();
  Accept(s);
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    s.threads.emplace_back([&s] { s.io.run(); });
  }
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

Server::~Server() {
  asio::post(state_->io, [s = state_.get()] {
    beast::error_code ignored;
    s->acceptor.close(ignored);
  });
  // Open connections end with the io_context: stop() abandons their pending operations.
  state_->io.stop();
  for (std::thread& t : state_->threads) {
    t.join();
  }
}

}  // namespace signpost::services::http

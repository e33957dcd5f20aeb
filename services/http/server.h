// SPDX-License-Identifier: Apache-2.0
// An asynchronous HTTP/1.1 server (Boost.Beast on Asio) shared by every Signpost executable.
// Handlers receive the whole request and answer through a callback that may be called later and
// from any thread (the gateway answers once Kafka has acknowledged), so no thread waits on a
// slow answer. Keep-alive, a body size limit (413), idle timeouts, and optional TLS.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace signpost::services::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case

  // The path without the query string.
  [[nodiscard]] std::string_view path() const;
  // The first header named `name` (lower case), or "" when absent.
  [[nodiscard]] std::string_view header(std::string_view name) const;
};

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Location
};

// Answers a request; call it exactly once, from any thread.
using Respond = std::function<void(Reply)>;
using Handler = std::function<void(Request, Respond)>;

struct ServerOptions {
  int threads = 1;
  std::size_t max_body_bytes = 1 << 20;  // larger bodies get 413 and the connection closes
  int idle_timeout_s = 30;               // a silent keep-alive connection is closed after it
  std::string tls_cert_file;             // PEM chain; with tls_key_file, serve HTTPS only
  std::string tls_key_file;
};

class Server {
 public:
  // Listens on `listen` ("host:port"; port 0 picks one). Returns kInvalidArgument for a bad
  // address or TLS files, kUnavailable when the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Server>> Start(const std::string& listen,
                                                                     const ServerOptions& options,
                                                                     Handler handler);
  ~Server();  // stops accepting, closes connections, joins the threads
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] int port() const;

  struct State;  // defined in server.cc

 private:
  explicit Server(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A problem-details body (RFC 9457) with status, title and detail.
[[nodiscard]] Reply Problem(int status, std::string_view title, std::string_view detail);

}  // namespace signpost::services::http

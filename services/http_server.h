// SPDX-License-Identifier: Apache-2.0
// A small HTTP/1.1 server (Boost.Beast) for /metrics, /healthz, /readyz and the read-only query
// API. One background thread; handlers run on it and must be thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace signpost::services {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Called with the request target (path and query); returns the response.
using HttpHandler = std::function<HttpResponse(const std::string& target)>;

class HttpServer {
 public:
  // Listens on `listen` ("host:port"; port 0 picks one) and serves with `handler`.
  // Returns kUnavailable when the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, HttpHandler handler);
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] int port() const { return port_; }

 private:
  struct State;
  HttpServer() = default;
  std::unique_ptr<State> state_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace signpost::services

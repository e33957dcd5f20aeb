// SPDX-License-Identifier: Apache-2.0
// The router's read-only HTTP endpoint (/metrics, /healthz, /readyz and the query API) on the
// shared asynchronous server: one thread; the handler answers GET and HEAD synchronously and
// must be thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace signpost::services {
namespace http {
class Server;
}  // namespace http

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string location;  // with a 3xx status: the Location header
  int retry_after_s = 0;  // with a 503: the Retry-After header, when above 0
};

// Called with the request target (path and query); returns the response.
using HttpHandler = std::function<HttpResponse(const std::string& target)>;

class HttpServer {
 public:
  // Listens on `listen` ("host:port"; port 0 picks one) and serves with `handler`.
  // Returns kUnavailable when the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& listen, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  [[nodiscard]] int port() const { return port_; }

 private:
  HttpServer() = default;
  std::unique_ptr<http::Server> server_;
  int port_ = 0;
};

}  // namespace signpost::services

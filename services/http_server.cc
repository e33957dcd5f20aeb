// SPDX-License-Identifier: Apache-2.0
#include "services/http_server.h"

#include "services/http/server.h"

namespace signpost::services {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen,
                                                              HttpHandler handler) {
  auto server = std::unique_ptr<HttpServer>(new HttpServer());
  absl::StatusOr<std::unique_ptr<http::Server>> started = http::Server::Start(
      listen, http::ServerOptions{.threads = 1, .max_body_bytes = 4096},
      [handler = std::move(handler)](http::Request request, http::Respond respond) {
        if (request.method != "GET" && request.method != "HEAD") {
          return respond(http::Problem(405, "Method Not Allowed", "the API is read-only"));
        }
        HttpResponse r = handler(request.target);
        http::Reply reply{r.status, std::move(r.content_type), std::move(r.body), {}};
        if (!r.location.empty()) {
          reply.headers.emplace_back("Location", std::move(r.location));
        }
        if (r.retry_after_s > 0) {
          reply.headers.emplace_back("Retry-After", std::to_string(r.retry_after_s));
        }
        respond(std::move(reply));
      });
  if (!started.ok()) {
    return started.status();
  }
  server->server_ = std::move(*started);
  server->port_ = server->server_->port();
  return server;
}

HttpServer::~HttpServer() = default;

}  // namespace signpost::services

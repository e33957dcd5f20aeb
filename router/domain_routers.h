// SPDX-License-Identifier: Apache-2.0
// The routers of one log partition: many routing domains share a partition (architecture
// section 3), each with its own Router, rules, capacity and client records. A record goes to its
// domain's router; a Tick that names no domain goes to every router of the partition. Pure like
// Router: the same records in the same order give the same decisions.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "router/router.h"

namespace signpost::router {

class DomainRouters {
 public:
  // Makes the router of `domain` at its first record in the partition; kNotFound when the
  // domain is not routed here (the record is then refused, nothing changes).
  using Factory = std::function<absl::StatusOr<std::unique_ptr<Router>>(const std::string&)>;

  explicit DomainRouters(Factory factory) : factory_(std::move(factory)) {}

  // Applies `event`, read at `offset`: to its domain's router, or to every router when it is a
  // Tick without a domain (each sees it with its own domain, so decision ids stay per domain).
  // `event` is left as it came. Decisions are appended to `out`; Applied() then names the
  // domains that applied it. Errors: the factory's, or a router's kInternal.
  [[nodiscard]] absl::Status Apply(v1::Envelope& event, Offset offset, DecisionBuffer& out);

  // Router::Prefetch by the router of `event`'s domain, if it has one yet.
  void Prefetch(const v1::Envelope& event) const {
    if (Router* router = Find(event.domain())) {
      router->Prefetch(event);
    }
  }

  // The domains (with their routers) the last Apply reached, in id order.
  struct Touched {
    const std::string* domain;
    Router* router;
  };
  [[nodiscard]] const std::vector<Touched>& Applied() const { return applied_; }

  // Installs a router restored from storage.
  void Put(const std::string& domain, std::unique_ptr<Router> router);
  [[nodiscard]] Router* Find(std::string_view domain) const;
  // Every router, by domain id.
  [[nodiscard]] const std::map<std::string, std::unique_ptr<Router>, std::less<>>& all() const {
    return routers_;
  }
  void Clear() { routers_.clear(); }

 private:
  Factory factory_;
  std::map<std::string, std::unique_ptr<Router>, std::less<>> routers_;
  std::vector<Touched> applied_;
};

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "router/domain_routers.h"

#include "router/base/status_macros.h"

namespace signpost::router {

absl::Status DomainRouters::Apply(v1::Envelope& event, Offset offset, DecisionBuffer& out) {
  applied_.clear();
  if (event.domain().empty() && event.has_tick()) {
    for (auto& [domain, router] : routers_) {
      event.set_domain(domain);
      const absl::StatusOr<ApplyResult> r = router->Apply(event, offset, out);
      event.clear_domain();
      SIGNPOST_RETURN_IF_ERROR(r.status());
      if (*r == ApplyResult::kApplied) {
        applied_.push_back({&domain, router.get()});
      }
    }
    return absl::OkStatus();
  }
  auto it = routers_.find(event.domain());
  if (it == routers_.end()) {
    SIGNPOST_ASSIGN_OR_RETURN(std::unique_ptr<Router> made, factory_(event.domain()));
    it = routers_.emplace(event.domain(), std::move(made)).first;
  }
  SIGNPOST_ASSIGN_OR_RETURN(const ApplyResult r, it->second->Apply(event, offset, out));
  if (r == ApplyResult::kApplied) {
    applied_.push_back({&it->first, it->second.get()});
  }
  return absl::OkStatus();
}

void DomainRouters::Put(const std::string& domain, std::unique_ptr<Router> router) {
  routers_[domain] = std::move(router);
}

Router* DomainRouters::Find(std::string_view domain) const {
  auto it = routers_.find(domain);
  return it == routers_.end() ? nullptr : it->second.get();
}

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/store_driver.h"

#include "absl/strings/str_cat.h"
#include "router/base/status_macros.h"

namespace signpost::testing {

absl::StatusOr<std::unique_ptr<router::Router>> OpenRouter(storage::PartitionStore& store,
                                                           const char* rules_yaml) {
  SIGNPOST_ASSIGN_OR_RETURN(std::optional<v1::RouterSnapshot> state, store.LoadRouterState());
  if (state.has_value()) {
    return router::Router::Restore(*state, store.Clients());
  }
  SIGNPOST_ASSIGN_OR_RETURN(auto rules, router::LoadRules(rules_yaml, "test-rules"));
  return std::make_unique<router::Router>(std::move(rules), store.Clients());
}

absl::Status Drive(router::Router& router, storage::PartitionStore& store,
                   const std::vector<v1::Envelope>& stream, std::size_t to, std::size_t batch,
                   const std::function<void(std::int64_t)>& committed) {
  router::DecisionBuffer out;
  router::RouterChanges changes;
  std::size_t in_batch = 0;
  for (std::size_t i = static_cast<std::size_t>(store.AppliedOffset().Value() + 1); i < to; ++i) {
    auto applied = router.Apply(stream[i], Offset(static_cast<std::int64_t>(i)), out);
    SIGNPOST_RETURN_IF_ERROR(applied.status());
    out.Clear();
    if (++in_batch == batch || i + 1 == to) {
      router.TakeChanges(changes);
      SIGNPOST_RETURN_IF_ERROR(store.Commit(&changes, router.LastApplied()));
      in_batch = 0;
      if (committed) {
        committed(store.AppliedOffset().Value());
      }
    }
  }
  return absl::OkStatus();
}

Fingerprints Replay(const std::vector<v1::Envelope>& stream, std::size_t count,
                    const char* rules_yaml) {
  router::InMemoryClientStore clients;
  router::Router router(*router::LoadRules(rules_yaml, "test-rules"), clients);
  router::DecisionBuffer out;
  for (std::size_t i = 0; i < count; ++i) {
    static_cast<void>(router.Apply(stream[i], Offset(static_cast<std::int64_t>(i)), out));
    out.Clear();
  }
  return {router.Snapshot().SerializeAsString(), clients.Fingerprint()};
}

absl::StatusOr<Fingerprints> Stored(storage::PartitionStore& store) {
  Fingerprints f;
  SIGNPOST_ASSIGN_OR_RETURN(std::optional<v1::RouterSnapshot> state, store.LoadRouterState());
  if (state.has_value()) {
    f.router = state->SerializeAsString();
  }
  SIGNPOST_ASSIGN_OR_RETURN(auto dump, store.DumpForTest());
  for (const auto& [key, value] : dump["clients"]) {
    absl::StrAppend(&f.clients, key, "\n", value, "\n");
  }
  for (const auto& [key, value] : dump["referrals"]) {
    absl::StrAppend(&f.clients, key, "=", value, "\n");
  }
  return f;
}

}  // namespace signpost::testing

// SPDX-License-Identifier: Apache-2.0
// Drives the routing core over a PartitionStore the way the service does (apply a batch, commit
// state and offset together), and computes what a clean in-memory replay would hold, so tests
// can compare the two exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "router/router.h"
#include "storage/partition_store.h"

namespace signpost::testing {

// The router for `store`: restored from its stored state, or new with `rules_yaml`.
[[nodiscard]] absl::StatusOr<std::unique_ptr<router::Router>> OpenRouter(
    storage::PartitionStore& store, const char* rules_yaml);

// Applies stream[store offset + 1, to) committing every `batch` events (and at the end);
// `committed`, if given, is called with the stored offset after each commit.
[[nodiscard]] absl::Status Drive(router::Router& router, storage::PartitionStore& store,
                                 const std::vector<v1::Envelope>& stream, std::size_t to,
                                 std::size_t batch,
                                 const std::function<void(std::int64_t)>& committed = nullptr);

struct Fingerprints {
  std::string router;   // serialized RouterSnapshot
  std::string clients;  // InMemoryClientStore::Fingerprint() format
};

// A clean replay of stream[0, count) in memory.
[[nodiscard]] Fingerprints Replay(const std::vector<v1::Envelope>& stream, std::size_t count,
                                  const char* rules_yaml);

// What `store` holds, in the same form.
[[nodiscard]] absl::StatusOr<Fingerprints> Stored(storage::PartitionStore& store);

}  // namespace signpost::testing

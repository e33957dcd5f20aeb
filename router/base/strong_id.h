// SPDX-License-Identifier: Apache-2.0
// StrongId wraps a primitive so that a PodId can never be passed where a ReferralId is expected.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <utility>

namespace signpost {

// `Tag` is an empty struct used only for its type. Copyable, comparable, hashable through
// AbslHashValue; no thread-safety concerns beyond those of T.
template <typename T, typename Tag>
class StrongId {
 public:
  StrongId() = default;
  explicit StrongId(T value) : value_(std::move(value)) {}

  [[nodiscard]] const T& Value() const { return value_; }
  friend auto operator<=>(const StrongId&, const StrongId&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const StrongId& id) {
    return H::combine(std::move(h), id.value_);
  }

 private:
  T value_{};
};

// A Kafka offset; -1 means "nothing applied yet".
using Offset = StrongId<std::int64_t, struct OffsetTag>;

}  // namespace signpost

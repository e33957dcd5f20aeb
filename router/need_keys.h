// SPDX-License-Identifier: Apache-2.0
// The open needs by (referral id, need code). A bulk import keeps millions of needs open, and a
// string key per need (referral id, separator, need code: past the short-string size) cost a heap
// allocation per need and a cache miss on every probe. Here each need takes a fixed 16-byte slot
// keyed by a 64-bit hash of the pair; a hit is confirmed against the need itself, and the rare
// pair whose hash another pair already holds goes to a string-keyed overflow table, so a hash
// collision can never confuse two needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"

namespace signpost::router {

class NeedKeys {
 public:
  // Whether the need `id` is the one for the pair being looked up.
  using IsPair = absl::FunctionRef<bool(std::uint64_t id)>;
  using Hasher = std::uint64_t (*)(std::string_view referral_id, std::string_view need_code);

  NeedKeys() = default;
  // For tests: a weak hash makes collisions, and so the overflow path, common.
  explicit NeedKeys(Hasher hash) : hash_(hash) {}

  [[nodiscard]] std::optional<std::uint64_t> Find(std::string_view referral_id,
                                                  std::string_view need_code, IsPair is_pair) const;
  // Adds the pair for `id`; false (and nothing changes) if the pair is indexed already.
  bool Insert(std::string_view referral_id, std::string_view need_code, std::uint64_t id,
              IsPair is_pair);
  // Removes the pair if it is indexed for `id`.
  void Erase(std::string_view referral_id, std::string_view need_code, std::uint64_t id);
  void clear();
  // Starts loading the memory a Find or Insert of the pair will touch.
  void Prefetch(std::string_view referral_id, std::string_view need_code) const {
    by_hash_.prefetch(hash_(referral_id, need_code));
  }
  [[nodiscard]] std::size_t size() const { return by_hash_.size() + overflow_.size(); }
  [[nodiscard]] std::size_t overflow_size() const { return overflow_.size(); }

  static std::uint64_t DefaultHash(std::string_view referral_id, std::string_view need_code);

 private:
  static std::string OverflowKey(std::string_view referral_id, std::string_view need_code);

  Hasher hash_ = &DefaultHash;
  absl::flat_hash_map<std::uint64_t, std::uint64_t> by_hash_;  // hash of the pair -> need id
  absl::flat_hash_map<std::string, std::uint64_t> overflow_;   // pairs whose hash was taken
};

}  // namespace signpost::router

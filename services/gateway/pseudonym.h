// SPDX-License-Identifier: Apache-2.0
// Keyed hashing of identifiers (BLAKE2b with a 32-byte secret key, libsodium): the same NHS
// number always gives the same client reference under one key, and without the key nobody can
// go back or test a guess. The NHS number never leaves the gateway in clear.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace signpost::services::gateway {

class Pseudonymiser {
 public:
  // `hex_key`: 64 hex digits (32 bytes). kInvalidArgument otherwise.
  [[nodiscard]] static absl::StatusOr<Pseudonymiser> FromHex(std::string_view hex_key);

  // "c-" + 32 hex digits: a client reference from an identifier (system, value).
  [[nodiscard]] std::string ClientRef(std::string_view system, std::string_view value) const;
  // "r-" + 32 hex digits: a referral id from the referrer's own identifier of it.
  [[nodiscard]] std::string ReferralId(std::string_view system, std::string_view value) const;
  // "g-" + 32 hex digits: an event id from who sent it and their idempotency key.
  [[nodiscard]] std::string EventId(std::string_view integrator, std::string_view key) const;

 private:
  [[nodiscard]] std::string Hash(char tag, std::string_view a, std::string_view b) const;
  std::array<unsigned char, 32> key_{};
};

// Whether `digits` is a 10-digit NHS number with a valid modulus-11 check digit.
[[nodiscard]] bool ValidNhsNumber(std::string_view digits);

// 32 random bytes as hex, for a new key (`signpost-gateway --new-key`).
[[nodiscard]] std::string NewHexKey();
// SHA-256 of `token` as hex: how bearer tokens are stored in configuration.
[[nodiscard]] std::string TokenHash(std::string_view token);

}  // namespace signpost::services::gateway

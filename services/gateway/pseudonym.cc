// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/pseudonym.h"

#include <sodium.h>

#include <vector>

namespace signpost::services::gateway {
namespace {

std::string Hex(const unsigned char* bytes, std::size_t n) {
  std::string out(2 * n + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes, n);
  out.pop_back();
  return out;
}

}  // namespace

absl::StatusOr<Pseudonymiser> Pseudonymiser::FromHex(std::string_view hex_key) {
  if (sodium_init() < 0) {
    return absl::InternalError("libsodium failed to initialise");
  }
  Pseudonymiser p;
  std::size_t n = 0;
  if (hex_key.size() != 64 ||
      sodium_hex2bin(p.key_.data(), p.key_.size(), hex_key.data(), hex_key.size(), nullptr, &n,
                     nullptr) != 0 ||
      n != p.key_.size()) {
    return absl::InvalidArgumentError("pseudonym key: must be 64 hex digits (32 bytes)");
  }
  return p;
}

std::string Pseudonymiser::Hash(char tag, std::string_view a, std::string_view b) const {
  crypto_generichash_state state;
  crypto_generichash_init(&state, key_.data(), key_.size(), 16);
  const unsigned char sep = 0x1f;
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&tag), 1);
  crypto_generichash_update(&state, &sep, 1);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(a.data()), a.size());
  crypto_generichash_update(&state, &sep, 1);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(b.data()), b.size());
  unsigned char out[16];
  crypto_generichash_final(&state, out, sizeof out);
  return std::string{tag, '-'} + Hex(out, sizeof out);
}

std::string Pseudonymiser::ClientRef(std::string_view system, std::string_view value) const {
  return Hash('c', system, value);
}

std::string Pseudonymiser::ReferralId(std::string_view system, std::string_view value) const {
  return Hash('r', system, value);
}

std::string Pseudonymiser::EventId(std::string_view integrator, std::string_view key) const {
  return Hash('g', integrator, key);
}

bool ValidNhsNumber(std::string_view digits) {
  if (digits.size() != 10) {
    return false;
  }
  int sum = 0;
  for (int i = 0; i < 10; ++i) {
    if (digits[i] < '0' || digits[i] > '9') {
      return false;
    }
    if (i < 9) {
      sum += (digits[i] - '0') * (10 - i);
    }
  }
  int check = 11 - sum % 11;
  if (check == 11) {
    check = 0;
  }
  return check != 10 && check == digits[9] - '0';
}

std::string NewHexKey() {
  if (sodium_init() < 0) {
    return {};
  }
  unsigned char key[32];
  randombytes_buf(key, sizeof key);
  return Hex(key, sizeof key);
}

std::string TokenHash(std::string_view token) {
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(out, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return Hex(out, sizeof out);
}

}  // namespace signpost::services::gateway

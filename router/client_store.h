// SPDX-License-Identifier: Apache-2.0
// The router's view of per-client state: one record per client and an index from referral id to
// client. storage/ backs it with RocksDB (a write-through cache); InMemoryClientStore serves
// tests, benches and replay tools.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "router/client_state.h"

namespace signpost::router {

// Not thread-safe: one router thread owns it. References returned stay valid until the next
// call that erases the same key.
class ClientStore {
 public:
  virtual ~ClientStore() = default;

  // The record of `client_ref`, or nullptr if none.
  [[nodiscard]] virtual const ClientState* Find(std::string_view client_ref) = 0;
  // The record of `client_ref` for update, created empty (with client_ref set) if missing.
  // The store treats it as changed.
  [[nodiscard]] virtual ClientState& Mutable(std::string_view client_ref) = 0;
  virtual void Erase(std::string_view client_ref) = 0;

  // The client that submitted `referral_id`, or nullptr if the id is new.
  [[nodiscard]] virtual const std::string* FindReferral(std::string_view referral_id) = 0;
  virtual void PutReferral(std::string_view referral_id, std::string_view client_ref) = 0;
  // FindReferral and, if the id is new, PutReferral, in one lookup: the client that submitted
  // `referral_id` before (nothing changes then), or nullptr after recording it as `client_ref`'s.
  [[nodiscard]] virtual const std::string* ClaimReferral(std::string_view referral_id,
                                                         std::string_view client_ref) = 0;
  virtual void EraseReferral(std::string_view referral_id) = 0;

  // A hint that `client_ref`'s record and `referral_id` will be looked up soon: a store may
  // start loading the memory they live in (the lookups then find it in cache). Changes nothing.
  virtual void PrefetchRecord(std::string_view client_ref, std::string_view referral_id) {
    static_cast<void>(client_ref);
    static_cast<void>(referral_id);
  }
};

class InMemoryClientStore final : public ClientStore {
 public:
  const ClientState* Find(std::string_view client_ref) override;
  ClientState& Mutable(std::string_view client_ref) override;
  void Erase(std::string_view client_ref) override;
  const std::string* FindReferral(std::string_view referral_id) override;
  void PutReferral(std::string_view referral_id, std::string_view client_ref) override;
  const std::string* ClaimReferral(std::string_view referral_id,
                                   std::string_view client_ref) override;
  void EraseReferral(std::string_view referral_id) override;
  void PrefetchRecord(std::string_view client_ref, std::string_view referral_id) override;

  // Sizes the tables for the expected counts, so growth does not rehash on the hot path.
  void Reserve(std::size_t clients, std::size_t referrals) {
    clients_.reserve(clients);
    referrals_.reserve(referrals);
  }
  [[nodiscard]] std::size_t ClientCount() const { return clients_.size(); }
  [[nodiscard]] std::size_t ReferralCount() const { return referrals_.size(); }
  // Every record and index entry, serialized in key order: equal stores give equal strings.
  [[nodiscard]] std::string Fingerprint() const;

 private:
  absl::node_hash_map<std::string, ClientState> clients_;
  absl::flat_hash_map<std::string, std::string> referrals_;
};

}  // namespace signpost::router

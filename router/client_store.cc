// SPDX-License-Identifier: Apache-2.0
#include "router/client_store.h"

#include <algorithm>
#include <vector>

namespace signpost::router {
namespace {
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }
}  // namespace

void InMemoryClientStore::PrefetchRecord(std::string_view client_ref,
                                         std::string_view referral_id) {
  clients_.prefetch(AbslView(client_ref));
  referrals_.prefetch(AbslView(referral_id));
}

const ClientState* InMemoryClientStore::Find(std::string_view client_ref) {
  auto it = clients_.find(AbslView(client_ref));
  return it == clients_.end() ? nullptr : &it->second;
}

ClientState& InMemoryClientStore::Mutable(std::string_view client_ref) {
  auto [it, inserted] = clients_.try_emplace(AbslView(client_ref));
  if (inserted) {
    it->second.set_client_ref(client_ref);
  }
  return it->second;
}

void InMemoryClientStore::Erase(std::string_view client_ref) {
  clients_.erase(AbslView(client_ref));
}

const std::string* InMemoryClientStore::FindReferral(std::string_view referral_id) {
  auto it = referrals_.find(AbslView(referral_id));
  return it == referrals_.end() ? nullptr : &it->second;
}

void InMemoryClientStore::PutReferral(std::string_view referral_id, std::string_view client_ref) {
  referrals_.insert_or_assign(std::string(referral_id), std::string(client_ref));
}

const std::string* InMemoryClientStore::ClaimReferral(std::string_view referral_id,
                                                      std::string_view client_ref) {
  auto [it, inserted] = referrals_.try_emplace(AbslView(referral_id));
  if (!inserted) {
    return &it->second;
  }
  it->second.assign(client_ref.data(), client_ref.size());
  return nullptr;
}

void InMemoryClientStore::EraseReferral(std::string_view referral_id) {
  referrals_.erase(AbslView(referral_id));
}

std::string InMemoryClientStore::Fingerprint() const {
  std::vector<const std::string*> keys;
  keys.reserve(clients_.size());
  for (const auto& [key, record] : clients_) {
    keys.push_back(&key);
  }
  std::sort(keys.begin(), keys.end(), [](auto* a, auto* b) { return *a < *b; });
  std::string out;
  WireWriter::Buffer bytes;
  for (const std::string* key : keys) {
    out += *key;
    out += '\n';
    bytes.Clear();
    clients_.at(*key).SerializeTo(bytes);
    out += bytes.view();
    out += '\n';
  }
  std::vector<std::pair<std::string, std::string>> refs(referrals_.begin(), referrals_.end());
  std::sort(refs.begin(), refs.end());
  for (const auto& [referral, client] : refs) {
    out += referral;
    out += '=';
    out += client;
    out += '\n';
  }
  return out;
}

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "router/symbol.h"

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace signpost::router {
namespace {

struct SymbolTable {
  absl::Mutex mutex;
  absl::node_hash_set<std::string> texts ABSL_GUARDED_BY(mutex);  // nodes never move
};

absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

Symbol Symbol::Of(std::string_view text) {
  if (text.empty()) {
    return Symbol();
  }
  // Each thread remembers the symbols it has seen, so reading stored records (on the routing
  // thread, an entry at a time) takes the lock only for a text new to the thread. Keys view the
  // interned strings, which are never freed.
  thread_local absl::flat_hash_map<absl::string_view, const std::string*> seen;
  if (auto hit = seen.find(AbslView(text)); hit != seen.end()) {
    return Symbol(hit->second);
  }
  static SymbolTable* const table = new SymbolTable;  // never destroyed: symbols outlive all
  const std::string* interned;
  {
    absl::MutexLock lock(&table->mutex);
    interned = &*table->texts.emplace(text).first;
  }
  seen.emplace(*interned, interned);
  return Symbol(interned);
}

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "router/symbol.h"

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
  static SymbolTable* const table = new SymbolTable;  // never destroyed: symbols outlive all
  absl::MutexLock lock(&table->mutex);
  auto it = table->texts.find(AbslView(text));
  if (it == table->texts.end()) {
    it = table->texts.emplace(text).first;
  }
  return Symbol(&*it);
}

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
// A set of keys taken smallest first, for keys that nearly always arrive in order: timers set at
// now plus a fixed timeout. A key that belongs among the last few of a sorted FIFO goes there
// (usually at the back, in O(1)); the few that arrive further out of order go to a B-tree. The
// smallest key is the smaller of the two fronts, so keys come out in exactly the order one sorted
// set of them all would give, and a key already held is not added twice.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <iterator>

#include "absl/container/btree_set.h"

namespace signpost::router {

template <typename Key>
class SortedQueue {
 public:
  static constexpr int kNearBack = 8;

  [[nodiscard]] bool empty() const { return fifo_.empty() && out_of_order_.empty(); }
  [[nodiscard]] std::size_t size() const { return fifo_.size() + out_of_order_.size(); }

  // Adds `key` unless it is held already.
  void Insert(const Key& key) {
    if (!out_of_order_.empty() && out_of_order_.contains(key)) {
      return;
    }
    // Its place in the FIFO if that is among the last few: timers set in one event share a time
    // and are ordered by need id, which a drain visits out of order.
    auto it = fifo_.end();
    for (int n = 0; n < kNearBack; ++n) {
      if (it == fifo_.begin() || *std::prev(it) < key) {
        fifo_.insert(it, key);
        return;
      }
      --it;
      if (!(key < *it)) {
        return;  // held already
      }
    }
    if (!std::binary_search(fifo_.begin(), it, key)) {
      out_of_order_.insert(key);
    }
  }
  // The smallest key; the queue must not be empty.
  [[nodiscard]] const Key& front() const {
    return FifoFirst() ? fifo_.front() : *out_of_order_.begin();
  }
  void pop_front() {
    if (FifoFirst()) {
      fifo_.pop_front();
    } else {
      out_of_order_.erase(out_of_order_.begin());
    }
  }
  void clear() {
    fifo_.clear();
    out_of_order_.clear();
  }

 private:
  [[nodiscard]] bool FifoFirst() const {
    return !fifo_.empty() && (out_of_order_.empty() || fifo_.front() < *out_of_order_.begin());
  }

  std::deque<Key> fifo_;               // sorted; keys join near its back
  absl::btree_set<Key> out_of_order_;  // disjoint from fifo_
};

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
// The storage boundary: RocksDB's Status becomes absl::Status here and nowhere else.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "rocksdb/status.h"

namespace signpost::storage {

// Maps a RocksDB status onto the canonical codes used everywhere else:
//   ok -> OK; Corruption -> kDataLoss; Busy/TryAgain/TimedOut -> kUnavailable;
//   NoSpace (IOError with the no-space subcode) -> kResourceExhausted; NotFound -> kNotFound;
//   InvalidArgument -> kInvalidArgument; anything else -> kInternal.
// `what` names the operation and prefixes the message.
[[nodiscard]] absl::Status ToStatus(const rocksdb::Status& s, std::string_view what);

}  // namespace signpost::storage

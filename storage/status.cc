// SPDX-License-Identifier: Apache-2.0
#include "storage/status.h"

#include <string>

namespace signpost::storage {

absl::Status ToStatus(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) {
    return absl::OkStatus();
  }
  std::string message(what);
  message += ": ";
  message += s.ToString();
  if (s.IsCorruption()) {
    return absl::DataLossError(message);
  }
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(message);
  }
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) {
    return absl::UnavailableError(message);
  }
  if (s.IsNotFound()) {
    return absl::NotFoundError(message);
  }
  if (s.IsInvalidArgument()) {
    return absl::InvalidArgumentError(message);
  }
  return absl::InternalError(message);
}

}  // namespace signpost::storage

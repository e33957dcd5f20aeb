// SPDX-License-Identifier: Apache-2.0
#include "storage/status.h"

#include "gtest/gtest.h"

namespace signpost::storage {
namespace {

TEST(StorageStatusTest, MapsRocksDbCodesOntoCanonicalCodes) {
  struct Case {
    rocksdb::Status in;
    absl::StatusCode want;
  };
  const Case cases[] = {
      {rocksdb::Status::OK(), absl::StatusCode::kOk},
      {rocksdb::Status::Corruption("bad block"), absl::StatusCode::kDataLoss},
      {rocksdb::Status::NoSpace("disk full"), absl::StatusCode::kResourceExhausted},
      {rocksdb::Status::Busy(), absl::StatusCode::kUnavailable},
      {rocksdb::Status::TryAgain(), absl::StatusCode::kUnavailable},
      {rocksdb::Status::TimedOut(), absl::StatusCode::kUnavailable},
      {rocksdb::Status::NotFound(), absl::StatusCode::kNotFound},
      {rocksdb::Status::InvalidArgument("x"), absl::StatusCode::kInvalidArgument},
      {rocksdb::Status::IOError("read"), absl::StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in.ToString());
    EXPECT_EQ(ToStatus(c.in, "op").code(), c.want);
  }
}

TEST(StorageStatusTest, MessageNamesTheOperation) {
  absl::Status s = ToStatus(rocksdb::Status::Corruption("bad block"), "commit state");
  EXPECT_EQ(s.message(), "commit state: Corruption: bad block");
}

}  // namespace
}  // namespace signpost::storage

// SPDX-License-Identifier: Apache-2.0
// Error propagation for absl::Status / absl::StatusOr (Debian's abseil predates its own macros).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SIGNPOST_INTERNAL_CONCAT_IMPL(a, b) a##b
#define SIGNPOST_INTERNAL_CONCAT(a, b) SIGNPOST_INTERNAL_CONCAT_IMPL(a, b)

// Returns from the enclosing function if `expr` yields a non-OK absl::Status.
#define SIGNPOST_RETURN_IF_ERROR(expr)                                    \
  do {                                                                    \
    if (absl::Status signpost_status_ = (expr); !signpost_status_.ok()) { \
      return signpost_status_;                                            \
    }                                                                     \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status on error, else moves the value
// into `lhs` (which may be a declaration such as `auto x`).
#define SIGNPOST_ASSIGN_OR_RETURN(lhs, rexpr) \
  SIGNPOST_INTERNAL_ASSIGN_OR_RETURN(SIGNPOST_INTERNAL_CONCAT(signpost_statusor_, __LINE__), lhs, rexpr)

#define SIGNPOST_INTERNAL_ASSIGN_OR_RETURN(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                       \
  if (!statusor.ok()) {                                          \
    return std::move(statusor).status();                         \
  }                                                              \
  lhs = std::move(statusor).value()

// SPDX-License-Identifier: Apache-2.0
// Reading the text files an operator names (rules, integrators): a file that cannot be read is
// reported as such, with the reason, instead of being parsed as empty.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace signpost::services {

// The whole file. kInvalidArgument "<path>: cannot read (<reason>)" when it cannot be opened or
// read (missing, a directory, no permission).
[[nodiscard]] absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace signpost::services

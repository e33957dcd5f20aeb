// SPDX-License-Identifier: Apache-2.0
#include "services/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace signpost::services {

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  auto cannot_read = [&path](int error) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot read (", std::strerror(error), ")"));
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return cannot_read(EISDIR);  // opens, but reads as nothing
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return cannot_read(errno != 0 ? errno : ENOENT);
  }
  std::ostringstream text;
  text << in.rdbuf();  // an empty file inserts nothing: not an error
  if (in.bad()) {
    return cannot_read(errno != 0 ? errno : EIO);
  }
  return text.str();
}

}  // namespace signpost::services

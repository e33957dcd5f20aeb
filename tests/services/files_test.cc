// SPDX-License-Identifier: Apache-2.0
#include "services/files.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace signpost::services {
namespace {

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

TEST(ReadTextFileTest, ReadsTheWholeFile) {
  const std::string path = TempPath("files_test_rules.yaml");
  const std::string text = std::string("version: x\n") + std::string(100'000, 'y') + "\n";
  std::ofstream(path, std::ios::binary) << text;
  absl::StatusOr<std::string> read = ReadTextFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, text);
}

TEST(ReadTextFileTest, AnEmptyFileIsEmptyText) {
  const std::string path = TempPath("files_test_empty.yaml");
  std::ofstream(path).flush();
  absl::StatusOr<std::string> read = ReadTextFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

// A rules file that is not there used to reach the YAML loader as empty text, and the router
// stopped with "<path>:0:0: : must be a mapping".
TEST(ReadTextFileTest, AMissingFileSaysSoWithItsPath) {
  const std::string path = TempPath("files_test_no_such_file.yaml");
  std::filesystem::remove(path);
  absl::StatusOr<std::string> read = ReadTextFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(read.status().message(), path + ": cannot read (No such file or directory)");
}

TEST(ReadTextFileTest, ADirectoryIsNotReadAsEmpty) {
  const std::string path = TempPath("files_test_dir");
  std::filesystem::create_directories(path);
  absl::StatusOr<std::string> read = ReadTextFile(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().message(), path + ": cannot read (Is a directory)");
}

}  // namespace
}  // namespace signpost::services

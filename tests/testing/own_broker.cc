// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/own_broker.h"

#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace signpost::testing {

OwnBroker::OwnBroker() {
  char pattern[] = "/tmp/signpost-broker-XXXXXX";
  root_ = mkdtemp(pattern);
  dir_ = root_ + "/broker";
}

OwnBroker::~OwnBroker() {
  if (const pid_t pid = Pid(); pid > 0) {
    kill(pid, SIGCONT);
  }
  Run("clean");
  std::filesystem::remove_all(root_);
}

std::string OwnBroker::Run(const std::string& verb) const {
  const std::string command = absl::StrCat("SIGNPOST_BROKER_DIR=", dir_, " ", SIGNPOST_SOURCE_DIR,
                                           "/scripts/kafka ", verb, " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[256];
  while (pipe != nullptr && fgets(buffer, sizeof buffer, pipe) != nullptr) {
    out += buffer;
  }
  const int rc = pipe != nullptr ? pclose(pipe) : -1;
  EXPECT_EQ(rc, 0) << "scripts/kafka " << verb;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

pid_t OwnBroker::Pid() const {
  std::ifstream in(dir_ + "/pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

}  // namespace signpost::testing

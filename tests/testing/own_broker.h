// SPDX-License-Identifier: Apache-2.0
// A broker of the test's own (scripts/kafka with its own state directory), for tests that kill,
// freeze and restart it without disturbing the shared test broker. Stopped and removed however
// the test ends.
#pragma once

#include <sys/types.h>

#include <string>

namespace signpost::testing {

class OwnBroker {
 public:
  OwnBroker();   // makes a fresh directory under /tmp; the broker is not started yet
  ~OwnBroker();  // resumes it if frozen, stops it, removes its files
  OwnBroker(const OwnBroker&) = delete;
  OwnBroker& operator=(const OwnBroker&) = delete;

  // Runs `scripts/kafka <verb>` on this broker; returns its output (start prints the bootstrap
  // address). Fails the current test when the script fails.
  std::string Run(const std::string& verb) const;
  // The broker's process id, or 0.
  [[nodiscard]] pid_t Pid() const;
  [[nodiscard]] const std::string& root() const { return root_; }

 private:
  std::string root_;
  std::string dir_;
};

}  // namespace signpost::testing

// SPDX-License-Identifier: Apache-2.0
// Interned strings for the few names routing state repeats in every client record.
#pragma once

#include <string>
#include <string_view>

namespace signpost::router {

// An interned string: one copy per distinct text for the life of the process, compared and
// copied as a pointer. For need codes, pod ids and escalation targets, which come from the rules
// and are few; never for free text from events. Of() is thread-safe; a Symbol may be read on any
// thread it was handed to.
class Symbol {
 public:
  Symbol() = default;
  [[nodiscard]] static Symbol Of(std::string_view text);

  [[nodiscard]] std::string_view view() const {
    return text_ == nullptr ? std::string_view() : std::string_view(*text_);
  }
  [[nodiscard]] bool empty() const { return text_ == nullptr; }
  friend bool operator==(Symbol a, Symbol b) { return a.text_ == b.text_; }

 private:
  explicit Symbol(const std::string* text) : text_(text) {}
  const std::string* text_ = nullptr;  // nullptr for ""
};

}  // namespace signpost::router

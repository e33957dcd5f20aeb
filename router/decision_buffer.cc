// SPDX-License-Identifier: Apache-2.0
#include "router/decision_buffer.h"

#include <algorithm>

namespace signpost::router {

void WireWriter::Grow(std::size_t n) {
  out_->bytes.resize(std::max({out_->size + n, 2 * out_->bytes.size(), std::size_t{4096}}));
}

void WireWriter::Message(int field, const google::protobuf::MessageLite& message) {
  const std::size_t size = message.ByteSizeLong();
  char* p = Put(Put(Room(20 + size), Key(field, kLengthDelimited)), size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(p));
  Done(p + size);
}

std::size_t WireWriter::CloseLong(std::size_t open, std::size_t length) {
  char prefix[10];
  const auto size = static_cast<std::size_t>(Put(prefix, length) - prefix);
  Room(size - 1);
  char* content = out_->bytes.data() + open + 1;
  std::memmove(content + size - 1, content, length);
  std::memcpy(out_->bytes.data() + open, prefix, size);
  out_->size += size - 1;
  return size - 1;
}

const v1::Envelope& DecisionBuffer::operator[](std::size_t i) const {
  if (parsed_.size() <= i) {
    parsed_.resize(i + 1);
    is_parsed_.resize(i + 1, false);
  }
  if (parsed_[i] == nullptr) {
    parsed_[i] = std::make_unique<v1::Envelope>();
  }
  if (!is_parsed_[i]) {
    const std::string_view b = bytes(i);
    // Cannot fail on what WireWriter wrote; if it did, the message is left empty and every
    // test that reads it fails.
    if (!parsed_[i]->ParseFromArray(b.data(), static_cast<int>(b.size()))) {
      parsed_[i]->Clear();
    }
    is_parsed_[i] = true;
  }
  return *parsed_[i];
}

void DecisionBuffer::Clear() {
  bytes_.Clear();
  entries_.clear();
  is_parsed_.assign(is_parsed_.size(), false);
}

WireWriter DecisionBuffer::Begin(v1::Envelope::BodyCase body) {
  Entry& e = entries_.emplace_back();
  e.begin = bytes_.size;
  e.key_begin = e.begin;
  e.referral_begin = e.begin;
  e.need_begin = e.begin;
  e.body = body;
  return WireWriter(bytes_);
}

void DecisionBuffer::End() {
  Entry& e = entries_.back();
  const std::size_t moved = WireWriter(bytes_).Close(e.body_open);
  for (std::size_t* at : {&e.key_begin, &e.referral_begin, &e.need_begin}) {
    if (*at > e.body_open) {
      *at += moved;
    }
  }
  e.end = bytes_.size;
}

}  // namespace signpost::router

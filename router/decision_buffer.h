// SPDX-License-Identifier: Apache-2.0
// Decisions as the router makes them: each one a serialized v1::Envelope, encoded field by field
// from routing state into one growing buffer. No message is built per decision; the bytes are
// the ones SerializeToString would give for the same message, ready to publish.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/attributes.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/message_lite.h"
#include "router/base/short_bytes.h"
#include "signpost/v1/envelope.pb.h"

namespace signpost::router {

// Appends protobuf wire format to a Buffer, in the canonical form: write fields in field-number
// order and close nested messages in reverse order of opening, and the bytes equal what
// SerializeToString gives for the same message. As proto3 does, zero and empty scalars are left
// out; an opened message is always written, even when empty.
class WireWriter {
 public:
  // Bytes written so far: the first `size` bytes of `bytes`, which is kept larger.
  struct Buffer {
    std::vector<char> bytes;
    std::size_t size = 0;
    void Clear() { size = 0; }
    [[nodiscard]] std::string_view view() const { return {bytes.data(), size}; }
  };

  explicit WireWriter(Buffer& out) : out_(&out) {}

  // uint32, uint64 and bool fields.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Varint(int field, std::uint64_t value) {
    if (value != 0) {
      char* p = Room(20);
      p = Put(p, Key(field, kVarint));
      Done(Put(p, value));
    }
  }
  // int32, int64 and enum fields: negative values take ten bytes, as protobuf writes them.
  ABSL_ATTRIBUTE_ALWAYS_INLINE void Signed(int field, std::int64_t value) {
    Varint(field, static_cast<std::uint64_t>(value));
  }
  // string and bytes fields; the value may come in two parts. Returns where the value starts in
  // the buffer (or would have).
  ABSL_ATTRIBUTE_ALWAYS_INLINE std::size_t String(int field, std::string_view value,
                                                std::string_view more = {}) {
    const std::size_t size = value.size() + more.size();
    if (size == 0) {
      return out_->size;
    }
    char* p = Room(20 + size);
    p = Put(Put(p, Key(field, kLengthDelimited)), size);
    CopyBytes(p, value.data(), value.size());
    if (!more.empty()) {
      std::memcpy(p + value.size(), more.data(), more.size());
    }
    Done(p + size);
    return out_->size - size;
  }
  // One element of a repeated string field: written even when empty, as protobuf does.
  void RepeatedString(int field, std::string_view value) {
    char* p = Room(20 + value.size());
    p = Put(Put(p, Key(field, kLengthDelimited)), value.size());
    CopyBytes(p, value.data(), value.size());
    Done(p + value.size());
  }
  // Bytes already in wire format. Returns where they start in the buffer.
  std::size_t Raw(std::string_view bytes) {
    char* p = Room(bytes.size());
    CopyBytes(p, bytes.data(), bytes.size());
    Done(p + bytes.size());
    return out_->size - bytes.size();
  }
  // Overwrites one byte already written, at position `at`.
  void Set(std::size_t at, char byte) { out_->bytes[at] = byte; }
  // A nested message given as a message.
  void Message(int field, const google::protobuf::MessageLite& message);

  // Starts a nested message (or a packed repeated field) and returns what Close() needs.
  [[nodiscard]] std::size_t Open(int field) {
    char* p = Put(Room(11), Key(field, kLengthDelimited));
    *p = '\0';  // the length, one byte until Close() knows better
    Done(p + 1);
    return out_->size - 1;
  }
  // Writes the length of the message opened at `open`. Returns how many bytes its content moved
  // to make room for a length over one byte (0 for content under 128 bytes).
  std::size_t Close(std::size_t open) {
    const std::size_t length = out_->size - open - 1;
    if (length < 0x80) {
      out_->bytes[open] = static_cast<char>(length);
      return 0;
    }
    return CloseLong(open, length);
  }

  // A bare varint, for packed repeated fields.
  void RawVarint(std::uint64_t value) { Done(Put(Room(10), value)); }

 private:
  enum WireType : std::uint32_t { kVarint = 0, kLengthDelimited = 2 };
  static std::uint64_t Key(int field, WireType type) {
    return (static_cast<std::uint64_t>(field) << 3) | type;
  }
  // Makes room for `n` more bytes; returns where they go.
  char* Room(std::size_t n) {
    if (out_->size + n > out_->bytes.size()) {
      Grow(n);
    }
    return out_->bytes.data() + out_->size;
  }
  void Grow(std::size_t n);
  // Writes a varint at `p`, in room already made; returns the byte after it.
  static char* Put(char* p, std::uint64_t value) {
    auto* at = reinterpret_cast<std::uint8_t*>(p);
    return reinterpret_cast<char*>(
        google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(value, at));
  }
  // Ends a write at `p`.
  void Done(char* p) { out_->size = static_cast<std::size_t>(p - out_->bytes.data()); }
  std::size_t CloseLong(std::size_t open, std::size_t length);

  Buffer* out_;
};

// The decisions of one or more Apply calls, in order. Bytes and keys stay valid until the next
// Clear(); so do the messages operator[] returns.
class DecisionBuffer {
 public:
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] v1::Envelope::BodyCase body(std::size_t i) const { return entries_[i].body; }
  // The decision as a serialized v1::Envelope.
  [[nodiscard]] std::string_view bytes(std::size_t i) const {
    return bytes_.view().substr(entries_[i].begin, entries_[i].end - entries_[i].begin);
  }
  // Its key on signpost.decisions.v1: the pod it concerns (Routed, Released), else the need
  // (Queued, Escalated), else the routing domain.
  [[nodiscard]] std::string_view key(std::size_t i) const {
    return bytes_.view().substr(entries_[i].key_begin, entries_[i].key_size);
  }
  // The referral and need it concerns (Routed, Queued, Escalated, Released); empty otherwise.
  [[nodiscard]] std::string_view referral_id(std::size_t i) const {
    return bytes_.view().substr(entries_[i].referral_begin, entries_[i].referral_size);
  }
  [[nodiscard]] std::string_view need_code(std::size_t i) const {
    return bytes_.view().substr(entries_[i].need_begin, entries_[i].need_size);
  }
  // The decision's reason enum: Released, Queued, Escalated and Rejected carry one; 0 otherwise.
  [[nodiscard]] int reason(std::size_t i) const { return entries_[i].reason; }
  // The decision parsed, on first use (a copy; for tests and rare decisions).
  [[nodiscard]] const v1::Envelope& operator[](std::size_t i) const;

  void Clear();

  // For writers (Router): Begin() starts a decision and returns the writer for all of its fields,
  // header first; the decision is complete at End(). SetKey() and SetNeed() take positions that
  // String() returned, of fields written before any nested message of the body.
  [[nodiscard]] WireWriter Begin(v1::Envelope::BodyCase body);
  void SetKey(std::size_t begin, std::size_t size) {
    entries_.back().key_begin = begin;
    entries_.back().key_size = size;
  }
  void SetNeed(std::size_t referral_begin, std::size_t referral_size, std::size_t need_begin,
               std::size_t need_size) {
    Entry& e = entries_.back();
    e.referral_begin = referral_begin;
    e.referral_size = referral_size;
    e.need_begin = need_begin;
    e.need_size = need_size;
  }
  void SetReason(int reason) { entries_.back().reason = reason; }
  // Opens the body after the header's fields (all of them written).
  void OpenBody() { entries_.back().body_open = WireWriter(bytes_).Open(entries_.back().body); }
  void End();

 private:
  struct Entry {
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t key_begin = 0;
    std::size_t key_size = 0;
    std::size_t referral_begin = 0;
    std::size_t referral_size = 0;
    std::size_t need_begin = 0;
    std::size_t need_size = 0;
    std::size_t body_open = 0;
    int reason = 0;
    v1::Envelope::BodyCase body = v1::Envelope::BODY_NOT_SET;
  };

  WireWriter::Buffer bytes_;
  std::vector<Entry> entries_;
  mutable std::vector<std::unique_ptr<v1::Envelope>> parsed_;  // kept across Clear() for reuse
  mutable std::vector<bool> is_parsed_;
};

}  // namespace signpost::router

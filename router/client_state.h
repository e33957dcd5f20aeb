// SPDX-License-Identifier: Apache-2.0
// One client's record as the router keeps it in memory. It holds what v1::ClientRecord holds, in
// a form that is cheap to update on the hot path: need codes, pod ids and escalation targets are
// interned Symbols, and each open need and history entry names its referral by its position in
// the client's referral ids instead of a copy. Updating a record allocates nothing once its
// vectors have grown (a protobuf record allocated a message and three strings per entry).
//
// It reads and writes v1::ClientRecord's wire format: SerializeTo() gives the bytes protobuf's
// SerializeToString gives for ToRecord(), so the stored form did not change. Unknown fields of a
// stored record are not kept.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "router/decision_buffer.h"
#include "router/symbol.h"
#include "signpost/v1/state.pb.h"

namespace signpost::router {

class ClientState {
 public:
  struct Open {
    std::uint32_t referral = 0;  // ReferralId(referral)
    Symbol need;
    Symbol pod;  // empty while queued
    v1::NeedState state = v1::NEED_STATE_UNSPECIFIED;
    std::int64_t since_ms = 0;
  };
  struct History {
    std::uint32_t referral = 0;
    v1::HistoryKind kind = v1::HISTORY_KIND_UNSPECIFIED;
    v1::Outcome outcome = v1::OUTCOME_UNSPECIFIED;  // COMPLETED only
    Symbol need;
    Symbol pod;
    Symbol escalation_target;  // ESCALATED only
    std::int64_t at_ms = 0;
    std::int64_t time_to_resolve_ms = 0;  // COMPLETED only
    std::vector<std::string> remedies;    // COMPLETED only
  };
  struct Continuity {
    Symbol need;
    Symbol pod;
  };
  // Most clients have a referral or two, at most one open need and a short history: their lists
  // live inside the record (one allocation, read in one place) until they outgrow these sizes.
  using ReferralIds = absl::InlinedVector<std::string, 2>;
  using OpenList = absl::InlinedVector<Open, 1>;
  using HistoryList = absl::InlinedVector<History, 1>;
  using ContinuityList = absl::InlinedVector<Continuity, 1>;

  // Scalars, named as v1::ClientRecord names them.
  [[nodiscard]] const std::string& client_ref() const { return client_ref_; }
  void set_client_ref(std::string_view ref) { client_ref_.assign(ref.data(), ref.size()); }
  [[nodiscard]] std::int64_t first_contact_ms() const { return first_contact_ms_; }
  void set_first_contact_ms(std::int64_t ms) { first_contact_ms_ = ms; }
  [[nodiscard]] std::int64_t last_contact_ms() const { return last_contact_ms_; }
  void set_last_contact_ms(std::int64_t ms) { last_contact_ms_ = ms; }
  [[nodiscard]] std::uint32_t referral_count() const { return referral_count_; }
  void set_referral_count(std::uint32_t n) { referral_count_ = n; }
  [[nodiscard]] std::uint32_t duplicate_count() const { return duplicate_count_; }
  void set_duplicate_count(std::uint32_t n) { duplicate_count_ = n; }

  // Every referral of the client, oldest first (field referral_ids).
  [[nodiscard]] std::span<const std::string> referral_ids() const { return referral_ids_; }
  // Appends a referral id; returns its position.
  std::uint32_t AddReferral(std::string_view referral_id);
  // The position of `referral_id`, newest first; if the client has no such referral it is kept
  // aside (not in referral_ids()) so an entry can still name it.
  [[nodiscard]] std::uint32_t ReferralPosition(std::string_view referral_id);
  [[nodiscard]] std::string_view ReferralId(std::uint32_t position) const;

  [[nodiscard]] const OpenList& open() const { return open_; }
  [[nodiscard]] OpenList& mutable_open() { return open_; }
  [[nodiscard]] const ContinuityList& continuity() const { return continuity_; }
  [[nodiscard]] ContinuityList& mutable_continuity() { return continuity_; }

  // History, oldest first.
  [[nodiscard]] std::size_t history_size() const { return history_.size(); }
  [[nodiscard]] const History& history(std::size_t i) const {
    return history_[(history_head_ + i) % history_.size()];
  }
  // A new newest entry, cleared; when `max` are kept already the oldest makes room.
  History& AddHistory(std::size_t max);

  // Empties the record; its vectors keep their capacity.
  void Clear();

  // The wire format of v1::ClientRecord, canonical: equal to ToRecord().SerializeAsString().
  void SerializeTo(WireWriter::Buffer& out) const;
  // Replaces the content from v1::ClientRecord's wire format; false if it does not parse.
  [[nodiscard]] bool ParseFrom(std::string_view bytes);
  [[nodiscard]] v1::ClientRecord ToRecord() const;
  void Assign(const v1::ClientRecord& record);

 private:
  static constexpr std::uint32_t kAside = 1u << 31;  // position bit of referral ids kept aside

  std::string client_ref_;
  std::int64_t first_contact_ms_ = 0;
  std::int64_t last_contact_ms_ = 0;
  std::uint32_t referral_count_ = 0;
  std::uint32_t duplicate_count_ = 0;
  std::uint32_t history_head_ = 0;  // the oldest entry, once the history wrapped
  ReferralIds referral_ids_;
  std::vector<std::string> aside_;  // referral ids entries name that referral_ids_ lacks
  OpenList open_;
  HistoryList history_;  // a ring from history_head_
  ContinuityList continuity_;
};

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "router/client_state.h"

#include "router/base/short_bytes.h"

namespace signpost::router {

std::uint32_t ClientState::AddReferral(std::string_view referral_id) {
  referral_ids_.emplace_back(referral_id);
  return static_cast<std::uint32_t>(referral_ids_.size() - 1);
}

std::uint32_t ClientState::ReferralPosition(std::string_view referral_id) {
  for (std::size_t i = referral_ids_.size(); i-- > 0;) {
    if (EqualBytes(referral_ids_[i], referral_id)) {
      return static_cast<std::uint32_t>(i);
    }
  }
  for (std::size_t i = 0; i < aside_.size(); ++i) {
    if (aside_[i] == referral_id) {
      return static_cast<std::uint32_t>(i) | kAside;
    }
  }
  aside_.emplace_back(referral_id);
  return static_cast<std::uint32_t>(aside_.size() - 1) | kAside;
}

std::string_view ClientState::ReferralId(std::uint32_t position) const {
  return (position & kAside) != 0 ? aside_[position & ~kAside] : referral_ids_[position];
}

ClientState::History& ClientState::AddHistory(std::size_t max) {
  if (history_.size() < max) {
    return history_.emplace_back();
  }
  History& h = history_[history_head_];  // the oldest makes room
  history_head_ = static_cast<std::uint32_t>((history_head_ + 1) % history_.size());
  std::vector<std::string> remedies = std::move(h.remedies);
  remedies.clear();
  h = History();
  h.remedies = std::move(remedies);
  return h;
}

void ClientState::Clear() {
  client_ref_.clear();
  first_contact_ms_ = 0;
  last_contact_ms_ = 0;
  referral_count_ = 0;
  duplicate_count_ = 0;
  history_head_ = 0;
  referral_ids_.clear();
  aside_.clear();
  open_.clear();
  history_.clear();
  continuity_.clear();
}

void ClientState::SerializeTo(WireWriter::Buffer& out) const {
  WireWriter w(out);
  w.String(1, client_ref_);
  w.Signed(2, first_contact_ms_);
  w.Signed(3, last_contact_ms_);
  w.Varint(4, referral_count_);
  for (const Open& o : open_) {
    const std::size_t at = w.Open(5);
    w.String(1, ReferralId(o.referral));
    w.String(2, o.need.view());
    w.String(3, o.pod.view());
    w.Signed(4, o.state);
    w.Signed(5, o.since_ms);
    w.Close(at);
  }
  for (std::size_t i = 0; i < history_.size(); ++i) {
    const History& h = history(i);
    const std::size_t at = w.Open(6);
    w.String(1, ReferralId(h.referral));
    w.String(2, h.need.view());
    w.String(3, h.pod.view());
    w.Signed(4, h.kind);
    w.Signed(5, h.at_ms);
    w.Signed(6, h.outcome);
    for (const std::string& remedy : h.remedies) {
      w.RepeatedString(7, remedy);
    }
    w.Signed(8, h.time_to_resolve_ms);
    w.String(9, h.escalation_target.view());
    w.Close(at);
  }
  for (const Continuity& c : continuity_) {
    const std::size_t at = w.Open(7);
    w.String(1, c.need.view());
    w.String(2, c.pod.view());
    w.Close(at);
  }
  for (const std::string& id : referral_ids_) {
    w.RepeatedString(8, id);
  }
  w.Varint(9, duplicate_count_);
}

bool ClientState::ParseFrom(std::string_view bytes) {
  // One scratch message per thread, so parsing allocates only what the record itself needs.
  thread_local v1::ClientRecord record;
  if (!record.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return false;
  }
  Assign(record);
  return true;
}

void ClientState::Assign(const v1::ClientRecord& record) {
  Clear();
  client_ref_ = record.client_ref();
  first_contact_ms_ = record.first_contact_ms();
  last_contact_ms_ = record.last_contact_ms();
  referral_count_ = record.referral_count();
  duplicate_count_ = record.duplicate_count();
  referral_ids_.assign(record.referral_ids().begin(), record.referral_ids().end());
  open_.reserve(static_cast<std::size_t>(record.open_size()));
  for (const v1::ClientOpenNeed& o : record.open()) {
    open_.push_back({ReferralPosition(o.referral_id()), Symbol::Of(o.need_code()),
                     Symbol::Of(o.pod_id()), o.state(), o.since_ms()});
  }
  history_.reserve(static_cast<std::size_t>(record.history_size()));
  for (const v1::ClientHistoryEntry& e : record.history()) {
    History& h = history_.emplace_back();
    h.referral = ReferralPosition(e.referral_id());
    h.kind = e.kind();
    h.outcome = e.outcome();
    h.need = Symbol::Of(e.need_code());
    h.pod = Symbol::Of(e.pod_id());
    h.escalation_target = Symbol::Of(e.escalation_target());
    h.at_ms = e.at_ms();
    h.time_to_resolve_ms = e.time_to_resolve_ms();
    h.remedies.assign(e.remedies().begin(), e.remedies().end());
  }
  continuity_.reserve(static_cast<std::size_t>(record.continuity_size()));
  for (const v1::ContinuityEntry& c : record.continuity()) {
    continuity_.push_back({Symbol::Of(c.need_code()), Symbol::Of(c.pod_id())});
  }
}

v1::ClientRecord ClientState::ToRecord() const {
  v1::ClientRecord record;
  WireWriter::Buffer bytes;
  SerializeTo(bytes);
  // Cannot fail on what SerializeTo wrote; if it did, the record would be empty and every test
  // comparing it would fail.
  if (!record.ParseFromArray(bytes.bytes.data(), static_cast<int>(bytes.size))) {
    record.Clear();
  }
  return record;
}

}  // namespace signpost::router

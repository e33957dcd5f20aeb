// SPDX-License-Identifier: Apache-2.0
// The field checks every input event passes before it reaches the log, shared by the router's
// intake stage and the gateway so both refuse exactly the same things. Each check names the
// field (as a JSON Pointer into the event, e.g. "/needs/1/code") and the problem, never the
// value. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include "signpost/v1/pod_response.pb.h"
#include "signpost/v1/referral.pb.h"

namespace signpost::services {

struct FieldProblem {
  std::string field;    // JSON Pointer, e.g. "/needs/1/code"
  std::string problem;  // e.g. "must be 1-128 bytes"
  friend bool operator==(const FieldProblem&, const FieldProblem&) = default;
};

// Checks and normalises a referral in place: outward code upper case without spaces, need codes
// trimmed and lower case (unknown codes stay: the router sends them to triage). Appends one
// problem per bad field.
void CheckReferral(v1::ReferralSubmitted& referral, std::vector<FieldProblem>& problems);

// Checks a pod's answer (or a withdrawal); appends one problem per bad field.
void CheckPodResponse(const v1::PodResponse& response, std::vector<FieldProblem>& problems);

// "ba2 " -> "BA2". Outward codes are 2-4 characters: A9, A99, AA9, AA99, A9A, AA9A; an empty
// code is allowed (county-wide pods can still take it). False when `code` is not one.
[[nodiscard]] bool NormaliseOutward(std::string& code);

// Whether `id` is usable as a referral id, client ref or event id (1-128 bytes).
[[nodiscard]] bool ValidId(const std::string& id);

}  // namespace signpost::services

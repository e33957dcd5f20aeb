// SPDX-License-Identifier: Apache-2.0
// Signpost's JSON form of its events: protobuf's JSON mapping (proto field names or
// lowerCamelCase, enum names or numbers, 64-bit integers as numbers or strings, bytes as
// base64), read by walking the message descriptor so that every unknown or mistyped field is
// reported at once, each as a JSON Pointer, rather than only the first.
#pragma once

#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"
#include "services/checks.h"
#include "signpost/v1/pod_response.pb.h"
#include "signpost/v1/referral.pb.h"

namespace signpost::services::gateway {

// Fills `message` from `json`; appends a problem for every unknown field, wrong type, bad enum
// name, out-of-range number, or second member of a oneof. `pointer` is the JSON Pointer of `json`.
void JsonToMessage(const nlohmann::json& json, google::protobuf::Message& message,
                   const std::string& pointer, std::vector<FieldProblem>& problems);

// A referral from the JSON form, checked and normalised (CheckReferral). Problems are appended;
// the referral is usable only when none were.
void ReferralFromJson(const nlohmann::json& json, v1::ReferralSubmitted& referral,
                      std::vector<FieldProblem>& problems);

// A pod response from the JSON form, checked (CheckPodResponse).
void PodResponseFromJson(const nlohmann::json& json, v1::PodResponse& response,
                         std::vector<FieldProblem>& problems);

}  // namespace signpost::services::gateway

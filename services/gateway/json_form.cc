// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/json_form.h"

#include <sodium.h>

#include <cmath>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace signpost::services::gateway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using nlohmann::json;

// A JSON Pointer token: "~" -> "~0", "/" -> "~1".
std::string Token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const char* TypeName(const json& j) { return j.type_name(); }

// An integer from a JSON number (integral) or a decimal string, within [min, max].
bool Integer(const json& j, long double min, long double max, std::int64_t& signed_out,
             std::uint64_t& unsigned_out) {
  long double v = 0;
  if (j.is_number_integer() && !j.is_number_unsigned()) {
    v = static_cast<long double>(j.get<std::int64_t>());
  } else if (j.is_number_unsigned()) {
    v = static_cast<long double>(j.get<std::uint64_t>());
  } else if (j.is_number_float()) {
    const double d = j.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d) {
      return false;
    }
    v = d;
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    std::int64_t i = 0;
    std::uint64_t u = 0;
    if (absl::SimpleAtoi(s, &i)) {
      v = static_cast<long double>(i);
    } else if (absl::SimpleAtoi(s, &u)) {
      v = static_cast<long double>(u);
    } else {
      return false;
    }
  } else {
    return false;
  }
  if (v < min || v > max) {
    return false;
  }
  signed_out = static_cast<std::int64_t>(v);
  unsigned_out = static_cast<std::uint64_t>(v < 0 ? 0 : v);
  return true;
}

// Sets one (singular or repeated element) value of `field`; false with a problem on mismatch.
void SetValue(const json& j, Message& m, const FieldDescriptor* f, const std::string& pointer,
              std::vector<FieldProblem>& problems) {
  const Reflection* r = m.GetReflection();
  const bool rep = f->is_repeated();
  auto bad = [&](std::string problem) { problems.push_back({pointer, std::move(problem)}); };
  std::int64_t i = 0;
  std::uint64_t u = 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      if (!j.is_string()) {
        return bad(absl::StrCat("must be a string, not ", TypeName(j)));
      }
      std::string s = j.get<std::string>();
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        std::string bin(s.size(), '\0');
        std::size_t n = 0;
        if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), s.data(),
                              s.size(), nullptr, &n, nullptr,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
          return bad("must be base64");
        }
        bin.resize(n);
        s = std::move(bin);
      }
      rep ? r->AddString(&m, f, std::move(s)) : r->SetString(&m, f, std::move(s));
      return;
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const google::protobuf::EnumValueDescriptor* v = nullptr;
      if (j.is_string()) {
        v = f->enum_type()->FindValueByName(j.get<std::string>());
      } else if (Integer(j, std::numeric_limits<std::int32_t>::min(),
                         std::numeric_limits<std::int32_t>::max(), i, u)) {
        v = f->enum_type()->FindValueByNumber(static_cast<int>(i));
      }
      if (v == nullptr) {
        return bad(absl::StrCat("must be one of the ", f->enum_type()->name(), " names"));
      }
      rep ? r->AddEnum(&m, f, v) : r->SetEnum(&m, f, v);
      return;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      if (!j.is_boolean()) {
        return bad(absl::StrCat("must be true or false, not ", TypeName(j)));
      }
      rep ? r->AddBool(&m, f, j.get<bool>()) : r->SetBool(&m, f, j.get<bool>());
      return;
    case FieldDescriptor::CPPTYPE_INT32:
      if (!Integer(j, std::numeric_limits<std::int32_t>::min(),
                   std::numeric_limits<std::int32_t>::max(), i, u)) {
        return bad("must be a 32-bit integer");
      }
      rep ? r->AddInt32(&m, f, static_cast<std::int32_t>(i))
          : r->SetInt32(&m, f, static_cast<std::int32_t>(i));
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      if (!Integer(j, 0, std::numeric_limits<std::uint32_t>::max(), i, u)) {
        return bad("must be an unsigned 32-bit integer");
      }
      rep ? r->AddUInt32(&m, f, static_cast<std::uint32_t>(u))
          : r->SetUInt32(&m, f, static_cast<std::uint32_t>(u));
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      if (!Integer(j, -9.2e18L, 9.2e18L, i, u)) {
        return bad("must be a 64-bit integer");
      }
      rep ? r->AddInt64(&m, f, i) : r->SetInt64(&m, f, i);
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      if (!Integer(j, 0, 1.8e19L, i, u)) {
        return bad("must be an unsigned 64-bit integer");
      }
      rep ? r->AddUInt64(&m, f, u) : r->SetUInt64(&m, f, u);
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      if (!j.is_number()) {
        return bad(absl::StrCat("must be a number, not ", TypeName(j)));
      }
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        rep ? r->AddDouble(&m, f, j.get<double>()) : r->SetDouble(&m, f, j.get<double>());
      } else {
        rep ? r->AddFloat(&m, f, j.get<float>()) : r->SetFloat(&m, f, j.get<float>());
      }
      return;
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      if (!j.is_object()) {
        return bad(absl::StrCat("must be an object, not ", TypeName(j)));
      }
      Message* sub = rep ? r->AddMessage(&m, f) : r->MutableMessage(&m, f);
      JsonToMessage(j, *sub, pointer, problems);
      return;
    }
  }
}

// Adds the checks' problems about fields the JSON reading did not already report.
void AddUnreported(const std::vector<FieldProblem>& checked, std::vector<FieldProblem>& problems) {
  const std::size_t read = problems.size();
  for (const FieldProblem& p : checked) {
    bool reported = false;
    for (std::size_t i = 0; i < read && !reported; ++i) {
      reported = problems[i].field.rfind(p.field, 0) == 0;
    }
    if (!reported) {
      problems.push_back(p);
    }
  }
}

}  // namespace

void JsonToMessage(const json& j, Message& m, const std::string& pointer,
                   std::vector<FieldProblem>& problems) {
  if (!j.is_object()) {
    problems.push_back({pointer.empty() ? "/" : pointer,
                        absl::StrCat("must be an object, not ", TypeName(j))});
    return;
  }
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  for (const auto& [key, value] : j.items()) {
    const std::string at = absl::StrCat(pointer, "/", Token(key));
    const FieldDescriptor* f = d->FindFieldByName(key);
    if (f == nullptr) {
      for (int i = 0; i < d->field_count() && f == nullptr; ++i) {
        if (d->field(i)->json_name() == key) {
          f = d->field(i);
        }
      }
    }
    if (f == nullptr) {
      problems.push_back({at, "unknown field"});
      continue;
    }
    if (value.is_null()) {
      continue;  // null means "not set"
    }
    if (const google::protobuf::OneofDescriptor* o = f->containing_oneof();
        o != nullptr && m.GetReflection()->HasOneof(m, o)) {
      problems.push_back({at, absl::StrCat("only one of ", o->name(), " may be set")});
      continue;
    }
    if (f->is_repeated()) {
      if (!value.is_array()) {
        problems.push_back({at, absl::StrCat("must be an array, not ", TypeName(value))});
        continue;
      }
      for (std::size_t i = 0; i < value.size(); ++i) {
        SetValue(value[i], m, f, absl::StrCat(at, "/", i), problems);
      }
      continue;
    }
    SetValue(value, m, f, at, problems);
  }
}

namespace {

// Reads `m` from `j`, then runs the shared `check` and adds what it found about fields the
// reading did not already report.
template <class Message, class Check>
void ReadAndCheck(const json& j, Message& m, Check check, std::vector<FieldProblem>& problems) {
  JsonToMessage(j, m, "", problems);
  std::vector<FieldProblem> checked;
  check(m, checked);
  AddUnreported(checked, problems);
}

}  // namespace

void ReferralFromJson(const json& j, v1::ReferralSubmitted& referral,
                      std::vector<FieldProblem>& problems) {
  ReadAndCheck(j, referral, CheckReferral, problems);
}

void PodResponseFromJson(const json& j, v1::PodResponse& response,
                         std::vector<FieldProblem>& problems) {
  ReadAndCheck(j, response, CheckPodResponse, problems);
}

}  // namespace signpost::services::gateway

// SPDX-License-Identifier: Apache-2.0
#include "services/gateway/fhir.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/checks.h"
#include "yaml-cpp/yaml.h"

namespace signpost::services::gateway {
namespace {

using nlohmann::json;

constexpr std::string_view kNhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number";
constexpr std::string_view kOdsSystem = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr std::size_t kMaxText = 256;

std::string Key(std::string_view system, std::string_view code) {
  std::string key(system);
  key += '|';
  key += code;
  return key;
}

// Reads typed members of FHIR JSON, recording an issue for each one of the wrong type.
class Reader {
 public:
  explicit Reader(std::vector<FhirIssue>& issues) : issues_(issues) {}

  void Issue(std::string expression, std::string code, std::string diagnostics) {
    issues_.push_back({std::move(expression), std::move(code), std::move(diagnostics)});
  }

  // The member `key` of `object` when it is of the wanted type; nullptr when absent (an issue
  // when `required`) or of another type (always an issue).
  const json* Member(const json& object, const char* key, json::value_t type,
                     const std::string& path, bool required) {
    const std::string at = absl::StrCat(path, ".", key);
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) {
      if (required) {
        Issue(at, "required", "is required");
      }
      return nullptr;
    }
    const bool ok = type == json::value_t::number_integer ? it->is_number_integer()
                                                          : it->type() == type;
    if (!ok) {
      Issue(at, "structure",
            absl::StrCat("must be ", json(type).type_name(), ", not ", it->type_name()));
      return nullptr;
    }
    return &*it;
  }

  const json* Object(const json& o, const char* key, const std::string& path, bool required) {
    return Member(o, key, json::value_t::object, path, required);
  }
  const json* Array(const json& o, const char* key, const std::string& path, bool required) {
    return Member(o, key, json::value_t::array, path, required);
  }
  // A string member no longer than kMaxText; "" when absent or bad.
  std::string String(const json& o, const char* key, const std::string& path, bool required) {
    const json* s = Member(o, key, json::value_t::string, path, required);
    if (s == nullptr) {
      return {};
    }
    const std::string& v = s->get_ref<const std::string&>();
    if (v.size() > kMaxText) {
      Issue(absl::StrCat(path, ".", key), "too-long",
            absl::StrCat("is longer than ", kMaxText, " characters"));
      return {};
    }
    return v;
  }

 private:
  std::vector<FhirIssue>& issues_;
};

// A resource in the request, with the FHIRPath that names it.
struct Named {
  std::string name;  // fullUrl or "<type>/<id>"
  const json* resource = nullptr;
  std::string path;
};

// The Patient a reference points at: "#id" among the ServiceRequest's contained resources, or
// a Bundle entry by fullUrl or "Patient/<id>".
struct Resolver {
  const json* contained = nullptr;  // the ServiceRequest's contained array
  std::string contained_path;
  const std::vector<Named>* bundle = nullptr;

  Named Find(const std::string& reference) const {
    if (reference.size() > 1 && reference[0] == '#' && contained != nullptr) {
      for (std::size_t i = 0; i < contained->size(); ++i) {
        const json& r = (*contained)[i];
        if (r.is_object() && r.value("id", json()).is_string() &&
            r["id"].get<std::string>() == reference.substr(1)) {
          return {reference, &r, absl::StrCat(contained_path, "[", i, "]")};
        }
      }
      return {};
    }
    if (bundle != nullptr) {
      for (const Named& n : *bundle) {
        if (n.name == reference) {
          return n;
        }
      }
    }
    return {};
  }
};

bool IsPatient(const json* r) {
  return r != nullptr && r->is_object() && r->value("resourceType", json()).is_string() &&
         (*r)["resourceType"].get<std::string>() == "Patient";
}

// "BA2 3AB" -> "BA2"; "ba2" -> "BA2"; false when it is not a UK postcode or outward code.
bool OutwardOf(std::string postcode, std::string& outward) {
  std::string compact;
  for (char c : postcode) {
    if (c != ' ') compact.push_back(absl::ascii_toupper(static_cast<unsigned char>(c)));
  }
  if (compact.size() >= 5 && compact.size() <= 7) {
    const std::string inward = compact.substr(compact.size() - 3);
    if (!absl::ascii_isdigit(static_cast<unsigned char>(inward[0])) ||
        !absl::ascii_isalpha(static_cast<unsigned char>(inward[1])) ||
        !absl::ascii_isalpha(static_cast<unsigned char>(inward[2]))) {
      return false;
    }
    compact.resize(compact.size() - 3);
  }
  if (compact.empty() || !NormaliseOutward(compact)) {
    return false;
  }
  outward = compact;
  return true;
}

// "1948", "1948-07" or "1948-07-21" -> 1948.
bool BirthYear(const std::string& date, std::uint32_t& year) {
  if (date.size() != 4 && date.size() != 7 && date.size() != 10) {
    return false;
  }
  for (std::size_t i = 0; i < date.size(); ++i) {
    const bool dash = i == 4 || i == 7;
    if (dash ? date[i] != '-' : !absl::ascii_isdigit(static_cast<unsigned char>(date[i]))) {
      return false;
    }
  }
  year = static_cast<std::uint32_t>(std::stoi(date.substr(0, 4)));
  return true;
}

class ServiceRequestMapper {
 public:
  ServiceRequestMapper(const ConceptMap& concepts, const Pseudonymiser& pseudonymiser,
                       const Submitter& submitter, std::vector<FhirIssue>& issues)
      : concepts_(concepts), pseudonymiser_(pseudonymiser), submitter_(submitter),
        issues_(issues), read_(issues) {}

  FhirReferral Map(const json& sr, const std::string& path, Resolver resolver) {
    FhirReferral out;
    v1::ReferralSubmitted& r = out.referral;
    const std::size_t issues_before = issues_.size();

    const std::string status = read_.String(sr, "status", path, true);
    if (!status.empty() && status != "active") {
      read_.Issue(path + ".status", "value",
                  "must be active: only active ServiceRequests are new referrals");
    }
    const std::string intent = read_.String(sr, "intent", path, true);
    static constexpr std::string_view kIntents[] = {
        "proposal", "plan", "directive", "order", "original-order", "reflex-order",
        "filler-order", "instance-order", "option"};
    if (!intent.empty() &&
        std::find(std::begin(kIntents), std::end(kIntents), intent) == std::end(kIntents)) {
      read_.Issue(path + ".intent", "code-invalid", "is not a request-intent code");
    }

    // The referral id: the first identifier with a value.
    if (const json* ids = read_.Array(sr, "identifier", path, false)) {
      for (std::size_t i = 0; i < ids->size() && r.referral_id().empty(); ++i) {
        const std::string at = absl::StrCat(path, ".identifier[", i, "]");
        if (!(*ids)[i].is_object()) {
          read_.Issue(at, "structure", "must be an object");
          continue;
        }
        const std::string system = read_.String((*ids)[i], "system", at, false);
        const std::string value = read_.String((*ids)[i], "value", at, false);
        if (!value.empty()) {
          r.set_referral_id(pseudonymiser_.ReferralId(system, value));
        }
      }
    }

    const std::string priority = read_.String(sr, "priority", path, false);
    if (priority.empty() || priority == "routine") {
      r.set_urgency(v1::URGENCY_ROUTINE);
    } else if (priority == "urgent") {
      r.set_urgency(v1::URGENCY_SOON);
    } else if (priority == "asap") {
      r.set_urgency(v1::URGENCY_URGENT);
    } else if (priority == "stat") {
      r.set_urgency(v1::URGENCY_EMERGENCY);
    } else {
      read_.Issue(path + ".priority", "code-invalid", "must be routine, urgent, asap or stat");
    }

    // Needs: code and category name the service, reasonCode the need.
    std::vector<std::string> needs;
    bool triage = false;
    MapConcepts(sr, "code", path, false, needs, triage, out.unmapped_codes, r);
    MapConcepts(sr, "category", path, true, needs, triage, out.unmapped_codes, r);
    MapConcepts(sr, "reasonCode", path, true, needs, triage, out.unmapped_codes, r);
    if (needs.empty() || triage) {
      needs.emplace_back();  // a blank need goes to triage: no wrong front door
    }
    for (const std::string& n : needs) {
      r.add_needs()->set_code(n);
    }

    // The patient.
    const json* subject = read_.Object(sr, "subject", path, true);
    std::string subject_ref;
    if (subject != nullptr) {
      subject_ref = read_.String(*subject, "reference", path + ".subject", true);
      if (!subject_ref.empty()) {
        const Named patient = resolver.Find(subject_ref);
        if (!IsPatient(patient.resource)) {
          read_.Issue(path + ".subject", "not-found",
                      "must reference a Patient contained in the ServiceRequest or in the Bundle");
        } else {
          MapPatient(*patient.resource, patient.path, r);
        }
      }
    }

    // Who referred: the patient themselves, or the integrator's organisation.
    r.set_source(submitter_.source);
    r.set_source_org(submitter_.source_org);
    if (const json* requester = read_.Object(sr, "requester", path, false)) {
      const std::string at = path + ".requester";
      const std::string ref = read_.String(*requester, "reference", at, false);
      if (!ref.empty() && ref == subject_ref) {
        r.set_source(v1::SOURCE_SELF);
      }
      if (const json* id = read_.Object(*requester, "identifier", at, false)) {
        if (read_.String(*id, "system", at + ".identifier", false) == kOdsSystem) {
          r.set_source_org(read_.String(*id, "value", at + ".identifier", false));
        }
      }
    }
    for (v1::ConsentScope c : submitter_.consent) {
      r.add_consent(c);
    }
    r.set_integrator_id(submitter_.integrator_id);

    if (issues_.size() == issues_before) {
      // What the mapping produced must pass the same checks as every other input.
      if (r.referral_id().empty()) {
        r.set_referral_id("pending");  // filled in by the caller
      }
      std::vector<FieldProblem> problems;
      CheckReferral(r, problems);
      for (const FieldProblem& p : problems) {
        read_.Issue(path, "value", absl::StrCat("maps to an invalid referral: ", p.field, " ",
                                                p.problem));
      }
      if (r.referral_id() == "pending") {
        r.clear_referral_id();
      }
    }
    return out;
  }

 private:
  void MapConcepts(const json& sr, const char* key, const std::string& path, bool repeated,
                   std::vector<std::string>& needs, bool& triage, int& unmapped,
                   v1::ReferralSubmitted& r) {
    std::vector<std::pair<const json*, std::string>> concepts;
    if (repeated) {
      if (const json* list = read_.Array(sr, key, path, false)) {
        for (std::size_t i = 0; i < list->size(); ++i) {
          concepts.emplace_back(&(*list)[i], absl::StrCat(path, ".", key, "[", i, "]"));
        }
      }
    } else if (const json* one = read_.Object(sr, key, path, false)) {
      concepts.emplace_back(one, absl::StrCat(path, ".", key));
    }
    for (const auto& [cc, at] : concepts) {
      if (!cc->is_object()) {
        read_.Issue(at, "structure", "must be a CodeableConcept object");
        continue;
      }
      bool mapped = false;
      bool coded = false;
      if (const json* codings = read_.Array(*cc, "coding", at, false)) {
        for (std::size_t i = 0; i < codings->size(); ++i) {
          const std::string cat = absl::StrCat(at, ".coding[", i, "]");
          if (!(*codings)[i].is_object()) {
            read_.Issue(cat, "structure", "must be a Coding object");
            continue;
          }
          const std::string system = read_.String((*codings)[i], "system", cat, false);
          const std::string code = read_.String((*codings)[i], "code", cat, false);
          if (code.empty()) {
            continue;
          }
          coded = true;
          const std::optional<ConceptMap::Target> t = concepts_.Find(system, code);
          if (!t.has_value()) {
            continue;
          }
          mapped = true;
          if (!t->need.empty()) {
            if (std::find(needs.begin(), needs.end(), t->need) == needs.end()) {
              needs.push_back(t->need);
            }
          } else if (std::find(r.flags().begin(), r.flags().end(), t->flag) == r.flags().end()) {
            r.add_flags(t->flag);
          }
        }
      }
      if (!mapped && (coded || cc->contains("text"))) {
        ++unmapped;
        // A reason nobody has mapped is still a need: it goes to triage. An unmapped service
        // code or category adds nothing when the reasons say what is needed.
        if (std::string_view(key) == "reasonCode") {
          triage = true;
        }
      }
    }
  }

  void MapPatient(const json& p, const std::string& path, v1::ReferralSubmitted& r) {
    // The client reference: a keyed hash of the NHS number, else of the first identifier.
    const json* ids = read_.Array(p, "identifier", path, true);
    if (ids != nullptr) {
      std::string system, value;
      for (std::size_t i = 0; i < ids->size(); ++i) {
        const std::string at = absl::StrCat(path, ".identifier[", i, "]");
        if (!(*ids)[i].is_object()) {
          read_.Issue(at, "structure", "must be an Identifier object");
          continue;
        }
        const std::string s = read_.String((*ids)[i], "system", at, false);
        std::string v = read_.String((*ids)[i], "value", at, false);
        if (s == kNhsNumberSystem) {
          v.erase(std::remove(v.begin(), v.end(), ' '), v.end());
          if (!ValidNhsNumber(v)) {
            read_.Issue(at + ".value", "value", "is not a valid NHS number (10 digits, mod 11)");
            continue;
          }
          system = s;
          value = v;
          break;
        }
        if (value.empty() && !v.empty()) {
          system = s;
          value = v;
        }
      }
      if (!value.empty()) {
        r.set_client_ref(pseudonymiser_.ClientRef(system, value));
      } else if (ids->empty()) {
        read_.Issue(path + ".identifier", "required",
                    "needs an NHS number or another identifier: the client reference is a keyed "
                    "hash of it");
      }
    }

    const std::string birth = read_.String(p, "birthDate", path, false);
    if (!birth.empty()) {
      std::uint32_t year = 0;
      if (BirthYear(birth, year)) {
        r.set_birth_year(year);
      } else {
        read_.Issue(path + ".birthDate", "value", "must be YYYY, YYYY-MM or YYYY-MM-DD");
      }
    }

    if (const json* addresses = read_.Array(p, "address", path, false)) {
      std::size_t chosen = addresses->size();
      for (std::size_t i = 0; i < addresses->size(); ++i) {
        const json& a = (*addresses)[i];
        if (!a.is_object()) {
          read_.Issue(absl::StrCat(path, ".address[", i, "]"), "structure",
                      "must be an Address object");
          continue;
        }
        if (chosen == addresses->size() ||
            (a.value("use", json()).is_string() && a["use"].get<std::string>() == "home")) {
          chosen = i;
        }
      }
      if (chosen < addresses->size()) {
        const std::string at = absl::StrCat(path, ".address[", chosen, "]");
        const std::string postcode = read_.String((*addresses)[chosen], "postalCode", at, false);
        std::string outward;
        if (!postcode.empty()) {
          if (OutwardOf(postcode, outward)) {
            r.set_postcode_outward(outward);
          } else {
            read_.Issue(at + ".postalCode", "value", "is not a UK postcode");
          }
        }
      }
    }

    if (const json* comms = read_.Array(p, "communication", path, false)) {
      for (std::size_t i = 0; i < comms->size(); ++i) {
        const std::string at = absl::StrCat(path, ".communication[", i, "]");
        const json& c = (*comms)[i];
        if (!c.is_object()) {
          read_.Issue(at, "structure", "must be an object");
          continue;
        }
        const json* language = read_.Object(c, "language", at, true);
        const json* codings =
            language != nullptr ? read_.Array(*language, "coding", at + ".language", false)
                                : nullptr;
        if (codings == nullptr || codings->empty() || !(*codings)[0].is_object()) {
          continue;
        }
        std::string code = read_.String((*codings)[0], "code", at + ".language.coding[0]", false);
        absl::AsciiStrToLower(&code);
        const bool preferred = c.value("preferred", json()).is_boolean() && c["preferred"].get<bool>();
        if (!code.empty() && (r.language().empty() || preferred)) {
          r.set_language(code.substr(0, 35));
        }
      }
    }
  }

  const ConceptMap& concepts_;
  const Pseudonymiser& pseudonymiser_;
  const Submitter& submitter_;
  std::vector<FhirIssue>& issues_;
  Reader read_;
};

}  // namespace

absl::StatusOr<ConceptMap> ConceptMap::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<ConceptMap> ConceptMap::Parse(const std::string& yaml, const std::string& name) {
  ConceptMap map;
  try {
    const YAML::Node root = YAML::Load(yaml);
    const YAML::Node list = root["concepts"];
    if (!list || !list.IsSequence()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": concepts: must be a list"));
    }
    for (const YAML::Node& c : list) {
      auto fail = [&](const std::string& problem) {
        return absl::InvalidArgumentError(
            absl::StrCat(name, ":", c.Mark().line + 1, ": concepts: ", problem));
      };
      if (!c.IsMap() || !c["system"] || !c["code"]) {
        return fail("each entry needs system and code");
      }
      const std::string system = c["system"].as<std::string>();
      const std::string code = c["code"].as<std::string>();
      Target t;
      if (c["need"]) {
        t.need = c["need"].as<std::string>();
      } else if (c["flag"]) {
        const std::string flag =
            "CLIENT_FLAG_" + absl::AsciiStrToUpper(c["flag"].as<std::string>());
        v1::ClientFlag f;
        if (!v1::ClientFlag_Parse(flag, &f) || f == v1::CLIENT_FLAG_UNSPECIFIED) {
          return fail(absl::StrCat("flag: unknown flag ", c["flag"].as<std::string>()));
        }
        t.flag = f;
      } else if (code == "*") {
        map.identity_[system] = true;
        continue;
      } else {
        return fail("each entry needs a need or a flag");
      }
      if (!map.targets_.emplace(Key(system, code), t).second) {
        return fail(absl::StrCat("(", system, ", ", code, ") is mapped twice"));
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  return map;
}

std::optional<ConceptMap::Target> ConceptMap::Find(std::string_view system,
                                                   std::string_view code) const {
  if (auto it = targets_.find(Key(system, code)); it != targets_.end()) {
    return it->second;
  }
  if (identity_.contains(std::string(system))) {
    std::string need(code);
    absl::AsciiStrToLower(&need);
    return Target{std::move(need)};
  }
  return std::nullopt;
}

FhirResult MapFhir(const json& doc, const ConceptMap& concepts, const Pseudonymiser& pseudonymiser,
                   const Submitter& submitter) {
  FhirResult result;
  Reader read(result.issues);
  if (!doc.is_object()) {
    read.Issue("", "structure", "the body must be a FHIR resource (a JSON object)");
    return result;
  }
  const std::string type = read.String(doc, "resourceType", "", true);
  ServiceRequestMapper mapper(concepts, pseudonymiser, submitter, result.issues);
  if (type == "ServiceRequest") {
    Resolver resolver;
    resolver.contained = read.Array(doc, "contained", "ServiceRequest", false);
    resolver.contained_path = "ServiceRequest.contained";
    result.referrals.push_back(mapper.Map(doc, "ServiceRequest", resolver));
  } else if (type == "Bundle") {
    result.bundle = true;
    const json* entries = read.Array(doc, "entry", "Bundle", true);
    if (entries == nullptr) {
      return result;
    }
    std::vector<Named> names;
    std::vector<std::pair<std::size_t, const json*>> requests;
    for (std::size_t i = 0; i < entries->size(); ++i) {
      const std::string at = absl::StrCat("Bundle.entry[", i, "]");
      const json& e = (*entries)[i];
      if (!e.is_object()) {
        read.Issue(at, "structure", "must be an object");
        continue;
      }
      const json* resource = read.Object(e, "resource", at, true);
      if (resource == nullptr) {
        continue;
      }
      const std::string rtype = read.String(*resource, "resourceType", at + ".resource", true);
      if (const std::string url = read.String(e, "fullUrl", at, false); !url.empty()) {
        names.push_back({url, resource, at + ".resource"});
      }
      if (const std::string id = read.String(*resource, "id", at + ".resource", false);
          !id.empty() && !rtype.empty()) {
        names.push_back({absl::StrCat(rtype, "/", id), resource, at + ".resource"});
      }
      if (rtype == "ServiceRequest") {
        requests.emplace_back(i, resource);
      }
    }
    if (requests.empty()) {
      read.Issue("Bundle.entry", "required", "holds no ServiceRequest");
    } else if (requests.size() > kMaxServiceRequestsPerBundle) {
      read.Issue("Bundle.entry", "too-costly",
                 absl::StrCat("holds more than ", kMaxServiceRequestsPerBundle,
                              " ServiceRequests; split it"));
    } else {
      for (const auto& [i, sr] : requests) {
        const std::string at = absl::StrCat("Bundle.entry[", i, "].resource");
        Resolver resolver;
        resolver.bundle = &names;
        resolver.contained = read.Array(*sr, "contained", at, false);
        resolver.contained_path = at + ".contained";
        result.referrals.push_back(mapper.Map(*sr, at, resolver));
      }
    }
  } else if (!type.empty()) {
    read.Issue("resourceType", "not-supported", "must be ServiceRequest or Bundle");
  }
  return result;
}

json OperationOutcome(const std::vector<FhirIssue>& issues) {
  json out = {{"resourceType", "OperationOutcome"}, {"issue", json::array()}};
  for (const FhirIssue& i : issues) {
    json issue = {{"severity", "error"}, {"code", i.code}, {"diagnostics", i.diagnostics}};
    if (!i.expression.empty()) {
      issue["expression"] = json::array({i.expression});
    }
    out["issue"].push_back(std::move(issue));
  }
  return out;
}

}  // namespace signpost::services::gateway

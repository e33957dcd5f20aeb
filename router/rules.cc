// SPDX-License-Identifier: Apache-2.0
#include "router/rules.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/base/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace signpost::router {
namespace {

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr std::pair<std::string_view, v1::ClientFlag> kFlags[] = {
    {"shielding", v1::CLIENT_FLAG_SHIELDING},
    {"safeguarding", v1::CLIENT_FLAG_SAFEGUARDING},
    {"digitally-excluded", v1::CLIENT_FLAG_DIGITALLY_EXCLUDED},
    {"lives-alone", v1::CLIENT_FLAG_LIVES_ALONE},
    {"carer", v1::CLIENT_FLAG_CARER},
    {"recent-discharge", v1::CLIENT_FLAG_RECENT_DISCHARGE},
    {"complex", v1::CLIENT_FLAG_COMPLEX},
    {"interpreter-needed", v1::CLIENT_FLAG_INTERPRETER_NEEDED},
};
constexpr std::pair<std::string_view, v1::ConsentScope> kConsents[] = {
    {"share-with-pods", v1::CONSENT_SCOPE_SHARE_WITH_PODS},
    {"volunteer-contact", v1::CONSENT_SCOPE_VOLUNTEER_CONTACT},
    {"follow-up", v1::CONSENT_SCOPE_FOLLOW_UP},
    {"research", v1::CONSENT_SCOPE_RESEARCH},
};
constexpr std::pair<std::string_view, std::uint32_t> kScopes[] = {
    {"client_ref", kScopeClientRef}, {"postcode_outward", kScopePostcode},
    {"lsoa", kScopeLsoa},            {"birth_year", kScopeBirthYear},
    {"flags", kScopeFlags},          {"language", kScopeLanguage},
    {"payload", kScopePayload},
};
constexpr std::string_view kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr std::pair<std::string_view, v1::PodStatus> kStatuses[] = {
    {"open", v1::POD_STATUS_OPEN},
    {"paused", v1::POD_STATUS_PAUSED},
    {"closed", v1::POD_STATUS_CLOSED},
};

template <typename T, size_t N>
const T* Lookup(const std::pair<std::string_view, T> (&table)[N], std::string_view name) {
  for (const auto& [key, value] : table) {
    if (key == name) {
      return &value;
    }
  }
  return nullptr;
}

template <typename T, size_t N>
std::string Names(const std::pair<std::string_view, T> (&table)[N]) {
  std::vector<std::string> names;
  for (const auto& entry : table) {
    names.emplace_back(entry.first);
  }
  return absl::StrJoin(names, ", ");
}

bool IsIdentifier(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// Reads YAML nodes into values; every error names the source, line, column and field path.
class Reader {
 public:
  explicit Reader(std::string_view source) : source_(source) {}

  absl::Status Error(const YAML::Node& node, std::string_view path, std::string_view problem) const {
    const YAML::Mark mark = node.Mark();
    return absl::InvalidArgumentError(absl::StrCat(AbslView(source_), ":", mark.line + 1, ":",
                                                   mark.column + 1, ": ", AbslView(path), ": ",
                                                   AbslView(problem)));
  }

  absl::Status CheckKeys(const YAML::Node& map, std::string_view path,
                         std::initializer_list<std::string_view> allowed) const {
    if (!map.IsMap()) {
      return Error(map, path, "must be a mapping");
    }
    for (const auto& entry : map) {
      const std::string& key = entry.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string names;
        for (std::string_view name : allowed) {
          absl::StrAppend(&names, names.empty() ? "" : ", ", AbslView(name));
        }
        return Error(entry.first, Join(path, key), absl::StrCat("unknown key (allowed: ", names, ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<YAML::Node> Required(const YAML::Node& map, std::string_view path,
                                      const char* key) const {
    YAML::Node child = map[key];
    if (!child.IsDefined() || child.IsNull()) {
      return Error(map, Join(path, key), "is required");
    }
    return child;
  }

  absl::StatusOr<std::string> String(const YAML::Node& node, std::string_view path) const {
    if (!node.IsScalar()) {
      return Error(node, path, "must be a string");
    }
    return node.Scalar();
  }

  absl::StatusOr<std::string> Identifier(const YAML::Node& node, std::string_view path) const {
    SIGNPOST_ASSIGN_OR_RETURN(std::string s, String(node, path));
    if (!IsIdentifier(s)) {
      return Error(node, path, "must be 1-64 characters of a-z, 0-9, '-' or '_'");
    }
    return s;
  }

  absl::StatusOr<std::uint32_t> Uint(const YAML::Node& node, std::string_view path) const {
    std::uint32_t value = 0;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value)) {
      return Error(node, path, "must be a non-negative integer");
    }
    return value;
  }

  absl::StatusOr<std::int64_t> Duration(const YAML::Node& node, std::string_view path) const {
    if (!node.IsScalar()) {
      return Error(node, path, "must be a duration such as 90s, 30m, 4h or 2d");
    }
    absl::StatusOr<std::int64_t> ms = ParseDuration(node.Scalar());
    if (!ms.ok()) {
      return Error(node, path, std::string(ms.status().message()));
    }
    return *ms;
  }

  absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& node,
                                                      std::string_view path) const {
    if (!node.IsSequence()) {
      return Error(node, path, "must be a list");
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < node.size(); ++i) {
      SIGNPOST_ASSIGN_OR_RETURN(std::string s, String(node[i], Index(path, i)));
      out.push_back(std::move(s));
    }
    return out;
  }

  // A list of names from `table`, as a bit mask over the table's values.
  template <typename T, size_t N>
  absl::StatusOr<std::uint32_t> Mask(const YAML::Node& node, std::string_view path,
                                     const std::pair<std::string_view, T> (&table)[N],
                                     bool value_is_bit) const {
    if (!node.IsSequence()) {
      return Error(node, path, "must be a list");
    }
    std::uint32_t mask = 0;
    for (std::size_t i = 0; i < node.size(); ++i) {
      SIGNPOST_ASSIGN_OR_RETURN(std::string name, String(node[i], Index(path, i)));
      const T* value = Lookup(table, name);
      if (value == nullptr) {
        return Error(node[i], Index(path, i),
                     absl::StrCat("unknown value \"", name, "\" (known: ", Names(table), ")"));
      }
      mask |= value_is_bit ? static_cast<std::uint32_t>(*value) : 1u << static_cast<int>(*value);
    }
    return mask;
  }

  static std::string Join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : absl::StrCat(AbslView(path), ".", AbslView(key));
  }
  static std::string Index(std::string_view path, std::size_t i) {
    return absl::StrCat(AbslView(path), "[", i, "]");
  }

 private:
  std::string source_;
};

absl::StatusOr<int> ParseClock(std::string_view text) {
  int h = 0;
  int m = 0;
  if (text.size() != 5 || text[2] != ':' || !absl::SimpleAtoi(AbslView(text.substr(0, 2)), &h) ||
      !absl::SimpleAtoi(AbslView(text.substr(3, 2)), &m) || h < 0 || h > 24 || m < 0 || m > 59 ||
      (h == 24 && m != 0)) {
    return absl::InvalidArgumentError("must be a time of day HH:MM");
  }
  return h * 60 + m;
}

absl::Status ReadHours(const Reader& r, const YAML::Node& node, const std::string& path,
                       OpeningHours& hours) {
  SIGNPOST_RETURN_IF_ERROR(r.CheckKeys(node, path, {"days", "open", "close"}));
  hours.always = false;
  if (node["days"]) {
    SIGNPOST_ASSIGN_OR_RETURN(auto days, r.StringList(node["days"], Reader::Join(path, "days")));
    hours.days = 0;
    for (std::size_t i = 0; i < days.size(); ++i) {
      auto it = std::find(std::begin(kDays), std::end(kDays), days[i]);
      if (it == std::end(kDays)) {
        return r.Error(node["days"][i], Reader::Index(Reader::Join(path, "days"), i),
                       "must be one of mon, tue, wed, thu, fri, sat, sun");
      }
      hours.days |= static_cast<std::uint8_t>(1u << (it - std::begin(kDays)));
    }
  }
  for (const char* key : {"open", "close"}) {
    const std::string field = Reader::Join(path, key);
    SIGNPOST_ASSIGN_OR_RETURN(YAML::Node n, r.Required(node, path, key));
    SIGNPOST_ASSIGN_OR_RETURN(std::string text, r.String(n, field));
    absl::StatusOr<int> minute = ParseClock(text);
    if (!minute.ok()) {
      return r.Error(n, field, std::string(minute.status().message()));
    }
    (std::string_view(key) == "open" ? hours.open_minute : hours.close_minute) = *minute;
  }
  if (hours.close_minute <= hours.open_minute) {
    return r.Error(node, Reader::Join(path, "close"), "must be after open");
  }
  return absl::OkStatus();
}

absl::Status ReadPod(const Reader& r, const YAML::Node& node, const std::string& path,
                     const Rules& rules, PodRule& pod) {
  SIGNPOST_RETURN_IF_ERROR(r.CheckKeys(
      node, path,
      {"id", "name", "partner", "needs", "coverage", "eligibility", "capacity", "cost",
       "daily_intake", "weight", "accept_timeout", "hours", "data_scope", "status"}));
  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node id, r.Required(node, path, "id"));
  SIGNPOST_ASSIGN_OR_RETURN(pod.id, r.Identifier(id, Reader::Join(path, "id")));
  pod.name = pod.id;
  if (node["name"]) {
    SIGNPOST_ASSIGN_OR_RETURN(pod.name, r.String(node["name"], Reader::Join(path, "name")));
  }
  if (node["partner"]) {
    SIGNPOST_ASSIGN_OR_RETURN(pod.partner,
                              r.String(node["partner"], Reader::Join(path, "partner")));
  }

  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node needs, r.Required(node, path, "needs"));
  SIGNPOST_ASSIGN_OR_RETURN(auto codes, r.StringList(needs, Reader::Join(path, "needs")));
  if (codes.empty()) {
    return r.Error(needs, Reader::Join(path, "needs"), "must name at least one need");
  }
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const NeedIndex* need = rules.FindNeed(codes[i]);
    if (need == nullptr) {
      return r.Error(needs[i], Reader::Index(Reader::Join(path, "needs"), i),
                     absl::StrCat("unknown need \"", codes[i], "\""));
    }
    pod.needs.push_back(*need);
  }
  std::sort(pod.needs.begin(), pod.needs.end());
  pod.needs.erase(std::unique(pod.needs.begin(), pod.needs.end()), pod.needs.end());

  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node coverage, r.Required(node, path, "coverage"));
  SIGNPOST_ASSIGN_OR_RETURN(auto areas, r.StringList(coverage, Reader::Join(path, "coverage")));
  if (areas.empty()) {
    return r.Error(coverage, Reader::Join(path, "coverage"), "must name at least one area");
  }
  for (const std::string& area : areas) {
    pod.coverage.Add(area);
  }

  if (const YAML::Node e = node["eligibility"]) {
    const std::string epath = Reader::Join(path, "eligibility");
    SIGNPOST_RETURN_IF_ERROR(r.CheckKeys(
        e, epath, {"min_age", "max_age", "require_flags", "exclude_flags", "languages", "consent"}));
    if (e["min_age"]) {
      SIGNPOST_ASSIGN_OR_RETURN(auto v, r.Uint(e["min_age"], Reader::Join(epath, "min_age")));
      pod.min_age = static_cast<int>(v);
    }
    if (e["max_age"]) {
      SIGNPOST_ASSIGN_OR_RETURN(auto v, r.Uint(e["max_age"], Reader::Join(epath, "max_age")));
      pod.max_age = static_cast<int>(v);
    }
    if (pod.min_age >= 0 && pod.max_age >= 0 && pod.max_age < pod.min_age) {
      return r.Error(e["max_age"], Reader::Join(epath, "max_age"), "must not be below min_age");
    }
    if (e["require_flags"]) {
      SIGNPOST_ASSIGN_OR_RETURN(pod.required_flags, r.Mask(e["require_flags"],
                                                           Reader::Join(epath, "require_flags"),
                                                           kFlags, false));
    }
    if (e["exclude_flags"]) {
      SIGNPOST_ASSIGN_OR_RETURN(pod.excluded_flags, r.Mask(e["exclude_flags"],
                                                           Reader::Join(epath, "exclude_flags"),
                                                           kFlags, false));
    }
    if (e["languages"]) {
      SIGNPOST_ASSIGN_OR_RETURN(pod.languages,
                                r.StringList(e["languages"], Reader::Join(epath, "languages")));
      for (std::string& l : pod.languages) {
        absl::AsciiStrToLower(&l);
      }
    }
    if (e["consent"]) {
      SIGNPOST_ASSIGN_OR_RETURN(pod.required_consent,
                                r.Mask(e["consent"], Reader::Join(epath, "consent"), kConsents,
                                       false));
    }
  }

  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node capacity, r.Required(node, path, "capacity"));
  SIGNPOST_ASSIGN_OR_RETURN(pod.capacity, r.Uint(capacity, Reader::Join(path, "capacity")));
  pod.cost.assign(rules.needs.size(), 1);
  if (const YAML::Node cost = node["cost"]) {
    const std::string cpath = Reader::Join(path, "cost");
    if (!cost.IsMap()) {
      return r.Error(cost, cpath, "must map need codes to costs");
    }
    for (const auto& entry : cost) {
      const std::string& code = entry.first.Scalar();
      const NeedIndex* need = rules.FindNeed(code);
      if (need == nullptr || !pod.Serves(*need)) {
        return r.Error(entry.first, Reader::Join(cpath, code), "is not a need this pod serves");
      }
      SIGNPOST_ASSIGN_OR_RETURN(auto c, r.Uint(entry.second, Reader::Join(cpath, code)));
      if (c == 0) {
        return r.Error(entry.second, Reader::Join(cpath, code), "must be at least 1");
      }
      pod.cost[*need] = c;
    }
  }
  if (node["daily_intake"]) {
    SIGNPOST_ASSIGN_OR_RETURN(pod.daily_intake,
                              r.Uint(node["daily_intake"], Reader::Join(path, "daily_intake")));
  }
  if (node["weight"]) {
    SIGNPOST_ASSIGN_OR_RETURN(pod.weight, r.Uint(node["weight"], Reader::Join(path, "weight")));
  }
  if (node["accept_timeout"]) {
    SIGNPOST_ASSIGN_OR_RETURN(pod.accept_timeout_ms, r.Duration(node["accept_timeout"],
                                                                Reader::Join(path, "accept_timeout")));
  }
  if (node["hours"]) {
    SIGNPOST_RETURN_IF_ERROR(ReadHours(r, node["hours"], Reader::Join(path, "hours"), pod.hours));
  }
  if (node["data_scope"]) {
    SIGNPOST_ASSIGN_OR_RETURN(pod.data_scope, r.Mask(node["data_scope"],
                                                     Reader::Join(path, "data_scope"), kScopes,
                                                     true));
  }
  if (node["status"]) {
    const std::string spath = Reader::Join(path, "status");
    SIGNPOST_ASSIGN_OR_RETURN(std::string status, r.String(node["status"], spath));
    const std::optional<v1::PodStatus> s = PodStatusByName(status);
    if (!s.has_value()) {
      return r.Error(node["status"], spath, "must be open, paused or closed");
    }
    pod.status = *s;
  }
  return absl::OkStatus();
}

absl::Status ReadNeedRule(const Reader& r, const YAML::Node& node, const std::string& path,
                          NeedIndex need, const Rules& rules, NeedRule& rule) {
  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node max_wait, r.Required(node, path, "max_wait"));
  SIGNPOST_ASSIGN_OR_RETURN(rule.max_wait_ms, r.Duration(max_wait, Reader::Join(path, "max_wait")));
  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node escalate, r.Required(node, path, "escalate_to"));
  SIGNPOST_ASSIGN_OR_RETURN(rule.escalate_to,
                            r.Identifier(escalate, Reader::Join(path, "escalate_to")));
  if (node["max_declines"]) {
    SIGNPOST_ASSIGN_OR_RETURN(rule.max_declines,
                              r.Uint(node["max_declines"], Reader::Join(path, "max_declines")));
    if (rule.max_declines == 0) {
      return r.Error(node["max_declines"], Reader::Join(path, "max_declines"),
                     "must be at least 1");
    }
  }
  const YAML::Node targets = node["targets"];
  if (!targets) {
    return absl::OkStatus();  // no targets: the need escalates at once (e.g. route-out needs)
  }
  const std::string tpath = Reader::Join(path, "targets");
  if (!targets.IsSequence()) {
    return r.Error(targets, tpath, "must be a list");
  }
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const YAML::Node t = targets[i];
    const std::string p = Reader::Index(tpath, i);
    SIGNPOST_RETURN_IF_ERROR(r.CheckKeys(t, p, {"name", "pods", "max_wait"}));
    Target target;
    SIGNPOST_ASSIGN_OR_RETURN(YAML::Node name, r.Required(t, p, "name"));
    SIGNPOST_ASSIGN_OR_RETURN(target.name, r.Identifier(name, Reader::Join(p, "name")));
    if (t["max_wait"]) {
      SIGNPOST_ASSIGN_OR_RETURN(target.max_wait_ms,
                                r.Duration(t["max_wait"], Reader::Join(p, "max_wait")));
    }
    if (t["pods"]) {
      const std::string ppath = Reader::Join(p, "pods");
      SIGNPOST_ASSIGN_OR_RETURN(auto ids, r.StringList(t["pods"], ppath));
      for (std::size_t k = 0; k < ids.size(); ++k) {
        const PodIndex* pod = rules.FindPod(ids[k]);
        if (pod == nullptr) {
          return r.Error(t["pods"][k], Reader::Index(ppath, k),
                         absl::StrCat("unknown pod \"", ids[k], "\""));
        }
        if (!rules.pods[*pod].Serves(need)) {
          return r.Error(t["pods"][k], Reader::Index(ppath, k),
                         absl::StrCat("pod \"", ids[k], "\" does not serve need \"",
                                      rules.needs[need].code, "\""));
        }
        target.pods.push_back(*pod);
      }
    } else {
      for (PodIndex pod = 0; pod < rules.pods.size(); ++pod) {
        if (rules.pods[pod].Serves(need)) {
          target.pods.push_back(pod);
        }
      }
    }
    std::sort(target.pods.begin(), target.pods.end());  // pods are sorted by id already
    target.pods.erase(std::unique(target.pods.begin(), target.pods.end()), target.pods.end());
    rule.targets.push_back(std::move(target));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Rules>> Load(const Reader& r, const YAML::Node& root,
                                                  std::string_view yaml) {
  auto rules = std::make_shared<Rules>();
  rules->yaml = std::string(yaml);
  SIGNPOST_RETURN_IF_ERROR(
      r.CheckKeys(root, "", {"version", "timezone", "triage_need", "needs", "pods"}));
  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node version, r.Required(root, "", "version"));
  SIGNPOST_ASSIGN_OR_RETURN(rules->version, r.String(version, "version"));
  if (const YAML::Node tz = root["timezone"]) {
    SIGNPOST_ASSIGN_OR_RETURN(std::string zone, r.String(tz, "timezone"));
    if (zone == "UTC") {
      rules->time_zone = TimeZone::kUtc;
    } else if (zone != "Europe/London") {
      return r.Error(tz, "timezone", "must be Europe/London or UTC");
    }
  }

  // Pass 1: the taxonomy, so pods can name needs.
  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node needs, r.Required(root, "", "needs"));
  if (!needs.IsSequence() || needs.size() == 0) {
    return r.Error(needs, "needs", "must be a non-empty list");
  }
  if (needs.size() > 1000) {
    return r.Error(needs, "needs", "at most 1000 needs");
  }
  for (std::size_t i = 0; i < needs.size(); ++i) {
    const std::string path = Reader::Index("needs", i);
    SIGNPOST_RETURN_IF_ERROR(r.CheckKeys(
        needs[i], path, {"code", "name", "max_wait", "escalate_to", "max_declines", "targets"}));
    NeedType need;
    SIGNPOST_ASSIGN_OR_RETURN(YAML::Node code, r.Required(needs[i], path, "code"));
    SIGNPOST_ASSIGN_OR_RETURN(need.code, r.Identifier(code, Reader::Join(path, "code")));
    need.name = need.code;
    if (needs[i]["name"]) {
      SIGNPOST_ASSIGN_OR_RETURN(need.name, r.String(needs[i]["name"], Reader::Join(path, "name")));
    }
    if (!rules->need_index.emplace(need.code, static_cast<NeedIndex>(i)).second) {
      return r.Error(code, Reader::Join(path, "code"),
                     absl::StrCat("duplicate need \"", need.code, "\""));
    }
    rules->needs.push_back(std::move(need));
  }
  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node triage, r.Required(root, "", "triage_need"));
  SIGNPOST_ASSIGN_OR_RETURN(std::string triage_code, r.String(triage, "triage_need"));
  const NeedIndex* triage_index = rules->FindNeed(triage_code);
  if (triage_index == nullptr) {
    return r.Error(triage, "triage_need", absl::StrCat("unknown need \"", triage_code, "\""));
  }
  rules->triage_need = *triage_index;

  // Pods, sorted by id so every tie breaks on the id.
  SIGNPOST_ASSIGN_OR_RETURN(YAML::Node pods, r.Required(root, "", "pods"));
  if (!pods.IsSequence()) {
    return r.Error(pods, "pods", "must be a list");
  }
  if (pods.size() > 60000) {
    return r.Error(pods, "pods", "at most 60000 pods");
  }
  std::vector<std::pair<PodRule, YAML::Node>> read;
  for (std::size_t i = 0; i < pods.size(); ++i) {
    PodRule pod;
    SIGNPOST_RETURN_IF_ERROR(ReadPod(r, pods[i], Reader::Index("pods", i), *rules, pod));
    read.emplace_back(std::move(pod), pods[i]);
  }
  std::sort(read.begin(), read.end(),
            [](const auto& a, const auto& b) { return a.first.id < b.first.id; });
  for (auto& [pod, node] : read) {
    if (!rules->pod_index.emplace(pod.id, static_cast<PodIndex>(rules->pods.size())).second) {
      return r.Error(node["id"], "pods.id", absl::StrCat("duplicate pod \"", pod.id, "\""));
    }
    rules->pods.push_back(std::move(pod));
  }

  // Pass 2: each need's targets, which name pods.
  rules->need_rules.resize(rules->needs.size());
  for (std::size_t i = 0; i < needs.size(); ++i) {
    SIGNPOST_RETURN_IF_ERROR(ReadNeedRule(r, needs[i], Reader::Index("needs", i),
                                          static_cast<NeedIndex>(i), *rules,
                                          rules->need_rules[i]));
  }
  for (NeedType& need : rules->needs) {
    need.symbol = Symbol::Of(need.code);
  }
  for (PodRule& pod : rules->pods) {
    pod.symbol = Symbol::Of(pod.id);
  }
  for (NeedRule& rule : rules->need_rules) {
    rule.escalate_symbol = Symbol::Of(rule.escalate_to);
  }
  return std::shared_ptr<const Rules>(std::move(rules));
}

}  // namespace

std::uint64_t Coverage::Pack(std::string_view s, bool with_length) {
  std::uint64_t bits = 0;
  const std::size_t n = std::min<std::size_t>(s.size(), 8);
  for (std::size_t i = 0; i < n; ++i) {
    bits |= std::uint64_t{static_cast<unsigned char>(s[i])} << (8 * i);
  }
  if (with_length) {
    bits |= std::uint64_t{s.size()} << (8 * kPackedMax);
  }
  return bits;
}

void Coverage::Add(std::string_view area) {
  const std::string upper = absl::AsciiStrToUpper(AbslView(area));
  if (upper == "*") {
    county_wide_ = true;
  } else if (upper.size() > 1 && upper.back() == '*') {
    const std::string_view prefix = std::string_view(upper).substr(0, upper.size() - 1);
    if (prefix.size() <= kPackedMax) {
      prefixes_.push_back({Pack(prefix, false), prefix.size()});
    } else {
      long_prefixes_.emplace_back(prefix);
    }
  } else if (upper.size() <= kPackedMax) {
    const std::uint64_t code = Pack(upper, true);
    exact_.insert(std::upper_bound(exact_.begin(), exact_.end(), code), code);
  } else {
    long_exact_.insert(std::upper_bound(long_exact_.begin(), long_exact_.end(), upper), upper);
  }
}

std::uint32_t Coverage::Specificity(std::string_view outward) const {
  if (!outward.empty()) {
    if (outward.size() <= kPackedMax
            ? std::binary_search(exact_.begin(), exact_.end(), Pack(outward, true))
            : std::binary_search(long_exact_.begin(), long_exact_.end(), outward)) {
      return 3;
    }
    const std::uint64_t head = Pack(outward, false);
    for (const Prefix& prefix : prefixes_) {
      // The size check matters only for a prefix holding a NUL byte, which packs like an end.
      const std::uint64_t mask = (std::uint64_t{1} << (8 * prefix.size)) - 1;
      if (outward.size() >= prefix.size && (head & mask) == prefix.bits) {
        return 2;
      }
    }
    for (const std::string& prefix : long_prefixes_) {
      if (outward.substr(0, prefix.size()) == prefix) {
        return 2;
      }
    }
  }
  return county_wide_ ? 1 : 0;
}

bool PodRule::Serves(NeedIndex need) const {
  return std::binary_search(needs.begin(), needs.end(), need);
}

const NeedIndex* Rules::FindNeed(std::string_view code) const {
  auto it = need_index.find(AbslView(code));
  return it == need_index.end() ? nullptr : &it->second;
}

const PodIndex* Rules::FindPod(std::string_view id) const {
  auto it = pod_index.find(AbslView(id));
  return it == pod_index.end() ? nullptr : &it->second;
}

std::optional<v1::PodStatus> PodStatusByName(std::string_view name) {
  const v1::PodStatus* s = Lookup(kStatuses, name);
  return s != nullptr ? std::optional<v1::PodStatus>(*s) : std::nullopt;
}

absl::StatusOr<std::int64_t> ParseDuration(std::string_view text) {
  if (text.size() < 2) {
    return absl::InvalidArgumentError("must be a duration such as 90s, 30m, 4h or 2d");
  }
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1000;
      break;
    case 'm':
      unit = 60 * 1000;
      break;
    case 'h':
      unit = 3600 * 1000;
      break;
    case 'd':
      unit = 24 * 3600 * 1000;
      break;
    default:
      return absl::InvalidArgumentError("must be a duration such as 90s, 30m, 4h or 2d");
  }
  std::int64_t count = 0;
  if (!absl::SimpleAtoi(AbslView(text.substr(0, text.size() - 1)), &count) || count < 0 ||
      count > 3650LL * 24 * 3600) {
    return absl::InvalidArgumentError("must be a duration such as 90s, 30m, 4h or 2d");
  }
  return count * unit;
}

absl::StatusOr<std::shared_ptr<const Rules>> LoadRules(std::string_view yaml,
                                                       std::string_view source) {
  const Reader reader(source);
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    return Load(reader, root, yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(AbslView(source), ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": ", e.msg));
  }
}

}  // namespace signpost::router

// SPDX-License-Identifier: Apache-2.0
#include "tests/schemas/schema_description.h"

#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"

namespace signpost::testing {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

std::string TypeOf(const FieldDescriptor& f) {
  switch (f.type()) {
    case FieldDescriptor::TYPE_MESSAGE:
      return absl::StrCat("message:", f.message_type()->full_name());
    case FieldDescriptor::TYPE_ENUM:
      return absl::StrCat("enum:", f.enum_type()->full_name());
    default:
      return f.type_name();
  }
}

std::string LabelOf(const FieldDescriptor& f) {
  if (f.is_repeated()) {
    return "repeated";
  }
  return f.has_presence() && f.real_containing_oneof() == nullptr && !f.message_type() ? "optional"
                                                                                  : "singular";
}

void DescribeEnum(const EnumDescriptor& e, SchemaDescription& out) {
  out.enums.insert(e.full_name());
  for (int i = 0; i < e.value_count(); ++i) {
    out.enum_values[{e.full_name(), e.value(i)->number()}] = e.value(i)->name();
  }
  for (int i = 0; i < e.reserved_range_count(); ++i) {
    out.reserved[e.full_name()].emplace_back(e.reserved_range(i)->start,
                                             e.reserved_range(i)->end);  // inclusive
  }
}

void DescribeMessage(const Descriptor& m, SchemaDescription& out) {
  out.messages.insert(m.full_name());
  for (int i = 0; i < m.field_count(); ++i) {
    const FieldDescriptor& f = *m.field(i);
    std::string value = absl::StrCat(f.name(), " ", TypeOf(f), " ", LabelOf(f));
    if (f.real_containing_oneof() != nullptr) {
      absl::StrAppend(&value, " oneof:", f.real_containing_oneof()->name());
    }
    out.fields[{m.full_name(), f.number()}] = value;
  }
  for (int i = 0; i < m.reserved_range_count(); ++i) {
    out.reserved[m.full_name()].emplace_back(m.reserved_range(i)->start,
                                             m.reserved_range(i)->end - 1);  // exclusive end
  }
  for (int i = 0; i < m.nested_type_count(); ++i) {
    DescribeMessage(*m.nested_type(i), out);
  }
  for (int i = 0; i < m.enum_type_count(); ++i) {
    DescribeEnum(*m.enum_type(i), out);
  }
}

}  // namespace

bool SchemaDescription::IsReserved(const std::string& type, int number) const {
  auto it = reserved.find(type);
  if (it == reserved.end()) {
    return false;
  }
  for (const auto& [start, end] : it->second) {
    if (number >= start && number <= end) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<SchemaDescription> DescribeDescriptorSet(const std::string& bytes) {
  google::protobuf::FileDescriptorSet set;
  if (!set.ParseFromString(bytes)) {
    return absl::InvalidArgumentError("not a FileDescriptorSet");
  }
  google::protobuf::DescriptorPool pool;
  for (const auto& file : set.file()) {
    if (pool.BuildFile(file) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot build ", file.name()));
    }
  }
  SchemaDescription out;
  for (const auto& proto : set.file()) {
    if (proto.package().rfind("signpost.", 0) != 0) {
      continue;
    }
    const google::protobuf::FileDescriptor* file = pool.FindFileByName(proto.name());
    for (int i = 0; i < file->message_type_count(); ++i) {
      DescribeMessage(*file->message_type(i), out);
    }
    for (int i = 0; i < file->enum_type_count(); ++i) {
      DescribeEnum(*file->enum_type(i), out);
    }
  }
  return out;
}

std::string ToSnapshotText(const SchemaDescription& d) {
  std::vector<std::string> lines;
  for (const auto& m : d.messages) {
    lines.push_back(absl::StrCat("message ", m));
  }
  for (const auto& e : d.enums) {
    lines.push_back(absl::StrCat("enum ", e));
  }
  for (const auto& [key, value] : d.fields) {
    lines.push_back(absl::StrCat("field ", key.first, " ", key.second, " ", value));
  }
  for (const auto& [key, name] : d.enum_values) {
    lines.push_back(absl::StrCat("value ", key.first, " ", key.second, " ", name));
  }
  for (const auto& [type, ranges] : d.reserved) {
    for (const auto& [start, end] : ranges) {
      lines.push_back(absl::StrCat("reserved ", type, " ", start, " ", end));
    }
  }
  std::sort(lines.begin(), lines.end());
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

absl::StatusOr<SchemaDescription> ParseSnapshotText(const std::string& text) {
  SchemaDescription d;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++line_no;
    if (line[0] == '#') {
      continue;
    }
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 3));
    auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("snapshot line ", line_no)); };
    int number = 0;
    if (parts[0] == "message" && parts.size() == 2) {
      d.messages.insert(parts[1]);
    } else if (parts[0] == "enum" && parts.size() == 2) {
      d.enums.insert(parts[1]);
    } else if (parts.size() == 4 && absl::SimpleAtoi(parts[2], &number)) {
      if (parts[0] == "field") {
        d.fields[{parts[1], number}] = parts[3];
      } else if (parts[0] == "value") {
        d.enum_values[{parts[1], number}] = parts[3];
      } else if (int end = 0; parts[0] == "reserved" && absl::SimpleAtoi(parts[3], &end)) {
        d.reserved[parts[1]].emplace_back(number, end);
      } else {
        return bad();
      }
    } else {
      return bad();
    }
  }
  return d;
}

SchemaDiff CompareSchemas(const SchemaDescription& old, const SchemaDescription& current) {
  SchemaDiff diff;
  auto name_of = [](const std::string& value) { return value.substr(0, value.find(' ')); };
  for (const auto& m : old.messages) {
    if (!current.messages.contains(m)) {
      diff.incompatible.push_back(absl::StrCat("message ", m, " was removed"));
    }
  }
  for (const auto& e : old.enums) {
    if (!current.enums.contains(e)) {
      diff.incompatible.push_back(absl::StrCat("enum ", e, " was removed"));
    }
  }
  for (const auto& [key, value] : old.fields) {
    const auto& [message, number] = key;
    if (!current.messages.contains(message)) {
      continue;  // reported above
    }
    auto it = current.fields.find(key);
    if (it == current.fields.end()) {
      if (!current.IsReserved(message, number)) {
        diff.incompatible.push_back(absl::StrCat("field ", message, ".", name_of(value), " = ",
                                                 number, " was removed or renumbered without "
                                                 "`reserved ", number, ";`"));
      }
    } else if (it->second != value) {
      diff.incompatible.push_back(absl::StrCat("field ", message, " number ", number,
                                               " changed from \"", value, "\" to \"", it->second,
                                               "\""));
    }
  }
  for (const auto& [key, name] : old.enum_values) {
    const auto& [e, number] = key;
    if (!current.enums.contains(e)) {
      continue;
    }
    auto it = current.enum_values.find(key);
    if (it == current.enum_values.end()) {
      if (!current.IsReserved(e, number)) {
        diff.incompatible.push_back(absl::StrCat("enum value ", e, ".", name, " = ", number,
                                                 " was removed or renumbered without `reserved`"));
      }
    } else if (it->second != name) {
      diff.incompatible.push_back(absl::StrCat("enum ", e, " value ", number, " renamed from ",
                                               name, " to ", it->second));
    }
  }
  for (const auto& [key, value] : current.fields) {
    if (!old.fields.contains(key)) {
      diff.additions.push_back(absl::StrCat("field ", key.first, " ", key.second, " ", value));
    }
  }
  for (const auto& [key, name] : current.enum_values) {
    if (!old.enum_values.contains(key)) {
      diff.additions.push_back(absl::StrCat("value ", key.first, " ", key.second, " ", name));
    }
  }
  for (const auto& m : current.messages) {
    if (!old.messages.contains(m)) {
      diff.additions.push_back(absl::StrCat("message ", m));
    }
  }
  for (const auto& e : current.enums) {
    if (!old.enums.contains(e)) {
      diff.additions.push_back(absl::StrCat("enum ", e));
    }
  }
  if (ToSnapshotText(old) != ToSnapshotText(current) && diff.incompatible.empty() &&
      diff.additions.empty()) {
    diff.additions.push_back("reserved ranges changed");
  }
  return diff;
}

}  // namespace signpost::testing

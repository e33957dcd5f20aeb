// SPDX-License-Identifier: Apache-2.0
// A line-per-fact description of the compiled schemas, and the compatibility rules between an
// old description (the committed snapshot) and a new one (the build's descriptor set).
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace signpost::testing {

struct SchemaDescription {
  // (message, field number) -> "name type label[ oneof]"
  std::map<std::pair<std::string, int>, std::string> fields;
  // (enum, value number) -> name
  std::map<std::pair<std::string, int>, std::string> enum_values;
  std::set<std::string> messages;
  std::set<std::string> enums;
  // message or enum -> reserved [start, end] (inclusive)
  std::map<std::string, std::vector<std::pair<int, int>>> reserved;

  [[nodiscard]] bool IsReserved(const std::string& type, int number) const;
};

// Describes every message and enum in packages starting with "signpost." of a serialized
// google.protobuf.FileDescriptorSet (protoc --descriptor_set_out --include_imports).
// Returns kInvalidArgument when the bytes are not a valid descriptor set.
[[nodiscard]] absl::StatusOr<SchemaDescription> DescribeDescriptorSet(const std::string& bytes);

// The snapshot's text form, one fact per line, sorted; and back.
[[nodiscard]] std::string ToSnapshotText(const SchemaDescription& d);
[[nodiscard]] absl::StatusOr<SchemaDescription> ParseSnapshotText(const std::string& text);

struct SchemaDiff {
  std::vector<std::string> incompatible;  // breaks readers or writers of existing data
  std::vector<std::string> additions;     // compatible, but the snapshot must be updated
};

// Compares `current` with the snapshot `old`.
[[nodiscard]] SchemaDiff CompareSchemas(const SchemaDescription& old,
                                        const SchemaDescription& current);

}  // namespace signpost::testing

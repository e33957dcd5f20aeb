// SPDX-License-Identifier: Apache-2.0
// The compiled schemas against the committed snapshot (schemas/snapshot/signpost.v1.txt), and
// the comparison rules themselves on small hand-written schemas.
#include <fstream>
#include <sstream>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/schemas/schema_description.h"

namespace signpost::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return s.str();
}

SchemaDescription Current() {
  auto d = DescribeDescriptorSet(ReadFile(SIGNPOST_DESCRIPTOR_SET));
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : SchemaDescription{};
}

SchemaDescription Snapshot() {
  auto d = ParseSnapshotText(ReadFile(SIGNPOST_SCHEMA_SNAPSHOT));
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : SchemaDescription{};
}

TEST(SchemaCompatTest, NoIncompatibleChangeSinceSnapshot) {
  SchemaDiff diff = CompareSchemas(Snapshot(), Current());
  EXPECT_THAT(diff.incompatible, IsEmpty())
      << "Incompatible schema change. Field numbers and names are forever: add a new field and "
         "`reserved` the old one. See schemas/README.md.\n"
      << absl::StrJoin(diff.incompatible, "\n");
}

TEST(SchemaCompatTest, SnapshotIsCurrent) {
  SchemaDiff diff = CompareSchemas(Snapshot(), Current());
  EXPECT_THAT(diff.additions, IsEmpty())
      << "The schemas grew; if that is intended run scripts/update-schema-snapshot and commit "
         "the snapshot with the change.\n"
      << absl::StrJoin(diff.additions, "\n");
}

TEST(SchemaCompatTest, CurrentSchemasDescribeTheEnvelope) {
  SchemaDescription d = Current();
  EXPECT_TRUE(d.messages.contains("signpost.v1.Envelope"));
  const std::pair<std::string, int> event_id{"signpost.v1.Envelope", 2};
  EXPECT_EQ(d.fields[event_id], "event_id string singular");
}

// A small schema to mutate: message M { string a = 1; int64 b = 2; } enum E { E_X = 0; E_Y = 1; }
SchemaDescription Base() {
  SchemaDescription d;
  d.messages = {"p.M"};
  d.enums = {"p.E"};
  d.fields[{"p.M", 1}] = "a string singular";
  d.fields[{"p.M", 2}] = "b int64 singular";
  d.enum_values[{"p.E", 0}] = "E_X";
  d.enum_values[{"p.E", 1}] = "E_Y";
  return d;
}

TEST(SchemaCompatTest, IdenticalSchemasHaveNoDiff) {
  SchemaDiff diff = CompareSchemas(Base(), Base());
  EXPECT_THAT(diff.incompatible, IsEmpty());
  EXPECT_THAT(diff.additions, IsEmpty());
}

TEST(SchemaCompatTest, RenumberedFieldIsIncompatible) {
  SchemaDescription changed = Base();
  changed.fields.erase({"p.M", 2});
  changed.fields[{"p.M", 3}] = "b int64 singular";
  SchemaDiff diff = CompareSchemas(Base(), changed);
  EXPECT_THAT(diff.incompatible, ElementsAre(HasSubstr("p.M.b = 2 was removed or renumbered")));
}

TEST(SchemaCompatTest, ReusedNumberIsIncompatible) {
  SchemaDescription changed = Base();
  changed.fields[{"p.M", 2}] = "c string singular";
  EXPECT_THAT(CompareSchemas(Base(), changed).incompatible,
              ElementsAre(HasSubstr("number 2 changed")));
}

TEST(SchemaCompatTest, ChangedTypeIsIncompatible) {
  SchemaDescription changed = Base();
  changed.fields[{"p.M", 2}] = "b int32 singular";
  EXPECT_THAT(CompareSchemas(Base(), changed).incompatible,
              ElementsAre(HasSubstr("\"b int64 singular\" to \"b int32 singular\"")));
}

TEST(SchemaCompatTest, RemovalWithReservedNumberIsCompatible) {
  SchemaDescription changed = Base();
  changed.fields.erase({"p.M", 2});
  changed.reserved["p.M"].emplace_back(2, 2);
  SchemaDiff diff = CompareSchemas(Base(), changed);
  EXPECT_THAT(diff.incompatible, IsEmpty());
  EXPECT_THAT(diff.additions, ElementsAre("reserved ranges changed"));
}

TEST(SchemaCompatTest, RenumberedEnumValueIsIncompatible) {
  SchemaDescription changed = Base();
  changed.enum_values.erase({"p.E", 1});
  changed.enum_values[{"p.E", 2}] = "E_Y";
  EXPECT_THAT(CompareSchemas(Base(), changed).incompatible,
              ElementsAre(HasSubstr("p.E.E_Y = 1")));
}

TEST(SchemaCompatTest, NewFieldIsAnAdditionNotABreak) {
  SchemaDescription changed = Base();
  changed.fields[{"p.M", 3}] = "c bool singular";
  SchemaDiff diff = CompareSchemas(Base(), changed);
  EXPECT_THAT(diff.incompatible, IsEmpty());
  EXPECT_THAT(diff.additions, ElementsAre("field p.M 3 c bool singular"));
}

TEST(SchemaCompatTest, SnapshotTextRoundTrips) {
  SchemaDescription d = Base();
  d.reserved["p.M"].emplace_back(5, 9);
  auto parsed = ParseSnapshotText(ToSnapshotText(d));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(ToSnapshotText(*parsed), ToSnapshotText(d));
  EXPECT_TRUE(parsed->IsReserved("p.M", 7));
  EXPECT_FALSE(parsed->IsReserved("p.M", 4));
}

TEST(SchemaCompatTest, MalformedSnapshotLineIsRejected) {
  EXPECT_EQ(ParseSnapshotText("field p.M x a string\n").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace signpost::testing

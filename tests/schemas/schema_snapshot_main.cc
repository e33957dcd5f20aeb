// SPDX-License-Identifier: Apache-2.0
// Writes the snapshot of a compiled descriptor set: schema-snapshot <signpost.desc> <out.txt>.
// Run through scripts/update-schema-snapshot, a deliberate step (schemas/README.md).
#include <fstream>
#include <iostream>
#include <sstream>

#include "tests/schemas/schema_description.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: schema-snapshot <descriptor-set> <snapshot.txt>\n";
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  auto description = signpost::testing::DescribeDescriptorSet(bytes.str());
  if (!in || !description.ok()) {
    std::cerr << "cannot read " << argv[1] << ": " << description.status() << "\n";
    return 1;
  }
  std::ofstream out(argv[2]);
  out << "# Compiled signpost schemas, one fact per line. Regenerate only with\n"
      << "# scripts/update-schema-snapshot, after reading schemas/README.md.\n"
      << signpost::testing::ToSnapshotText(*description);
  return out ? 0 : 1;
}

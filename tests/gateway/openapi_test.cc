// SPDX-License-Identifier: Apache-2.0
// The OpenAPI document and the server agree: every route the gateway registers is documented,
// and every documented operation is served.
#include <set>

#include "gtest/gtest.h"
#include "services/gateway/gateway.h"
#include "yaml-cpp/yaml.h"

namespace signpost::services::gateway {
namespace {

std::set<Route> Documented(const YAML::Node& doc) {
  std::set<Route> out;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      if (method == "parameters" || method == "summary" || method == "description") continue;
      for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.insert({method, path.first.as<std::string>()});
    }
  }
  return out;
}

TEST(OpenApiTest, DocumentListsExactlyTheServedRoutes) {
  const YAML::Node doc = YAML::LoadFile(SIGNPOST_OPENAPI);
  EXPECT_EQ(doc["openapi"].as<std::string>().substr(0, 2), "3.");
  const std::set<Route> documented = Documented(doc);
  const std::set<Route> served(Gateway::Routes().begin(), Gateway::Routes().end());
  for (const Route& r : served) {
    EXPECT_TRUE(documented.contains(r)) << r.method << " " << r.path << " is served, not documented";
  }
  for (const Route& r : documented) {
    EXPECT_TRUE(served.contains(r)) << r.method << " " << r.path << " is documented, not served";
  }
}

TEST(OpenApiTest, TheComparisonNoticesADifference) {
  YAML::Node doc = YAML::LoadFile(SIGNPOST_OPENAPI);
  doc["paths"].remove("/readyz");
  doc["paths"]["/v1/pods"]["get"]["summary"] = "not served";
  const std::set<Route> documented = Documented(doc);
  EXPECT_FALSE(documented.contains(Route{"GET", "/readyz"}));
  EXPECT_TRUE(documented.contains(Route{"GET", "/v1/pods"}));
  const std::set<Route> served(Gateway::Routes().begin(), Gateway::Routes().end());
  EXPECT_NE(documented, served);
}

}  // namespace
}  // namespace signpost::services::gateway

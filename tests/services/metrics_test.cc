// SPDX-License-Identifier: Apache-2.0
// The service's metrics: per-event lookups by label values return one child per label set.
#include "services/metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace signpost::services {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, LookupsByLabelValuesReturnOneChildPerLabelSet) {
  Metrics metrics;
  prometheus::Counter& a = metrics.PodAnswers("pod-a", "completed");
  EXPECT_EQ(&metrics.PodAnswers(std::string("pod-a"), "completed"), &a);
  EXPECT_NE(&metrics.PodAnswers("pod-a", "declined"), &a);
  EXPECT_NE(&metrics.PodAnswers("pod-b", "completed"), &a);
  // Values are not concatenated into one key: ("ab", "c") and ("a", "bc") stay apart.
  EXPECT_NE(&metrics.Escalations("ab", "c"), &metrics.Escalations("a", "bc"));
  EXPECT_EQ(&metrics.TimeToAccept("pod-a"), &metrics.TimeToAccept("pod-a"));
  EXPECT_NE(&metrics.TimeToAccept("pod-a"), &metrics.TimeToComplete("pod-a"));

  a.Increment(2);
  metrics.Escalations("banes", "housing").Increment();
  metrics.TimeToComplete("pod-a").Observe(120);
  const std::string text = metrics.Serialize();
  EXPECT_THAT(text, HasSubstr("signpost_pod_answers_total{answer=\"completed\",pod=\"pod-a\"} 2"));
  EXPECT_THAT(text, HasSubstr("signpost_escalations_total{domain=\"banes\",need=\"housing\"} 1"));
  EXPECT_THAT(text, HasSubstr("signpost_pod_time_to_complete_seconds_count{pod=\"pod-a\"} 1"));
}

}  // namespace
}  // namespace signpost::services

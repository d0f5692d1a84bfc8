// AnalyzeMetric: composition, direction, verdicts, undefined figures and input validation.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "splitstream/stats/analysis.h"

namespace splitstream::stats {
namespace {

VariantData Conversion(const std::string& key, int64_t n, int64_t s) {
  VariantData v;
  v.key = key;
  v.conversions = ProportionState::FromCounts(n, s).value();
  return v;
}

VariantData Mean(const std::string& key, int64_t n, double mean, double variance) {
  VariantData v;
  v.key = key;
  v.values = Moments::FromMeanVariance(n, mean, variance).value();
  return v;
}

bool Finite(const std::optional<double>& x) { return !x || std::isfinite(*x); }

void ExpectNoNonFinite(const MetricAnalysis& a) {
  for (const VariantSummary& v : a.variants) {
    EXPECT_TRUE(Finite(v.value) && Finite(v.mean) && Finite(v.variance) && Finite(v.std_error))
        << v.key;
  }
  for (const ComparisonResult& r : a.comparisons) {
    EXPECT_TRUE(Finite(r.lift_abs) && Finite(r.lift_rel) && Finite(r.p_value) &&
                Finite(r.p_value_adjusted) && Finite(r.chance_to_beat) && Finite(r.expected_loss) &&
                Finite(r.seq_p_value))
        << r.variant_key;
    for (const auto& ci : {r.ci_abs, r.ci_rel, r.seq_ci_abs, r.seq_ci_rel}) {
      if (ci) {
        EXPECT_TRUE(std::isfinite(ci->lo) && std::isfinite(ci->hi)) << r.variant_key;
      }
    }
  }
}

TEST(AnalyzeMetricTest, ConversionWinnerVerdict) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  std::vector<VariantData> v{Conversion("control", 20000, 2000), Conversion("B", 20000, 2250)};
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_EQ(a->variants.size(), 2u);
  EXPECT_EQ(a->variants[0].users, 20000);
  EXPECT_DOUBLE_EQ(*a->variants[1].value, 2250);
  EXPECT_DOUBLE_EQ(*a->variants[1].mean, 0.1125);
  ASSERT_EQ(a->comparisons.size(), 1u);
  const ComparisonResult& r = a->comparisons[0];
  EXPECT_TRUE(r.significant);
  EXPECT_EQ(r.direction, Direction::kBetter);
  EXPECT_NEAR(*r.lift_rel, 0.125, 1e-12);
  EXPECT_GT(*r.chance_to_beat, 0.99);
  EXPECT_LT(*r.expected_loss, *r.expected_loss_control);
  EXPECT_EQ(r.verdict.rfind("B beats control on checkout: +12.5 % [", 0), 0u) << r.verdict;
  EXPECT_EQ(*r.p_value_adjusted, *r.p_value);  // one treatment: nothing to adjust
  ExpectNoNonFinite(*a);
}

TEST(AnalyzeMetricTest, NoDifferenceVerdict) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  std::vector<VariantData> v{Conversion("control", 5000, 500), Conversion("B", 5000, 510)};
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v);
  ASSERT_TRUE(a.ok());
  const ComparisonResult& r = a->comparisons[0];
  EXPECT_FALSE(r.significant);
  EXPECT_EQ(r.direction, Direction::kNoDifference);
  EXPECT_NE(r.verdict.find("no significant difference"), std::string::npos) << r.verdict;
}

TEST(AnalyzeMetricTest, LowerIsBetterGuardrailGetsWorse) {
  MetricSpec spec{.name = "latency_mean",
                  .kind = MetricKind::kMean,
                  .higher_is_better = false,
                  .guardrail = true};
  std::vector<VariantData> v{Mean("control", 10000, 200, 2500), Mean("B", 10000, 210, 2500)};
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v);
  ASSERT_TRUE(a.ok());
  const ComparisonResult& r = a->comparisons[0];
  EXPECT_EQ(r.direction, Direction::kWorse);
  EXPECT_LT(*r.chance_to_beat, 0.01);  // chance that B is better, i.e. faster
  EXPECT_GT(*r.expected_loss, 9);      // shipping B costs about 10 ms
  EXPECT_EQ(r.verdict, "B is worse than control on latency_mean (guardrail): +5.0 % [" +
                           r.verdict.substr(r.verdict.find('[') + 1))
      << r.verdict;

  // The same change on a lower-is-better metric in the other direction is a win.
  std::vector<VariantData> faster{Mean("control", 10000, 200, 2500), Mean("B", 10000, 190, 2500)};
  EXPECT_EQ(AnalyzeMetric(spec, faster)->comparisons[0].direction, Direction::kBetter);
}

TEST(AnalyzeMetricTest, ControlMeanZeroGivesUndefinedRelativeLift) {
  MetricSpec spec{.name = "refunds", .kind = MetricKind::kMean};
  std::vector<VariantData> v{Mean("control", 1000, 0, 0), Mean("B", 1000, 0.5, 1)};
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v);
  ASSERT_TRUE(a.ok());
  const ComparisonResult& r = a->comparisons[0];
  EXPECT_FALSE(r.lift_rel.has_value());
  EXPECT_FALSE(r.ci_rel.has_value());
  ASSERT_TRUE(r.lift_abs.has_value());
  EXPECT_TRUE(r.significant);
  // The verdict falls back to the absolute difference.
  EXPECT_EQ(r.verdict.rfind("B beats control on refunds: +0.5 [", 0), 0u) << r.verdict;
  ExpectNoNonFinite(*a);
}

TEST(AnalyzeMetricTest, EmptyAndTinyVariantsAreUndefinedNotErrors) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  std::vector<VariantData> v{Conversion("control", 0, 0), Conversion("B", 0, 0)};
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const ComparisonResult& r = a->comparisons[0];
  EXPECT_EQ(r.direction, Direction::kUndefined);
  EXPECT_FALSE(r.p_value.has_value());
  EXPECT_FALSE(r.p_value_adjusted.has_value());
  EXPECT_FALSE(r.significant);
  EXPECT_FALSE(a->variants[0].mean.has_value());
  EXPECT_EQ(r.verdict, "B vs control on checkout: not enough data: a variant has no users");

  MetricSpec mean{.name = "spend", .kind = MetricKind::kMean};
  std::vector<VariantData> one{Mean("control", 1, 3, 0), Mean("B", 50, 3, 1)};
  Result<MetricAnalysis> b = AnalyzeMetric(mean, one);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->comparisons[0].direction, Direction::kUndefined);
  EXPECT_NE(b->comparisons[0].verdict.find("fewer than 2"), std::string::npos);
  EXPECT_TRUE(b->variants[0].mean.has_value());
  EXPECT_FALSE(b->variants[0].variance.has_value());
  ExpectNoNonFinite(*b);
}

TEST(AnalyzeMetricTest, AllConvertedIsNoDifference) {
  MetricSpec spec{.name = "loaded", .kind = MetricKind::kConversion};
  std::vector<VariantData> v{Conversion("control", 300, 300), Conversion("B", 280, 280)};
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->comparisons[0].direction, Direction::kNoDifference);
  EXPECT_EQ(*a->comparisons[0].p_value, 1);
  ExpectNoNonFinite(*a);
}

TEST(AnalyzeMetricTest, HolmAndBhAcrossTreatments) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  std::vector<VariantData> v{Conversion("control", 10000, 1000), Conversion("B", 10000, 1090),
                             Conversion("C", 10000, 1040), Conversion("D", 10000, 1120)};
  Result<MetricAnalysis> holm = AnalyzeMetric(spec, v);
  ASSERT_TRUE(holm.ok());
  std::vector<double> raw;
  for (const ComparisonResult& r : holm->comparisons) raw.push_back(*r.p_value);
  std::vector<double> expected = AdjustPValues(raw, Correction::kHolm);
  for (size_t i = 0; i < raw.size(); ++i) {
    EXPECT_DOUBLE_EQ(*holm->comparisons[i].p_value_adjusted, expected[i]);
    EXPECT_GE(*holm->comparisons[i].p_value_adjusted, raw[i]);
  }
  AnalysisOptions bh_options;
  bh_options.correction = Correction::kBenjaminiHochberg;
  Result<MetricAnalysis> bh = AnalyzeMetric(spec, v, bh_options);
  ASSERT_TRUE(bh.ok());
  expected = AdjustPValues(raw, Correction::kBenjaminiHochberg);
  for (size_t i = 0; i < raw.size(); ++i) {
    EXPECT_DOUBLE_EQ(*bh->comparisons[i].p_value_adjusted, expected[i]);
  }
  EXPECT_EQ(holm->comparisons[2].variant_key, "D");
}

TEST(AnalyzeMetricTest, SequentialIsWiderAndDecides) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  // Significant at a fixed horizon, not under always-valid inference at this size.
  std::vector<VariantData> v{Conversion("control", 8000, 800), Conversion("B", 8000, 880)};
  AnalysisOptions options;
  options.sequential = true;
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v, options);
  ASSERT_TRUE(a.ok());
  const ComparisonResult& r = a->comparisons[0];
  ASSERT_TRUE(r.seq_ci_abs && r.seq_ci_rel && r.seq_p_value);
  EXPECT_LT(r.seq_ci_abs->lo, r.ci_abs->lo);
  EXPECT_GT(r.seq_ci_abs->hi, r.ci_abs->hi);
  EXPECT_LT(*r.p_value, 0.05);
  EXPECT_GE(*r.seq_p_value, 0.05);
  EXPECT_EQ(*r.p_value_adjusted, *r.seq_p_value);
  EXPECT_FALSE(r.significant);
  EXPECT_EQ(r.direction, Direction::kNoDifference);
}

TEST(AnalyzeMetricTest, CupedShrinksTheInterval) {
  MetricSpec spec{.name = "spend", .kind = MetricKind::kMean};
  std::vector<VariantData> v(2);
  for (int i = 0; i < 2; ++i) {
    v[i].key = i == 0 ? "control" : "B";
    CupedMoments c;
    Moments post;
    for (int u = 0; u < 2000; ++u) {
      double pre = (u * 37 % 101) / 10.0;
      double y = 1 + 0.9 * pre + ((u * 53 % 17) - 8) / 8.0 + 0.1 * i;
      c.Update(y, pre);
      post.Update(y);
    }
    v[i].values = post;
    v[i].cuped = c;
  }
  Result<MetricAnalysis> with = AnalyzeMetric(spec, v);
  AnalysisOptions off;
  off.use_cuped = false;
  Result<MetricAnalysis> without = AnalyzeMetric(spec, v, off);
  ASSERT_TRUE(with.ok() && without.ok());
  const ComparisonResult& r = with->comparisons[0];
  EXPECT_TRUE(r.cuped_applied);
  EXPECT_NEAR(*r.cuped_theta, 0.9, 0.05);
  double width_with = r.ci_abs->hi - r.ci_abs->lo;
  double width_without = without->comparisons[0].ci_abs->hi - without->comparisons[0].ci_abs->lo;
  EXPECT_LT(width_with, 0.5 * width_without);
  EXPECT_TRUE(with->variants[1].cuped_mean.has_value());
  EXPECT_FALSE(without->comparisons[0].cuped_applied);
}

TEST(AnalyzeMetricTest, CupedOnConversionUsesTheAdjustedWelchTest) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  std::vector<VariantData> v(2);
  std::vector<BivariateMoments> cuped(2);
  for (int i = 0; i < 2; ++i) {
    v[i].key = i == 0 ? "control" : "B";
    ProportionState conversions;
    for (int u = 0; u < 3000; ++u) {
      bool before = u % 3 == 0;                       // converted in the pre-period
      bool after = before ? u % 4 != 1 : u % 9 == i;  // mostly the same users convert again
      conversions.Update(after);
      cuped[i].Update(after ? 1 : 0, before ? 1 : 0);
    }
    v[i].conversions = conversions;
    v[i].cuped = cuped[i];
  }
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const ComparisonResult& r = a->comparisons[0];
  ASSERT_TRUE(r.cuped_applied);
  BivariateMoments pooled = cuped[0];
  pooled.Combine(cuped[1]);
  double theta = CupedTheta(cuped);
  Result<TestOutcome> expected = WelchTTest(CupedAdjust(cuped[0], theta, pooled.MeanY()),
                                            CupedAdjust(cuped[1], theta, pooled.MeanY()), 0.05);
  ASSERT_TRUE(expected.ok());
  EXPECT_DOUBLE_EQ(*r.p_value, expected->p_value);
  EXPECT_DOUBLE_EQ(*r.cuped_theta, theta);
  // The per-variant rate stays the unadjusted one; the adjusted mean is reported beside it.
  EXPECT_DOUBLE_EQ(*a->variants[1].mean, v[1].conversions.Rate());
  EXPECT_TRUE(a->variants[1].cuped_mean.has_value());
}

TEST(AnalyzeMetricTest, RejectsBadInput) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  std::vector<VariantData> one{Conversion("control", 10, 1)};
  EXPECT_EQ(AnalyzeMetric(spec, one).status().code(), StatusCode::kInvalidArgument);
  std::vector<VariantData> two{Conversion("control", 10, 1), Conversion("B", 10, 2)};
  AnalysisOptions bad_alpha;
  bad_alpha.alpha = 0;
  EXPECT_EQ(AnalyzeMetric(spec, two, bad_alpha).status().code(), StatusCode::kInvalidArgument);
  AnalysisOptions bad_control;
  bad_control.control_index = 2;
  EXPECT_EQ(AnalyzeMetric(spec, two, bad_control).status().field(), "control_index");

  // CUPED on one variant only.
  two[1].cuped = CupedMoments();
  Result<MetricAnalysis> partial = AnalyzeMetric(spec, two);
  EXPECT_EQ(partial.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(partial.status().field(), "variants[0].cuped");

  // Quantile level mismatch.
  MetricSpec p95{.name = "latency_p95", .kind = MetricKind::kQuantile, .quantile = 0.95};
  std::vector<VariantData> q(2);
  q[0].quantile = {1000, 0.95, 10, 9, 11};
  q[1].quantile = {1000, 0.5, 10, 9, 11};
  EXPECT_EQ(AnalyzeMetric(p95, q).status().field(), "variants[1].quantile.p");
  q[1].quantile = {1000, 0.95, 10, 11, 12};  // lower above the estimate
  EXPECT_EQ(AnalyzeMetric(p95, q).status().field(), "variants[1].quantile");
}

TEST(AnalyzeMetricTest, QuantileTooSmallIsUndefined) {
  MetricSpec p99{.name = "latency_p99", .kind = MetricKind::kQuantile, .quantile = 0.99};
  std::vector<VariantData> q(2);
  q[0].key = "control";
  q[1].key = "B";
  q[0].quantile = {30, 0.99, 10, 9, 11};
  q[1].quantile = {30, 0.99, 12, 9, 13};
  Result<MetricAnalysis> a = AnalyzeMetric(p99, q);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->comparisons[0].direction, Direction::kUndefined);
  EXPECT_NE(a->comparisons[0].verdict.find("sample too small"), std::string::npos)
      << a->comparisons[0].verdict;
}

TEST(AnalyzeMetricTest, ControlIndexIsRespected) {
  MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
  std::vector<VariantData> v{Conversion("B", 20000, 2250), Conversion("control", 20000, 2000)};
  AnalysisOptions options;
  options.control_index = 1;
  Result<MetricAnalysis> a = AnalyzeMetric(spec, v, options);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->comparisons.size(), 1u);
  EXPECT_EQ(a->comparisons[0].variant_key, "B");
  EXPECT_EQ(a->comparisons[0].direction, Direction::kBetter);
}

TEST(FormatPercentTest, Formats) {
  EXPECT_EQ(FormatPercent(0.041), "+4.1 %");
  EXPECT_EQ(FormatPercent(-0.032), "-3.2 %");
  EXPECT_EQ(FormatPercent(0.0001), "0.0 %");
}

}  // namespace
}  // namespace splitstream::stats

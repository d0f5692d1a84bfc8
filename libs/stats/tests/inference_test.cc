// Edge cases and invariants of the single methods (the values are pinned by golden_test.cc).
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "splitstream/stats/inference.h"

namespace splitstream::stats {
namespace {

ProportionState Proportion(int64_t n, int64_t s) {
  return ProportionState::FromCounts(n, s).value();
}

TEST(InferenceTest, CriticalValues) {
  EXPECT_NEAR(CriticalValue(0.05), 1.959963984540054, 1e-12);
  EXPECT_NEAR(CriticalValue(0.05, 10), 2.228138851986274, 1e-10);
}

TEST(InferenceTest, ZTestNeedsUsersOnBothSides) {
  Result<TestOutcome> r = TwoProportionZTest(Proportion(0, 0), Proportion(10, 2), 0.05);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("no users"), std::string::npos);
}

TEST(InferenceTest, ZTestAllConvertedIsNoDifference) {
  Result<TestOutcome> r = TwoProportionZTest(Proportion(100, 100), Proportion(80, 80), 0.05);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->p_value, 1);
  EXPECT_EQ(r->ci.lo, 0);
  EXPECT_EQ(r->ci.hi, 0);
  EXPECT_TRUE(std::isfinite(r->statistic));
}

TEST(InferenceTest, ZTestRejectsBadAlpha) {
  EXPECT_EQ(TwoProportionZTest(Proportion(10, 1), Proportion(10, 2), 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TwoProportionZTest(Proportion(10, 1), Proportion(10, 2), 1.5).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(InferenceTest, WelchEdgeCases) {
  // n = 1: no variance estimate.
  EXPECT_EQ(WelchTTest({1, 3.0, 0}, {10, 3.5, 1.0}, 0.05).status().code(),
            StatusCode::kFailedPrecondition);
  // Zero variance, equal means: nothing to see.
  Result<TestOutcome> same = WelchTTest({5, 2.0, 0}, {7, 2.0, 0}, 0.05);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->p_value, 1);
  // Zero variance, different means: undefined rather than p = 0 from a division by zero.
  EXPECT_EQ(WelchTTest({5, 2.0, 0}, {7, 3.0, 0}, 0.05).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST(InferenceTest, RelativeLiftUndefinedForZeroControl) {
  Result<Lift> l = RelativeLift(0, 0.1, 1.0, 0.1, 1.96);
  EXPECT_EQ(l.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(l.status().message().find("control is 0"), std::string::npos);
}

TEST(InferenceTest, DeltaMethodRatioNeedsDenominator) {
  BivariateMoments m;
  m.Update(1, 0);
  m.Update(2, 0);
  EXPECT_EQ(DeltaMethodRatio(m).status().code(), StatusCode::kFailedPrecondition);
}

TEST(InferenceTest, BetaChanceIsSymmetric) {
  ProportionState a = Proportion(1000, 110);
  ProportionState b = Proportion(1200, 120);
  Result<BayesOutcome> ab = BetaChanceToBeat(a, b, 1, 1);
  Result<BayesOutcome> ba = BetaChanceToBeat(b, a, 1, 1);
  ASSERT_TRUE(ab.ok() && ba.ok());
  EXPECT_NEAR(ab->chance_to_beat + ba->chance_to_beat, 1, 1e-10);
  EXPECT_NEAR(ab->loss_choose_treatment, ba->loss_choose_control, 1e-12);
  EXPECT_EQ(BetaChanceToBeat(a, b, 0, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(InferenceTest, NormalChanceWithoutVariance) {
  BayesOutcome up = NormalChanceToBeat(0.5, 0);
  EXPECT_EQ(up.chance_to_beat, 1);
  EXPECT_EQ(up.loss_choose_treatment, 0);
  EXPECT_EQ(up.loss_choose_control, 0.5);
  EXPECT_EQ(NormalChanceToBeat(0, 0).chance_to_beat, 0.5);
}

TEST(InferenceTest, SequentialIsWiderAndConsistentWithItsPValue) {
  for (double est : {0.0, 0.005, 0.01, 0.02, -0.03}) {
    for (int64_t n : {1000, 20000, 500000}) {
      double se = 0.9 / std::sqrt(static_cast<double>(n));
      Result<SequentialOutcome> seq = SequentialInterval(est, se, n, 0.05, 5000);
      ASSERT_TRUE(seq.ok());
      EXPECT_GT(seq->half_width, CriticalValue(0.05) * se);
      bool excludes_zero = seq->ci.lo > 0 || seq->ci.hi < 0;
      EXPECT_EQ(excludes_zero, seq->p_value < 0.05) << est << " " << n;
    }
  }
  EXPECT_EQ(SequentialInterval(0, 1, 100, 0.05, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SequentialInterval(0, 1, 0, 0.05, 10).status().code(), StatusCode::kInvalidArgument);
}

TEST(InferenceTest, CupedThetaWithoutPreVarianceIsZero) {
  BivariateMoments m;
  m.Update(1, 5);
  m.Update(3, 5);
  std::vector<BivariateMoments> v{m, m};
  EXPECT_EQ(CupedTheta(v), 0);
  SampleSummary s = CupedAdjust(m, 0, 5);
  EXPECT_EQ(s.mean, 2);
  EXPECT_EQ(s.variance, 2);
}

TEST(InferenceTest, QuantileLevelsNeedEnoughData) {
  Result<QuantileLevels> ok = LevelsForQuantile(0.95, 10000, 0.05);
  ASSERT_TRUE(ok.ok());
  EXPECT_LT(ok->lower, 0.95);
  EXPECT_GT(ok->upper, 0.95);
  EXPECT_EQ(LevelsForQuantile(0.99, 20, 0.05).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(LevelsForQuantile(0.5, 0, 0.05).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(LevelsForQuantile(1.0, 100, 0.05).status().code(), StatusCode::kInvalidArgument);
  QuantileSample bad{1000, 0.5, 10, 12, 14};  // lower above the estimate
  EXPECT_EQ(QuantileVariance(bad, 0.05).status().code(), StatusCode::kInvalidArgument);
}

TEST(InferenceTest, SrmValidatesInput) {
  std::vector<int64_t> counts{10, 20};
  std::vector<double> one_weight{1};
  std::vector<double> bad_weights{1, 0};
  std::vector<double> weights{1, 1};
  EXPECT_EQ(SampleRatioMismatch(counts, one_weight).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SampleRatioMismatch(counts, bad_weights).status().code(), StatusCode::kInvalidArgument);
  std::vector<int64_t> negative{10, -1};
  EXPECT_EQ(SampleRatioMismatch(negative, weights).status().code(), StatusCode::kInvalidArgument);
  std::vector<int64_t> none{0, 0};
  Result<SrmResult> empty = SampleRatioMismatch(none, weights);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->p_value, 1);
  EXPECT_FALSE(empty->mismatch);
}

TEST(InferenceTest, AdjustedPValuesAreMonotoneAndCapped) {
  std::vector<double> p{0.04, 0.001, 0.3, 0.02, 0.9};
  for (Correction c : {Correction::kHolm, Correction::kBenjaminiHochberg}) {
    std::vector<double> adj = AdjustPValues(p, c);
    ASSERT_EQ(adj.size(), p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_GE(adj[i], p[i]);
      EXPECT_LE(adj[i], 1);
      for (size_t j = 0; j < p.size(); ++j) {
        if (p[i] < p[j]) {
          EXPECT_LE(adj[i], adj[j]);
        }
      }
    }
  }
  EXPECT_EQ(AdjustPValues(p, Correction::kNone), p);
  EXPECT_TRUE(AdjustPValues({}, Correction::kHolm).empty());
}

}  // namespace
}  // namespace splitstream::stats

// Property tests of the mergeable states: combining partial states built from random splits
// of the data equals one pass, and the From* factories agree with Update.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "splitstream/stats/moments.h"

namespace splitstream::stats {
namespace {

// Relative closeness for sums of many terms.
void ExpectClose(double got, double want, double rel = 1e-10) {
  EXPECT_LE(std::abs(got - want), rel * std::max(1.0, std::abs(want)))
      << "got " << got << " want " << want;
}

// Random cut points splitting [0, n) into `parts` pieces (some possibly empty).
std::vector<size_t> RandomCuts(size_t n, int parts, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, n);
  std::vector<size_t> cuts{0, n};
  for (int i = 1; i < parts; ++i) cuts.push_back(pick(rng));
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

TEST(MomentsTest, CombineOfRandomSplitsEqualsOnePass) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> value(3.0, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    size_t n = 1 + rng() % 500;
    std::vector<double> xs(n);
    for (double& x : xs) x = value(rng) + 1e6 * (trial % 3 == 0);  // some with a large mean
    Moments one_pass;
    for (double x : xs) one_pass.Update(x);

    std::vector<size_t> cuts = RandomCuts(n, 1 + static_cast<int>(rng() % 6), rng);
    std::vector<Moments> parts;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      Moments m;
      for (size_t i = cuts[k]; i < cuts[k + 1]; ++i) m.Update(xs[i]);
      parts.push_back(m);
    }
    // Merge in a random order, as partial aggregates arrive.
    std::shuffle(parts.begin(), parts.end(), rng);
    Moments merged;
    for (const Moments& m : parts) merged.Combine(m);

    ASSERT_EQ(merged.n(), one_pass.n());
    ExpectClose(merged.Mean(), one_pass.Mean(), 1e-12);
    ExpectClose(merged.M2(), one_pass.M2(), 1e-9);
    ExpectClose(merged.Variance(), one_pass.Variance(), 1e-9);
  }
}

TEST(MomentsTest, WelfordIsStableForLargeMeans) {
  // Naive sum_sq - sum^2/n loses all digits here; Welford keeps the variance exactly 1.
  Moments m;
  for (int i = 0; i < 1000; ++i) m.Update(1e9 + (i % 2 == 0 ? 1.0 : -1.0));
  EXPECT_NEAR(m.Variance(), 1000.0 / 999.0, 1e-6);
}

TEST(MomentsTest, FromSumsAgreesWithUpdate) {
  std::vector<double> xs = {1.5, 2.0, 7.25, 3.0, 0.0, 11.0};
  Moments m;
  double sum = 0, sum_sq = 0;
  for (double x : xs) {
    m.Update(x);
    sum += x;
    sum_sq += x * x;
  }
  Result<Moments> f = Moments::FromSums(static_cast<int64_t>(xs.size()), sum, sum_sq);
  ASSERT_TRUE(f.ok());
  ExpectClose(f->Mean(), m.Mean());
  ExpectClose(f->Variance(), m.Variance());
  ExpectClose(f->Sum(), sum);
  Result<Moments> g = Moments::FromMeanVariance(m.n(), m.Mean(), m.Variance());
  ASSERT_TRUE(g.ok());
  ExpectClose(g->M2(), m.M2());
}

TEST(MomentsTest, EdgeCases) {
  Moments empty;
  EXPECT_EQ(empty.n(), 0);
  EXPECT_EQ(empty.Mean(), 0);
  EXPECT_EQ(empty.Variance(), 0);
  SampleSummary s = empty.Finalize();
  EXPECT_EQ(s.n, 0);

  Moments one;
  one.Update(5);
  EXPECT_EQ(one.Mean(), 5);
  EXPECT_EQ(one.Variance(), 0);  // undefined sample variance reported as 0 with n < 2

  Moments constant = Moments::FromSums(3, 3.3, 3.63).value();  // 1.1 three times, rounded
  EXPECT_GE(constant.M2(), 0);
  EXPECT_NEAR(constant.Variance(), 0, 1e-12);

  // Combining with empty is the identity, both ways.
  Moments a = one;
  a.Combine(empty);
  EXPECT_EQ(a.n(), 1);
  empty.Combine(one);
  EXPECT_EQ(empty.Mean(), 5);
}

TEST(MomentsTest, FactoriesRejectInconsistentInput) {
  EXPECT_EQ(Moments::FromSums(-1, 0, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Moments::FromSums(0, 1, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Moments::FromSums(10, 10, 5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Moments::FromSums(2, NAN, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Moments::FromMeanVariance(5, 1, -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ProportionState::FromCounts(10, 11).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ProportionState::FromCounts(10, -1).status().code(), StatusCode::kInvalidArgument);
  // |cov| > sqrt(var_x var_y) is impossible.
  EXPECT_EQ(BivariateMoments::FromSums(3, 0, 0, 2, 2, 10).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(BivariateMoments::FromSums(0, 0, 0, 0, 0, 0).ok());
}

TEST(ProportionStateTest, CombineOfRandomSplitsEqualsOnePass) {
  std::mt19937_64 rng(7);
  std::bernoulli_distribution converted(0.13);
  std::vector<bool> xs(1000);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = converted(rng);
  ProportionState one_pass;
  for (bool x : xs) one_pass.Update(x);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<size_t> cuts = RandomCuts(xs.size(), 1 + trial % 7, rng);
    ProportionState merged;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      ProportionState part;
      for (size_t i = cuts[k]; i < cuts[k + 1]; ++i) part.Update(xs[i]);
      merged.Combine(part);
    }
    EXPECT_EQ(merged.n(), one_pass.n());
    EXPECT_EQ(merged.successes(), one_pass.successes());
  }
  SampleSummary s = one_pass.Finalize();
  EXPECT_DOUBLE_EQ(s.variance, s.mean * (1 - s.mean));
}

TEST(BivariateMomentsTest, CombineOfRandomSplitsEqualsOnePass) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0, 3);
  std::gamma_distribution<double> pre(2.0, 5.0);
  for (int trial = 0; trial < 100; ++trial) {
    size_t n = 2 + rng() % 400;
    std::vector<std::pair<double, double>> xy(n);
    for (auto& [x, y] : xy) {
      y = pre(rng);
      x = 1 + 0.7 * y + noise(rng);
    }
    BivariateMoments one_pass;
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (auto [x, y] : xy) {
      one_pass.Update(x, y);
      sx += x;
      sy += y;
      sxx += x * x;
      syy += y * y;
      sxy += x * y;
    }
    std::vector<size_t> cuts = RandomCuts(n, 1 + static_cast<int>(rng() % 5), rng);
    BivariateMoments merged;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      BivariateMoments part;
      for (size_t i = cuts[k]; i < cuts[k + 1]; ++i) part.Update(xy[i].first, xy[i].second);
      merged.Combine(part);
    }
    ASSERT_EQ(merged.n(), one_pass.n());
    ExpectClose(merged.MeanX(), one_pass.MeanX(), 1e-12);
    ExpectClose(merged.MeanY(), one_pass.MeanY(), 1e-12);
    ExpectClose(merged.VarianceX(), one_pass.VarianceX(), 1e-9);
    ExpectClose(merged.VarianceY(), one_pass.VarianceY(), 1e-9);
    ExpectClose(merged.Covariance(), one_pass.Covariance(), 1e-9);

    Result<BivariateMoments> f =
        BivariateMoments::FromSums(static_cast<int64_t>(n), sx, sy, sxx, syy, sxy);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ExpectClose(f->Covariance(), one_pass.Covariance(), 1e-8);
    ExpectClose(f->VarianceY(), one_pass.VarianceY(), 1e-8);
  }
}

}  // namespace
}  // namespace splitstream::stats

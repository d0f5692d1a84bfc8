// The statistical methods, one function each, on sufficient statistics. AnalyzeMetric
// (analysis.h) composes them; they are public so that the methods can be tested one by one
// against SciPy (tests/testdata/*.test) and reused, e.g. to adjust p-values across metrics.
//
// Formulas and references are in docs/statistics.md. Conventions:
//   - "difference" is treatment - control; "lift" is treatment / control - 1.
//   - alpha is the two-sided error rate; intervals are (1 - alpha) two-sided.
//   - A test that cannot be computed from the data (no users, no variance, control mean 0
//     for a relative lift) returns FailedPrecondition with a plain reason; AnalyzeMetric
//     turns it into "undefined" fields and a verdict, never inf or NaN.
//   - Parameters out of range (alpha outside (0, 1), negative counts, ...) return
//     InvalidArgument.
// Pure functions: no I/O, thread-safe.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/stats/moments.h"

namespace splitstream::stats {

struct Interval {
  double lo = 0;
  double hi = 0;
};

// A normal or Student-t test of a difference (or a lift) estimate.
struct TestOutcome {
  double estimate = 0;
  double std_error = 0;
  double statistic = 0;                                 // estimate / std_error (0 when both are 0)
  double df = std::numeric_limits<double>::infinity();  // infinity: normal reference
  double p_value = 1;                                   // two-sided
  Interval ci;                                          // estimate -/+ critical * std_error
};

// Two-sided critical value: the 1 - alpha/2 quantile of Student's t with df degrees of
// freedom, or of the standard normal when df is infinite.
double CriticalValue(double alpha, double df = std::numeric_limits<double>::infinity());

// Two-sided test of `estimate` with standard error `std_error` against 0. With
// std_error == 0: estimate 0 gives p = 1 and the interval [0, 0]; any other estimate is
// FailedPrecondition ("no variance").
Result<TestOutcome> TestEstimate(double estimate, double std_error, double alpha,
                                 double df = std::numeric_limits<double>::infinity());

// Two-proportion z-test of rate_t - rate_c. The p-value uses the POOLED rate under H0
// (p = (s_c + s_t) / (n_c + n_t), se0 = sqrt(p (1 - p) (1/n_c + 1/n_t)); statsmodels
// proportions_ztest's default); the interval uses the UNPOOLED (Wald) standard error
// sqrt(r_c (1 - r_c) / n_c + r_t (1 - r_t) / n_t), which TestOutcome::std_error reports.
// FailedPrecondition when a side has no users.
Result<TestOutcome> TwoProportionZTest(const ProportionState& control,
                                       const ProportionState& treatment, double alpha);

// Welch's unequal-variance t-test of mean_t - mean_c with the Welch-Satterthwaite degrees of
// freedom; the same as scipy.stats.ttest_ind_from_stats(..., equal_var=False).
// FailedPrecondition when a side has fewer than 2 observations.
Result<TestOutcome> WelchTTest(const SampleSummary& control, const SampleSummary& treatment,
                               double alpha);

// A ratio of means mean_x / mean_y and the delta-method variance of that ratio:
//   Var(R) = (1/n) (s_x^2 / m_y^2 - 2 m_x s_xy / m_y^3 + m_x^2 s_y^2 / m_y^4).
struct RatioEstimate {
  double ratio = 0;
  double variance = 0;  // of the ratio estimate (already divided by n)
};
// FailedPrecondition when n < 2 or mean_y == 0.
Result<RatioEstimate> DeltaMethodRatio(const BivariateMoments& m);

// Relative lift t/c - 1 of two independent estimates c and t with variances var_c, var_t
// (of the estimates, not per observation): the delta method gives
//   Var(lift) = var_t / c^2 + t^2 var_c / c^4.
// The interval uses `critical`. FailedPrecondition when c == 0 ("relative lift undefined:
// control is 0").
struct Lift {
  double lift = 0;
  double std_error = 0;
  Interval ci;
};
Result<Lift> RelativeLift(double c, double var_c, double t, double var_t, double critical);

// Bayesian comparison: chance that the treatment is better and the expected loss of each
// choice, in the metric's absolute units:
//   chance_to_beat = P(T > C), loss_choose_treatment = E[max(C - T, 0)],
//   loss_choose_control = E[max(T - C, 0)]  (for higher-is-better; the caller flips for lower).
struct BayesOutcome {
  double chance_to_beat = 0.5;
  double loss_choose_treatment = 0;
  double loss_choose_control = 0;
};

// Beta-Binomial: the rates have posteriors Beta(prior_a + s, prior_b + n - s).
//   P(T > C) = integral f_C(x) (1 - F_T(x)) dx           over C's support,
//   E[max(C - T, 0)] = integral F_T(y) (1 - F_C(y)) dy   over both supports (and the mirror),
// by tanh-sinh quadrature on panels cut at quantiles of both posteriors; supports are cut at
// their 1e-15 tails. About 1-20 ms for up to 1e8 users per arm; thread-safe (one quadrature
// table per thread). InvalidArgument for non-positive prior parameters.
Result<BayesOutcome> BetaChanceToBeat(const ProportionState& control,
                                      const ProportionState& treatment, double prior_a,
                                      double prior_b);

// Normal approximation (flat prior): the difference D = T - C ~ N(difference, std_error^2):
// chance = Phi(d / s), E[max(-D, 0)] = s phi(d / s) - d Phi(-d / s), E[max(D, 0)] likewise.
// std_error == 0 gives 0, 0.5 or 1 and exact losses.
BayesOutcome NormalChanceToBeat(double difference, double std_error);

// Always-valid (sequential) inference: the asymptotic confidence sequence of Waudby-Smith,
// Arnold, Wu, Howard, Ramdas (2023, "Anytime-valid off-policy inference for contextual
// bandits"/"Time-uniform central limit theory", arXiv:2103.06476), in GrowthBook's form:
//   rho = sqrt((-2 ln(alpha) + ln(-2 ln(alpha) + 1)) / N*),
//   half width = sqrt(N) * se * sqrt(2 (N rho^2 + 1) / (N^2 rho^2) * ln(sqrt(N rho^2 + 1)/alpha))
// with N the total users of the two variants and N* the tuning parameter (the total sample
// size at which the sequence is narrowest). The always-valid p-value is 1 / e-value, capped
// at 1, with e-value = exp(rho^2 N (estimate/se)^2 / (2 (N rho^2 + 1))) / sqrt(N rho^2 + 1)
// (arXiv:2103.06476v7 eq. 155); p < alpha exactly when the sequence excludes 0.
struct SequentialOutcome {
  Interval ci;
  double p_value = 1;
  double half_width = 0;
};
// InvalidArgument for tuning <= 0 or total_n <= 0.
Result<SequentialOutcome> SequentialInterval(double estimate, double std_error, int64_t total_n,
                                             double alpha, double tuning);

// CUPED (Deng, Xu, Kohavi, Walker, "Improving the sensitivity of online controlled
// experiments by utilizing pre-experiment data", WSDM 2013): theta pooled across variants,
//   theta = Cov(x, y) / Var(y) over all users of all variants (y = pre value),
// then per variant the adjusted mean mean_x - theta (mean_y - pooled mean_y) and the
// adjusted per-user variance s_x^2 - 2 theta s_xy + theta^2 s_y^2.
// theta is 0 when the pooled pre-period variance is 0 (no adjustment).
double CupedTheta(std::span<const BivariateMoments> variants);
SampleSummary CupedAdjust(const BivariateMoments& variant, double theta, double pooled_mean_y);

// Quantile metrics. The CI of a sample quantile comes from the order-statistic (binomial)
// interval: the ranks n p -/+ z sqrt(n p (1 - p)) hold the quantile with probability
// 1 - alpha, so the caller supplies, besides the estimate at p, the sample quantiles at
//   lower = p - z sqrt(p (1 - p) / n),  upper = p + z sqrt(p (1 - p) / n),
// z = CriticalValue(alpha). QuantileLevels computes the three levels for a sample of n users.
// The standard error of the estimate is (value_upper - value_lower) / (2 z) and differences
// of quantiles use a normal test.
struct QuantileLevels {
  double lower = 0;
  double p = 0.5;
  double upper = 1;
};
// FailedPrecondition when n is too small for the interval to fit in (0, 1) ("sample too
// small for quantile p"); InvalidArgument for p outside (0, 1).
Result<QuantileLevels> LevelsForQuantile(double p, int64_t n, double alpha);

// What ClickHouse returns for one variant (e.g. quantilesExact(lower, p, upper)(value)).
struct QuantileSample {
  int64_t n = 0;        // values the quantile was computed over
  double p = 0.5;       // the quantile level
  double estimate = 0;  // the sample quantile at p
  double lower = 0;     // the sample quantile at LevelsForQuantile(p, n, alpha).lower
  double upper = 0;     // ... at .upper
};
// The estimate and its variance (se^2). Errors: InvalidArgument when lower > estimate or
// estimate > upper; FailedPrecondition as LevelsForQuantile.
Result<double> QuantileVariance(const QuantileSample& sample, double alpha);

// Sample-ratio mismatch: Pearson's chi-square goodness-of-fit of the observed counts against
// the configured weights (normalised to sum 1), k - 1 degrees of freedom, as
// scipy.stats.chisquare(counts, total * weights / sum(weights)). mismatch = p < threshold.
struct SrmResult {
  double chi2 = 0;
  double p_value = 1;
  bool mismatch = false;
};
// InvalidArgument for fewer than 2 variants, different lengths, negative counts or
// non-positive weights. No users at all gives chi2 = 0, p = 1.
Result<SrmResult> SampleRatioMismatch(std::span<const int64_t> counts,
                                      std::span<const double> weights, double threshold = 0.001);

// Multiple comparisons.
enum class Correction { kHolm, kBenjaminiHochberg, kNone };
// Adjusted p-values, in the input order, capped at 1, as statsmodels multipletests
// ('holm': step-down max of (m - i) p_(i); 'fdr_bh': step-up min of m p_(i) / (i + 1)).
std::vector<double> AdjustPValues(std::span<const double> p_values, Correction correction);

}  // namespace splitstream::stats

#include "splitstream/stats/inference.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/chi_squared.hpp>
#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/quadrature/tanh_sinh.hpp>

#include "policy.h"

namespace splitstream::stats {
namespace {

using boost::math::cdf;
using boost::math::complement;
using boost::math::pdf;
using boost::math::quantile;

// The share of the control posterior left out of the Beta integrals, in each tail.
constexpr double kBetaTail = 1e-15;

Status CheckAlpha(double alpha) {
  if (!(alpha > 0 && alpha < 1)) return Status::InvalidArgument("alpha must be in (0, 1)");
  return Status::Ok();
}

double TwoSidedP(double statistic, double df) {
  double a = std::abs(statistic);
  if (std::isinf(df)) return 2 * cdf(complement(Normal(0, 1), a));
  return 2 * cdf(complement(StudentsT(df), a));
}

}  // namespace

double CriticalValue(double alpha, double df) {
  if (std::isinf(df)) return quantile(complement(Normal(0, 1), alpha / 2));
  return quantile(complement(StudentsT(df), alpha / 2));
}

Result<TestOutcome> TestEstimate(double estimate, double std_error, double alpha, double df) {
  SPLITSTREAM_RETURN_IF_ERROR(CheckAlpha(alpha));
  if (!std::isfinite(estimate) || !std::isfinite(std_error) || std_error < 0 || !(df > 0)) {
    return Status::InvalidArgument("estimate and standard error must be finite, df > 0");
  }
  TestOutcome out;
  out.estimate = estimate;
  out.std_error = std_error;
  out.df = df;
  if (std_error == 0) {
    if (estimate != 0) return Status::FailedPrecondition("no variance in the data");
    out.statistic = 0;
    out.p_value = 1;
    out.ci = {0, 0};
    return out;
  }
  out.statistic = estimate / std_error;
  out.p_value = TwoSidedP(out.statistic, df);
  double half = CriticalValue(alpha, df) * std_error;
  out.ci = {estimate - half, estimate + half};
  return out;
}

Result<TestOutcome> TwoProportionZTest(const ProportionState& control,
                                       const ProportionState& treatment, double alpha) {
  SPLITSTREAM_RETURN_IF_ERROR(CheckAlpha(alpha));
  if (control.n() == 0 || treatment.n() == 0) {
    return Status::FailedPrecondition("not enough data: a variant has no users");
  }
  double nc = static_cast<double>(control.n());
  double nt = static_cast<double>(treatment.n());
  double rc = control.Rate();
  double rt = treatment.Rate();
  double diff = rt - rc;
  double se = std::sqrt(rc * (1 - rc) / nc + rt * (1 - rt) / nt);
  double pooled = static_cast<double>(control.successes() + treatment.successes()) / (nc + nt);
  double se0 = std::sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt));

  TestOutcome out;
  out.estimate = diff;
  out.std_error = se;
  if (se0 == 0) {
    // Both variants all-converted or none converted: no difference at all.
    out.statistic = 0;
    out.p_value = 1;
    out.ci = {0, 0};
    return out;
  }
  out.statistic = diff / se0;
  out.p_value = TwoSidedP(out.statistic, out.df);
  double half = CriticalValue(alpha) * se;
  out.ci = {diff - half, diff + half};
  return out;
}

Result<TestOutcome> WelchTTest(const SampleSummary& control, const SampleSummary& treatment,
                               double alpha) {
  SPLITSTREAM_RETURN_IF_ERROR(CheckAlpha(alpha));
  if (control.n < 2 || treatment.n < 2) {
    return Status::FailedPrecondition("not enough data: a variant has fewer than 2 users");
  }
  double vc = control.variance / static_cast<double>(control.n);
  double vt = treatment.variance / static_cast<double>(treatment.n);
  double se2 = vc + vt;
  double diff = treatment.mean - control.mean;
  // Welch-Satterthwaite; with no variance the df does not matter (TestEstimate handles se 0).
  double df = std::numeric_limits<double>::infinity();
  if (se2 > 0) {
    df = se2 * se2 /
         (vc * vc / static_cast<double>(control.n - 1) +
          vt * vt / static_cast<double>(treatment.n - 1));
  }
  return TestEstimate(diff, std::sqrt(se2), alpha, df);
}

Result<RatioEstimate> DeltaMethodRatio(const BivariateMoments& m) {
  if (m.n() < 2) return Status::FailedPrecondition("not enough data: fewer than 2 users");
  double mx = m.MeanX();
  double my = m.MeanY();
  if (my == 0) return Status::FailedPrecondition("ratio undefined: denominator sum is 0");
  double n = static_cast<double>(m.n());
  RatioEstimate r;
  r.ratio = mx / my;
  double v = m.VarianceX() / (my * my) - 2 * mx * m.Covariance() / (my * my * my) +
             mx * mx * m.VarianceY() / (my * my * my * my);
  r.variance = std::max(0.0, v) / n;
  return r;
}

Result<Lift> RelativeLift(double c, double var_c, double t, double var_t, double critical) {
  if (c == 0) return Status::FailedPrecondition("relative lift undefined: control is 0");
  if (!std::isfinite(c) || !std::isfinite(t) || !(var_c >= 0) || !(var_t >= 0) ||
      !std::isfinite(var_c) || !std::isfinite(var_t)) {
    return Status::InvalidArgument("relative lift needs finite inputs and variances >= 0");
  }
  Lift out;
  out.lift = t / c - 1;
  double c2 = c * c;
  out.std_error = std::sqrt(var_t / c2 + t * t * var_c / (c2 * c2));
  double half = critical * out.std_error;
  out.ci = {out.lift - half, out.lift + half};
  return out;
}

Result<BayesOutcome> BetaChanceToBeat(const ProportionState& control,
                                      const ProportionState& treatment, double prior_a,
                                      double prior_b) {
  if (!(prior_a > 0) || !(prior_b > 0) || !std::isfinite(prior_a) || !std::isfinite(prior_b)) {
    return Status::InvalidArgument("Beta prior parameters must be positive");
  }
  double ac = prior_a + static_cast<double>(control.successes());
  double bc = prior_b + static_cast<double>(control.n() - control.successes());
  double at = prior_a + static_cast<double>(treatment.successes());
  double bt = prior_b + static_cast<double>(treatment.n() - treatment.successes());
  Beta post_c(ac, bc);
  Beta post_t(at, bt);

  // The integrals are cut into panels at quantiles of both posteriors: a narrow posterior
  // makes an integrand a near-step that an adaptive rule can miss entirely, and a prior below
  // 1 with no successes makes f_C singular at 0. tanh-sinh handles the endpoint behaviour of
  // each panel. Outside [lo, hi] of a posterior lies 2e-15 of its mass.
  const double lo_c = quantile(post_c, kBetaTail);
  const double hi_c = quantile(complement(post_c, kBetaTail));
  const double lo_t = quantile(post_t, kBetaTail);
  const double hi_t = quantile(complement(post_t, kBetaTail));
  auto panels = [&](double lo, double hi) {
    std::vector<double> cuts{lo, hi};
    for (const Beta* dist : {&post_c, &post_t}) {
      for (double q : {1e-12, 1e-6, 0.5}) {
        for (double x : {quantile(*dist, q), quantile(complement(*dist, q))}) {
          if (x > lo && x < hi) cuts.push_back(x);
        }
      }
    }
    std::sort(cuts.begin(), cuts.end());
    // Panels narrower than rounding would make tanh-sinh evaluate at its endpoints.
    std::vector<double> kept{cuts.front()};
    for (double x : cuts) {
      if (x - kept.back() > std::max(1e-9 * (hi - lo), 1e-12 * std::abs(x))) kept.push_back(x);
    }
    kept.back() = hi;
    return kept;
  };
  // One per thread: integrate() is not const in Boost 1.74, and building the tables costs.
  thread_local boost::math::quadrature::tanh_sinh<double> integrator(10);
  constexpr double kTolerance = 1e-8;
  auto integrate = [&](const std::vector<double>& cuts, auto f) {
    double sum = 0;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      sum += integrator.integrate(f, cuts[i], cuts[i + 1], kTolerance);
    }
    return sum;
  };

  // P(T > C) = integral f_C(x) (1 - F_T(x)) dx over C's support.
  double chance = integrate(panels(lo_c, hi_c),
                            [&](double x) { return pdf(post_c, x) * cdf(complement(post_t, x)); });
  // E[max(C - T, 0)] = integral P(T <= y < C) dy = integral F_T(y) (1 - F_C(y)) dy, and the
  // mirror image for E[max(T - C, 0)]: products of probabilities, free of cancellation, over
  // the union of the supports.
  std::vector<double> both = panels(std::min(lo_c, lo_t), std::max(hi_c, hi_t));
  double loss_t =
      integrate(both, [&](double y) { return cdf(post_t, y) * cdf(complement(post_c, y)); });
  double loss_c =
      integrate(both, [&](double y) { return cdf(post_c, y) * cdf(complement(post_t, y)); });
  BayesOutcome out;
  out.chance_to_beat = std::clamp(chance, 0.0, 1.0);
  out.loss_choose_treatment = std::max(0.0, loss_t);
  out.loss_choose_control = std::max(0.0, loss_c);
  return out;
}

BayesOutcome NormalChanceToBeat(double difference, double std_error) {
  BayesOutcome out;
  if (std_error <= 0) {
    out.chance_to_beat = difference > 0 ? 1.0 : (difference < 0 ? 0.0 : 0.5);
    out.loss_choose_treatment = std::max(0.0, -difference);
    out.loss_choose_control = std::max(0.0, difference);
    return out;
  }
  Normal standard(0, 1);
  double z = difference / std_error;
  double density = pdf(standard, z);
  out.chance_to_beat = cdf(standard, z);
  // D ~ N(d, s^2): E[max(-D, 0)] = s phi(d/s) - d Phi(-d/s); E[max(D, 0)] = s phi + d Phi(d/s).
  out.loss_choose_treatment = std_error * density - difference * cdf(complement(standard, z));
  out.loss_choose_control = std_error * density + difference * out.chance_to_beat;
  return out;
}

Result<SequentialOutcome> SequentialInterval(double estimate, double std_error, int64_t total_n,
                                             double alpha, double tuning) {
  SPLITSTREAM_RETURN_IF_ERROR(CheckAlpha(alpha));
  if (!(tuning > 0) || !std::isfinite(tuning)) {
    return Status::InvalidArgument("sequential tuning parameter must be positive");
  }
  if (total_n <= 0) return Status::InvalidArgument("sequential interval needs users");
  if (!std::isfinite(estimate) || !std::isfinite(std_error) || std_error < 0) {
    return Status::InvalidArgument("estimate and standard error must be finite");
  }
  double n = static_cast<double>(total_n);
  double log_alpha = std::log(alpha);
  double rho2 = (-2 * log_alpha + std::log(-2 * log_alpha + 1)) / tuning;
  double nr2p1 = n * rho2 + 1;
  double s2 = std_error * std_error * n;  // per-observation variance scale
  SequentialOutcome out;
  out.half_width =
      std::sqrt(s2) * std::sqrt(2 * nr2p1 * std::log(std::sqrt(nr2p1) / alpha) / (n * n * rho2));
  out.ci = {estimate - out.half_width, estimate + out.half_width};
  if (std_error == 0) {
    out.p_value = estimate == 0 ? 1.0 : 0.0;
    return out;
  }
  double z2n = estimate * estimate * n / s2 * n;  // (estimate / se)^2 * n
  // log e-value = rho^2 z2n / (2 (n rho^2 + 1)) - ln(sqrt(n rho^2 + 1)); p = min(1, 1/e).
  double log_e = rho2 * z2n / (2 * nr2p1) - 0.5 * std::log(nr2p1);
  out.p_value = log_e <= 0 ? 1.0 : std::exp(-log_e);
  return out;
}

double CupedTheta(std::span<const BivariateMoments> variants) {
  BivariateMoments pooled;
  for (const BivariateMoments& v : variants) pooled.Combine(v);
  if (pooled.M2Y() <= 0) return 0;
  return pooled.CoMoment() / pooled.M2Y();
}

SampleSummary CupedAdjust(const BivariateMoments& variant, double theta, double pooled_mean_y) {
  SampleSummary out;
  out.n = variant.n();
  out.mean = variant.MeanX() - theta * (variant.MeanY() - pooled_mean_y);
  double v =
      variant.VarianceX() - 2 * theta * variant.Covariance() + theta * theta * variant.VarianceY();
  out.variance = std::max(0.0, v);
  return out;
}

Result<QuantileLevels> LevelsForQuantile(double p, int64_t n, double alpha) {
  SPLITSTREAM_RETURN_IF_ERROR(CheckAlpha(alpha));
  if (!(p > 0 && p < 1)) return Status::InvalidArgument("quantile level must be in (0, 1)");
  if (n <= 0) return Status::FailedPrecondition("not enough data: no values");
  double d = CriticalValue(alpha) * std::sqrt(p * (1 - p) / static_cast<double>(n));
  QuantileLevels levels{p - d, p, p + d};
  if (levels.lower <= 0 || levels.upper >= 1) {
    return Status::FailedPrecondition("not enough data: sample too small for quantile " +
                                      std::to_string(p));
  }
  return levels;
}

Result<double> QuantileVariance(const QuantileSample& sample, double alpha) {
  SPLITSTREAM_ASSIGN_OR_RETURN(QuantileLevels levels, LevelsForQuantile(sample.p, sample.n, alpha));
  (void)levels;
  if (!std::isfinite(sample.lower) || !std::isfinite(sample.estimate) ||
      !std::isfinite(sample.upper) || sample.lower > sample.estimate ||
      sample.estimate > sample.upper) {
    return Status::InvalidArgument("quantile values must be finite and lower <= estimate <= upper");
  }
  double se = (sample.upper - sample.lower) / (2 * CriticalValue(alpha));
  return se * se;
}

Result<SrmResult> SampleRatioMismatch(std::span<const int64_t> counts,
                                      std::span<const double> weights, double threshold) {
  if (counts.size() < 2) return Status::InvalidArgument("SRM needs at least 2 variants");
  if (counts.size() != weights.size()) {
    return Status::InvalidArgument("SRM needs one weight per variant");
  }
  double total = 0;
  double weight_sum = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0) return Status::InvalidArgument("negative count", "counts");
    if (!(weights[i] > 0) || !std::isfinite(weights[i])) {
      return Status::InvalidArgument("weights must be positive", "weights");
    }
    total += static_cast<double>(counts[i]);
    weight_sum += weights[i];
  }
  SrmResult out;
  if (total == 0) return out;
  for (size_t i = 0; i < counts.size(); ++i) {
    double expected = total * weights[i] / weight_sum;
    double d = static_cast<double>(counts[i]) - expected;
    out.chi2 += d * d / expected;
  }
  ChiSquared dist(static_cast<double>(counts.size() - 1));
  out.p_value = cdf(complement(dist, out.chi2));
  out.mismatch = out.p_value < threshold;
  return out;
}

std::vector<double> AdjustPValues(std::span<const double> p_values, Correction correction) {
  std::vector<double> adjusted(p_values.begin(), p_values.end());
  size_t m = p_values.size();
  if (correction == Correction::kNone || m == 0) return adjusted;
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return p_values[a] < p_values[b]; });
  double md = static_cast<double>(m);
  if (correction == Correction::kHolm) {
    // Holm 1979: step-down, running maximum of (m - i) p_(i).
    double running = 0;
    for (size_t i = 0; i < m; ++i) {
      running =
          std::max(running, std::min(1.0, (md - static_cast<double>(i)) * p_values[order[i]]));
      adjusted[order[i]] = running;
    }
  } else {
    // Benjamini-Hochberg 1995: step-up, running minimum from the largest of m p_(i) / (i + 1).
    double running = 1;
    for (size_t k = m; k-- > 0;) {
      running = std::min(running, md * p_values[order[k]] / static_cast<double>(k + 1));
      adjusted[order[k]] = running;
    }
  }
  return adjusted;
}

}  // namespace splitstream::stats

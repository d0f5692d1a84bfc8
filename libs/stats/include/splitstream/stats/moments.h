// Mergeable sufficient statistics: the per-variant states the statistics engine consumes.
//
// Each state has Update (one observation), Combine (merge another partial state, as a
// ClickHouse aggregate merges partial aggregates) and Finalize (the summary the tests use).
// Combining partial states gives the same summary as one pass over all observations, up to
// rounding (property-tested in stats_test).
//
// The results API builds these states from ClickHouse aggregates with the From* factories,
// which validate their input and return InvalidArgument for inconsistent sums (for example a
// negative count or a sum of squares smaller than sum^2 / n).
//
// Plain value types: no I/O, no allocation, the thread-safety of a double.
#pragma once

#include <cstdint>

#include "splitstream/core/result.h"

namespace splitstream::stats {

// What a test needs from one variant: size, mean and the per-observation sample variance.
struct SampleSummary {
  int64_t n = 0;
  double mean = 0;      // 0 when n == 0
  double variance = 0;  // per-observation variance; 0 when undefined (see the producer)
};

// Users exposed and users who converted (did the event at least once in the window).
class ProportionState {
 public:
  ProportionState() = default;
  // Errors: InvalidArgument unless 0 <= successes <= n.
  static Result<ProportionState> FromCounts(int64_t n, int64_t successes);

  void Update(bool converted) {
    ++n_;
    successes_ += converted ? 1 : 0;
  }
  void Combine(const ProportionState& other) {
    n_ += other.n_;
    successes_ += other.successes_;
  }
  // mean = rate, variance = rate * (1 - rate) (the Bernoulli variance the z-test uses).
  SampleSummary Finalize() const;

  int64_t n() const { return n_; }
  int64_t successes() const { return successes_; }
  double Rate() const { return n_ == 0 ? 0.0 : static_cast<double>(successes_) / n_; }

 private:
  int64_t n_ = 0;
  int64_t successes_ = 0;
};

// Count, mean and the sum of squared deviations M2 of one value per user.
//
// Update is Welford's algorithm (B. P. Welford, "Note on a method for calculating corrected
// sums of squares and products", Technometrics 4(3), 1962); Combine is the pairwise formula of
// T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise algorithm for
// computing sample variances", Stanford CS report STAN-CS-79-773, 1979:
//   n = na + nb, d = mean_b - mean_a, mean = mean_a + d * nb / n,
//   M2 = M2a + M2b + d^2 * na * nb / n.
// Both avoid the cancellation of sum_sq - sum^2 / n for data with a large mean.
class Moments {
 public:
  Moments() = default;
  // From ClickHouse count(), sum(x), sum(x * x). M2 = sum_sq - sum^2 / n; a slightly negative
  // M2 from rounding is clamped to 0. Errors: InvalidArgument for n < 0, non-finite sums,
  // non-zero sums with n == 0, or M2 clearly negative (inconsistent sums).
  static Result<Moments> FromSums(int64_t n, double sum, double sum_sq);
  // From count(), avg(x) and varSamp(x) (numerically better for data with a large mean).
  // Errors: InvalidArgument for n < 0, non-finite values or a negative variance.
  static Result<Moments> FromMeanVariance(int64_t n, double mean, double sample_variance);

  void Update(double x);
  void Combine(const Moments& other);
  // variance = M2 / (n - 1) (sample variance), 0 when n < 2.
  SampleSummary Finalize() const;

  int64_t n() const { return n_; }
  double Mean() const { return mean_; }
  double M2() const { return m2_; }
  double Sum() const { return mean_ * static_cast<double>(n_); }
  double Variance() const { return n_ < 2 ? 0.0 : m2_ / static_cast<double>(n_ - 1); }

 private:
  int64_t n_ = 0;
  double mean_ = 0;
  double m2_ = 0;
};

// Joint moments of two values per user (x, y): n, means, M2 of each and the co-moment
// C = sum (x - mean_x)(y - mean_y). Used for
//   - ratio metrics: x = the user's numerator sum, y = the user's denominator sum;
//   - CUPED: x = the user's metric value after exposure, y = the same metric's value in the
//     pre-exposure window.
// Update is the bivariate Welford update (C += (x - old_mean_x) * (y - new_mean_y)); Combine
// is Chan et al.'s pairwise formula extended to the co-moment (C = Ca + Cb + dx * dy * na *
// nb / n), as in P. Pebay, "Formulas for robust, one-pass parallel computation of covariances
// and arbitrary-order statistical moments", Sandia report SAND2008-6212, 2008.
class BivariateMoments {
 public:
  BivariateMoments() = default;
  // From count(), sum(x), sum(y), sum(x*x), sum(y*y), sum(x*y). Errors as Moments::FromSums,
  // plus InvalidArgument when the covariance violates Cauchy-Schwarz beyond rounding.
  static Result<BivariateMoments> FromSums(int64_t n, double sum_x, double sum_y, double sum_xx,
                                           double sum_yy, double sum_xy);

  void Update(double x, double y);
  void Combine(const BivariateMoments& other);

  int64_t n() const { return n_; }
  double MeanX() const { return mean_x_; }
  double MeanY() const { return mean_y_; }
  double SumX() const { return mean_x_ * static_cast<double>(n_); }
  double SumY() const { return mean_y_ * static_cast<double>(n_); }
  // Sample (n - 1) variances and covariance; 0 when n < 2.
  double VarianceX() const { return n_ < 2 ? 0.0 : m2_x_ / static_cast<double>(n_ - 1); }
  double VarianceY() const { return n_ < 2 ? 0.0 : m2_y_ / static_cast<double>(n_ - 1); }
  double Covariance() const { return n_ < 2 ? 0.0 : c_xy_ / static_cast<double>(n_ - 1); }
  double M2X() const { return m2_x_; }
  double M2Y() const { return m2_y_; }
  double CoMoment() const { return c_xy_; }
  // The x marginal (post values for CUPED, numerators for ratios).
  SampleSummary FinalizeX() const { return {n_, mean_x_, VarianceX()}; }
  SampleSummary FinalizeY() const { return {n_, mean_y_, VarianceY()}; }

 private:
  int64_t n_ = 0;
  double mean_x_ = 0;
  double mean_y_ = 0;
  double m2_x_ = 0;
  double m2_y_ = 0;
  double c_xy_ = 0;
};

// Names that say what the x and y of a BivariateMoments are.
using RatioMoments = BivariateMoments;  // x = numerator, y = denominator (per user)
using CupedMoments = BivariateMoments;  // x = post-exposure value, y = pre-exposure value

}  // namespace splitstream::stats

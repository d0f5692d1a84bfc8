#include "splitstream/stats/moments.h"

#include <cmath>
#include <initializer_list>
#include <optional>
#include <string>

namespace splitstream::stats {
namespace {

// Sums from ClickHouse are rounded; an M2 computed as sum_sq - sum^2 / n may come out a little
// negative for constant data. Anything more negative than this share of sum_sq is not
// rounding but inconsistent input.
constexpr double kM2Slack = 1e-9;

bool AllFinite(std::initializer_list<double> values) {
  for (double v : values) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// M2 = sum_sq - sum^2 / n with the rounding clamp; nullopt when clearly negative.
std::optional<double> M2FromSums(int64_t n, double sum, double sum_sq) {
  double m2 = sum_sq - sum * sum / static_cast<double>(n);
  if (m2 < 0) {
    if (m2 < -kM2Slack * std::abs(sum_sq) - 1e-300) return std::nullopt;
    m2 = 0;
  }
  return m2;
}

}  // namespace

Result<ProportionState> ProportionState::FromCounts(int64_t n, int64_t successes) {
  if (n < 0 || successes < 0 || successes > n) {
    return Status::InvalidArgument("need 0 <= successes <= n, got successes " +
                                   std::to_string(successes) + " of n " + std::to_string(n));
  }
  ProportionState state;
  state.n_ = n;
  state.successes_ = successes;
  return state;
}

SampleSummary ProportionState::Finalize() const {
  double rate = Rate();
  return {n_, rate, rate * (1 - rate)};
}

Result<Moments> Moments::FromSums(int64_t n, double sum, double sum_sq) {
  if (n < 0) return Status::InvalidArgument("negative count " + std::to_string(n));
  if (!AllFinite({sum, sum_sq})) return Status::InvalidArgument("sums must be finite");
  Moments m;
  if (n == 0) {
    if (sum != 0 || sum_sq != 0) return Status::InvalidArgument("non-zero sums with n = 0");
    return m;
  }
  std::optional<double> m2 = M2FromSums(n, sum, sum_sq);
  if (!m2) return Status::InvalidArgument("sum of squares smaller than sum^2 / n");
  m.n_ = n;
  m.mean_ = sum / static_cast<double>(n);
  m.m2_ = *m2;
  return m;
}

Result<Moments> Moments::FromMeanVariance(int64_t n, double mean, double sample_variance) {
  if (n < 0) return Status::InvalidArgument("negative count " + std::to_string(n));
  if (!AllFinite({mean, sample_variance}) || sample_variance < 0) {
    return Status::InvalidArgument("mean and variance must be finite, variance >= 0");
  }
  Moments m;
  if (n == 0) return m;
  m.n_ = n;
  m.mean_ = mean;
  m.m2_ = n < 2 ? 0.0 : sample_variance * static_cast<double>(n - 1);
  return m;
}

void Moments::Update(double x) {
  // Welford 1962.
  ++n_;
  double delta = x - mean_;
  mean_ += delta / static_cast<double>(n_);
  m2_ += delta * (x - mean_);
}

void Moments::Combine(const Moments& other) {
  // Chan, Golub, LeVeque 1979, pairwise update.
  if (other.n_ == 0) return;
  if (n_ == 0) {
    *this = other;
    return;
  }
  double na = static_cast<double>(n_);
  double nb = static_cast<double>(other.n_);
  double n = na + nb;
  double delta = other.mean_ - mean_;
  mean_ += delta * nb / n;
  m2_ += other.m2_ + delta * delta * na * nb / n;
  n_ += other.n_;
}

SampleSummary Moments::Finalize() const { return {n_, mean_, Variance()}; }

Result<BivariateMoments> BivariateMoments::FromSums(int64_t n, double sum_x, double sum_y,
                                                    double sum_xx, double sum_yy, double sum_xy) {
  if (n < 0) return Status::InvalidArgument("negative count " + std::to_string(n));
  if (!AllFinite({sum_x, sum_y, sum_xx, sum_yy, sum_xy})) {
    return Status::InvalidArgument("sums must be finite");
  }
  BivariateMoments m;
  if (n == 0) {
    if (sum_x != 0 || sum_y != 0 || sum_xx != 0 || sum_yy != 0 || sum_xy != 0) {
      return Status::InvalidArgument("non-zero sums with n = 0");
    }
    return m;
  }
  double nd = static_cast<double>(n);
  std::optional<double> m2x = M2FromSums(n, sum_x, sum_xx);
  std::optional<double> m2y = M2FromSums(n, sum_y, sum_yy);
  if (!m2x || !m2y) return Status::InvalidArgument("sum of squares smaller than sum^2 / n");
  double c = sum_xy - sum_x * sum_y / nd;
  // Cauchy-Schwarz: C^2 <= M2x M2y, up to rounding of the sums.
  double bound = std::sqrt(*m2x * *m2y);
  double slack = kM2Slack * (std::sqrt(std::abs(sum_xx) * std::abs(sum_yy)) + std::abs(sum_xy));
  if (std::abs(c) > bound + slack) {
    return Status::InvalidArgument("cross product inconsistent with the sums of squares");
  }
  if (std::abs(c) > bound) c = c > 0 ? bound : -bound;
  m.n_ = n;
  m.mean_x_ = sum_x / nd;
  m.mean_y_ = sum_y / nd;
  m.m2_x_ = *m2x;
  m.m2_y_ = *m2y;
  m.c_xy_ = c;
  return m;
}

void BivariateMoments::Update(double x, double y) {
  ++n_;
  double n = static_cast<double>(n_);
  double dx = x - mean_x_;
  double dy = y - mean_y_;
  mean_x_ += dx / n;
  mean_y_ += dy / n;
  m2_x_ += dx * (x - mean_x_);
  m2_y_ += dy * (y - mean_y_);
  c_xy_ += dx * (y - mean_y_);
}

void BivariateMoments::Combine(const BivariateMoments& other) {
  // Chan et al. 1979 / Pebay 2008 pairwise update, co-moment included.
  if (other.n_ == 0) return;
  if (n_ == 0) {
    *this = other;
    return;
  }
  double na = static_cast<double>(n_);
  double nb = static_cast<double>(other.n_);
  double n = na + nb;
  double dx = other.mean_x_ - mean_x_;
  double dy = other.mean_y_ - mean_y_;
  double w = na * nb / n;
  mean_x_ += dx * nb / n;
  mean_y_ += dy * nb / n;
  m2_x_ += other.m2_x_ + dx * dx * w;
  m2_y_ += other.m2_y_ + dy * dy * w;
  c_xy_ += other.c_xy_ + dx * dy * w;
  n_ += other.n_;
}

}  // namespace splitstream::stats

#include "splitstream/stats/analysis.h"

#include <cmath>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace splitstream::stats {
namespace {

std::string VariantField(size_t i, const char* member) {
  return fmt::format("variants[{}].{}", i, member);
}

bool UsesCuped(MetricKind kind) {
  return kind == MetricKind::kConversion || kind == MetricKind::kMean || kind == MetricKind::kCount;
}

int64_t UsersOf(const MetricSpec& spec, const VariantData& v) {
  switch (spec.kind) {
    case MetricKind::kConversion:
      return v.conversions.n();
    case MetricKind::kMean:
    case MetricKind::kCount:
      return v.values.n();
    case MetricKind::kRatio:
      return v.ratio.n();
    case MetricKind::kQuantile:
      return v.quantile.n;
  }
  return 0;
}

Status ValidateInputs(const MetricSpec& spec, std::span<const VariantData> variants,
                      const AnalysisOptions& options, bool* cuped_on) {
  if (variants.size() < 2) return Status::InvalidArgument("need at least 2 variants", "variants");
  if (options.control_index >= variants.size()) {
    return Status::InvalidArgument("control index out of range", "control_index");
  }
  if (!(options.alpha > 0 && options.alpha < 1)) {
    return Status::InvalidArgument("alpha must be in (0, 1)", "alpha");
  }
  if (!(options.sequential_tuning > 0) || !std::isfinite(options.sequential_tuning)) {
    return Status::InvalidArgument("sequential tuning must be positive", "sequential_tuning");
  }
  if (!(options.prior_alpha > 0) || !(options.prior_beta > 0) ||
      !std::isfinite(options.prior_alpha) || !std::isfinite(options.prior_beta)) {
    return Status::InvalidArgument("Beta prior parameters must be positive", "prior");
  }
  if (spec.kind == MetricKind::kQuantile) {
    if (!(spec.quantile > 0 && spec.quantile < 1)) {
      return Status::InvalidArgument("quantile level must be in (0, 1)", "quantile");
    }
    for (size_t i = 0; i < variants.size(); ++i) {
      const QuantileSample& q = variants[i].quantile;
      if (std::abs(q.p - spec.quantile) > 1e-12) {
        return Status::InvalidArgument("quantile level differs from the metric's",
                                       VariantField(i, "quantile.p"));
      }
      if (q.n < 0) return Status::InvalidArgument("negative count", VariantField(i, "quantile.n"));
      bool ordered = std::isfinite(q.lower) && std::isfinite(q.estimate) &&
                     std::isfinite(q.upper) && q.lower <= q.estimate && q.estimate <= q.upper;
      if (q.n > 0 && !ordered) {
        return Status::InvalidArgument("quantile values must be finite, lower <= estimate <= upper",
                                       VariantField(i, "quantile"));
      }
    }
  }
  size_t with_cuped = 0;
  for (const VariantData& v : variants) with_cuped += v.cuped.has_value() ? 1 : 0;
  *cuped_on = options.use_cuped && UsesCuped(spec.kind) && with_cuped > 0;
  if (*cuped_on) {
    for (size_t i = 0; i < variants.size(); ++i) {
      if (!variants[i].cuped) {
        return Status::InvalidArgument("CUPED data on some variants only",
                                       VariantField(i, "cuped"));
      }
      if (variants[i].cuped->n() != UsersOf(spec, variants[i])) {
        return Status::InvalidArgument("CUPED user count differs from the metric's",
                                       VariantField(i, "cuped"));
      }
    }
  }
  return Status::Ok();
}

// What the comparisons need from one variant on a common scale: its estimate, the variance
// of that estimate, and for Welch the per-user summary.
struct VariantEstimate {
  bool defined = false;
  std::string reason;  // when !defined
  double estimate = 0;
  double variance_of_estimate = 0;
  SampleSummary summary;  // kMean/kCount/CUPED: for Welch
};

VariantSummary Summarize(const MetricSpec& spec, const VariantData& v, double alpha,
                         VariantEstimate* est) {
  VariantSummary s;
  s.key = v.key;
  s.users = UsersOf(spec, v);
  auto set_estimate = [&](double mean, double variance_of_mean) {
    est->defined = true;
    est->estimate = mean;
    est->variance_of_estimate = variance_of_mean;
    s.std_error = std::sqrt(variance_of_mean);
  };
  switch (spec.kind) {
    case MetricKind::kConversion: {
      s.value = static_cast<double>(v.conversions.successes());
      if (s.users > 0) {
        SampleSummary f = v.conversions.Finalize();
        s.mean = f.mean;
        s.variance = f.variance;
        set_estimate(f.mean, f.variance / static_cast<double>(f.n));
        est->summary = f;
      }
      break;
    }
    case MetricKind::kMean:
    case MetricKind::kCount: {
      s.value = v.values.Sum();
      est->summary = v.values.Finalize();
      if (s.users > 0) s.mean = v.values.Mean();
      if (s.users >= 2) {
        s.variance = v.values.Variance();
        set_estimate(v.values.Mean(), v.values.Variance() / static_cast<double>(s.users));
      }
      break;
    }
    case MetricKind::kRatio: {
      s.value = v.ratio.SumX();
      s.denominator = v.ratio.SumY();
      Result<RatioEstimate> r = DeltaMethodRatio(v.ratio);
      if (v.ratio.MeanY() != 0 && s.users > 0) s.mean = v.ratio.MeanX() / v.ratio.MeanY();
      if (r.ok()) {
        s.variance = r->variance * static_cast<double>(s.users);
        set_estimate(r->ratio, r->variance);
      } else {
        est->reason = r.status().message();
      }
      break;
    }
    case MetricKind::kQuantile: {
      if (s.users > 0) s.mean = v.quantile.estimate;
      Result<double> var = QuantileVariance(v.quantile, alpha);
      if (var.ok()) {
        s.variance = *var * static_cast<double>(s.users);
        set_estimate(v.quantile.estimate, *var);
      } else {
        est->reason = var.status().message();
      }
      break;
    }
  }
  if (!est->defined && est->reason.empty()) {
    est->reason =
        s.users == 0 ? "not enough data: no users" : "not enough data: fewer than 2 users";
  }
  return s;
}

std::string FormatAbsolute(double x) { return fmt::format("{}{:.4g}", x > 0 ? "+" : "", x); }

std::string FormatInterval(const Interval& ci, bool relative) {
  if (relative) {
    return fmt::format("[{:.1f} %, {:.1f} %]", 100 * ci.lo + 0.0, 100 * ci.hi + 0.0);
  }
  return fmt::format("[{:.4g}, {:.4g}]", ci.lo, ci.hi);
}

void WriteVerdict(const MetricSpec& spec, const std::string& control_key,
                  const AnalysisOptions& options, ComparisonResult* r) {
  if (r->direction == Direction::kUndefined) {
    r->verdict = fmt::format("{} vs {} on {}: {}", r->variant_key, control_key, spec.name,
                             r->undefined_reason);
    return;
  }
  // Prefer the relative figures; fall back to absolute when control is 0.
  bool relative = r->lift_rel.has_value() &&
                  (options.sequential ? r->seq_ci_rel.has_value() : r->ci_rel.has_value());
  std::string figure;
  if (relative) {
    figure = FormatPercent(*r->lift_rel) + " " +
             FormatInterval(options.sequential ? *r->seq_ci_rel : *r->ci_rel, true);
  } else {
    figure = FormatAbsolute(*r->lift_abs) + " " +
             FormatInterval(options.sequential ? *r->seq_ci_abs : *r->ci_abs, false);
  }
  switch (r->direction) {
    case Direction::kBetter:
      r->verdict =
          fmt::format("{} beats {} on {}: {}", r->variant_key, control_key, spec.name, figure);
      break;
    case Direction::kWorse:
      r->verdict = fmt::format("{} is worse than {} on {}{}: {}", r->variant_key, control_key,
                               spec.name, spec.guardrail ? " (guardrail)" : "", figure);
      break;
    default:
      r->verdict = fmt::format("{}: no significant difference from {} on {}: {}", r->variant_key,
                               control_key, spec.name, figure);
      break;
  }
}

}  // namespace

std::string FormatPercent(double fraction) {
  double pct = 100 * fraction;
  if (std::abs(pct) < 0.05) return "0.0 %";
  return fmt::format("{:+.1f} %", pct);
}

Result<MetricAnalysis> AnalyzeMetric(const MetricSpec& spec, std::span<const VariantData> variants,
                                     const AnalysisOptions& options) {
  bool cuped_on = false;
  SPLITSTREAM_RETURN_IF_ERROR(ValidateInputs(spec, variants, options, &cuped_on));
  const double alpha = options.alpha;
  const size_t control = options.control_index;

  MetricAnalysis out;
  std::vector<VariantEstimate> estimates(variants.size());
  for (size_t i = 0; i < variants.size(); ++i) {
    out.variants.push_back(Summarize(spec, variants[i], alpha, &estimates[i]));
  }

  double theta = 0;
  if (cuped_on) {
    std::vector<BivariateMoments> cuped;
    BivariateMoments pooled;
    for (const VariantData& v : variants) {
      cuped.push_back(*v.cuped);
      pooled.Combine(*v.cuped);
    }
    theta = CupedTheta(cuped);
    for (size_t i = 0; i < variants.size(); ++i) {
      SampleSummary adjusted = CupedAdjust(*variants[i].cuped, theta, pooled.MeanY());
      out.variants[i].cuped_mean = adjusted.mean;
      out.variants[i].cuped_variance = adjusted.variance;
      VariantEstimate& e = estimates[i];
      e.summary = adjusted;
      if (adjusted.n >= 2) {
        e.defined = true;
        e.estimate = adjusted.mean;
        e.variance_of_estimate = adjusted.variance / static_cast<double>(adjusted.n);
      } else {
        e.defined = false;
        e.reason =
            adjusted.n == 0 ? "not enough data: no users" : "not enough data: fewer than 2 users";
      }
    }
  }

  const VariantEstimate& ce = estimates[control];
  const VariantData& cv = variants[control];
  std::vector<double> decision_p;
  std::vector<size_t> decision_index;
  for (size_t i = 0; i < variants.size(); ++i) {
    if (i == control) continue;
    const VariantEstimate& te = estimates[i];
    const VariantData& tv = variants[i];
    ComparisonResult r;
    r.variant_key = tv.key;
    r.cuped_applied = cuped_on;
    if (cuped_on) r.cuped_theta = theta;

    // The fixed-horizon test of the absolute difference.
    Result<TestOutcome> test = Status::FailedPrecondition("");
    if (spec.kind == MetricKind::kConversion && !cuped_on) {
      test = TwoProportionZTest(cv.conversions, tv.conversions, alpha);
    } else if (spec.kind == MetricKind::kConversion || spec.kind == MetricKind::kMean ||
               spec.kind == MetricKind::kCount) {
      test =
          ce.defined && te.defined
              ? WelchTTest(ce.summary, te.summary, alpha)
              : Result<TestOutcome>(Status::FailedPrecondition(ce.defined ? te.reason : ce.reason));
    } else {
      test =
          ce.defined && te.defined
              ? TestEstimate(te.estimate - ce.estimate,
                             std::sqrt(ce.variance_of_estimate + te.variance_of_estimate), alpha)
              : Result<TestOutcome>(Status::FailedPrecondition(ce.defined ? te.reason : ce.reason));
    }
    if (!test.ok()) {
      if (test.status().code() != StatusCode::kFailedPrecondition) return test.status();
      r.undefined_reason = test.status().message();
      r.direction = Direction::kUndefined;
      WriteVerdict(spec, cv.key, options, &r);
      out.comparisons.push_back(std::move(r));
      continue;
    }
    r.lift_abs = test->estimate;
    r.ci_abs = test->ci;
    r.p_value = test->p_value;
    const double critical = CriticalValue(alpha, test->df);

    // Relative lift by the delta method, on the same estimates.
    std::optional<Lift> lift;
    if (ce.defined && te.defined) {
      Result<Lift> l = RelativeLift(ce.estimate, ce.variance_of_estimate, te.estimate,
                                    te.variance_of_estimate, critical);
      if (l.ok()) {
        lift = *l;
        r.lift_rel = l->lift;
        r.ci_rel = l->ci;
      }
    }

    // Bayesian: Beta-Binomial for plain conversions, normal approximation otherwise.
    BayesOutcome bayes;
    if (spec.kind == MetricKind::kConversion && !cuped_on) {
      SPLITSTREAM_ASSIGN_OR_RETURN(
          bayes, BetaChanceToBeat(cv.conversions, tv.conversions, options.prior_alpha,
                                  options.prior_beta));
    } else {
      bayes = NormalChanceToBeat(test->estimate, test->std_error);
    }
    if (spec.higher_is_better) {
      r.chance_to_beat = bayes.chance_to_beat;
      r.expected_loss = bayes.loss_choose_treatment;
      r.expected_loss_control = bayes.loss_choose_control;
    } else {
      r.chance_to_beat = 1 - bayes.chance_to_beat;
      r.expected_loss = bayes.loss_choose_control;
      r.expected_loss_control = bayes.loss_choose_treatment;
    }

    double decision = test->p_value;
    if (options.sequential) {
      int64_t total = out.variants[control].users + out.variants[i].users;
      SPLITSTREAM_ASSIGN_OR_RETURN(SequentialOutcome seq,
                                   SequentialInterval(test->estimate, test->std_error, total, alpha,
                                                      options.sequential_tuning));
      r.seq_ci_abs = seq.ci;
      r.seq_p_value = seq.p_value;
      decision = seq.p_value;
      if (lift) {
        SPLITSTREAM_ASSIGN_OR_RETURN(SequentialOutcome seq_rel,
                                     SequentialInterval(lift->lift, lift->std_error, total, alpha,
                                                        options.sequential_tuning));
        r.seq_ci_rel = seq_rel.ci;
      }
    }
    decision_p.push_back(decision);
    decision_index.push_back(out.comparisons.size());
    out.comparisons.push_back(std::move(r));
  }

  std::vector<double> adjusted = AdjustPValues(decision_p, options.correction);
  for (size_t k = 0; k < adjusted.size(); ++k) {
    ComparisonResult& r = out.comparisons[decision_index[k]];
    r.p_value_adjusted = adjusted[k];
    r.significant = adjusted[k] < alpha;
    if (!r.significant) {
      r.direction = Direction::kNoDifference;
    } else {
      bool up = *r.lift_abs > 0;
      r.direction = up == spec.higher_is_better ? Direction::kBetter : Direction::kWorse;
    }
    WriteVerdict(spec, cv.key, options, &r);
  }
  return out;
}

}  // namespace splitstream::stats

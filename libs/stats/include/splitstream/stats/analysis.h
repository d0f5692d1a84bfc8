// AnalyzeMetric: one metric of one experiment, from per-variant sufficient statistics to
// everything the results API shows: per-variant figures, and per treatment vs control the
// absolute and relative lift with CIs, raw and adjusted p-values, chance to beat control,
// expected loss, the sequential interval, CUPED figures and a plain-words verdict.
//
// Inputs are exactly the sufficient statistics ClickHouse computes (no per-user arrays); which
// fields a VariantData must carry for each MetricKind is listed below and in the README.
// Errors: InvalidArgument (with the field path, e.g. "variants[2].cuped") for bad options or
// inconsistent inputs. Data that is merely insufficient (no users, no variance, control mean
// 0) is not an error: the affected fields are std::nullopt and the verdict says why.
// Pure: no I/O, thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "splitstream/core/result.h"
#include "splitstream/stats/inference.h"
#include "splitstream/stats/moments.h"

namespace splitstream::stats {

enum class MetricKind {
  kConversion,  // share of exposed users who did the event at least once in the window
  kMean,        // per-user sum of the event value, averaged over exposed users
  kCount,       // per-user number of events, averaged over exposed users (same maths as kMean)
  kRatio,       // sum of a numerator over sum of a denominator, per user (delta method)
  kQuantile,    // the p-quantile of event values (e.g. p50, p95 latency)
};

struct MetricSpec {
  std::string name;
  MetricKind kind = MetricKind::kConversion;
  bool higher_is_better = true;
  bool guardrail = false;  // must not get worse: the verdict says "(guardrail)" when it does
  double quantile = 0.5;   // kQuantile only: the level p in (0, 1)
  // The window after exposure is applied by the query that computes the sufficient
  // statistics; it does not change the maths.
};

// One variant's sufficient statistics for one metric. Which field is read:
//   kConversion          conversions (n = exposed users, successes = converted users)
//   kMean, kCount        values (one value per exposed user; users without events count 0)
//   kRatio               ratio (x = the user's numerator sum, y = denominator sum)
//   kQuantile            quantile (see inference.h: n, p, estimate and the values at the
//                        LevelsForQuantile(p, n, alpha) levels)
//   cuped (optional, kConversion/kMean/kCount): x = post value (0/1 for conversion), y = the
//   same metric's value in the pre-exposure window, for the same users; all variants or none.
struct VariantData {
  std::string key;
  double weight = 1;  // configured traffic weight (used by SRM, not by the tests)
  ProportionState conversions;
  Moments values;
  RatioMoments ratio;
  QuantileSample quantile;
  std::optional<CupedMoments> cuped;
};

struct AnalysisOptions {
  double alpha = 0.05;
  size_t control_index = 0;
  Correction correction = Correction::kHolm;  // across the treatments of this metric
  bool sequential = false;                    // always-valid CIs and p-values for peeking
  double sequential_tuning = 5000;            // N*: total users where the CS is narrowest
  double prior_alpha = 1;                     // Beta prior of conversion rates: Beta(1, 1)
  double prior_beta = 1;
  bool use_cuped = true;  // use VariantData::cuped when present
};

// Per-variant figures.
struct VariantSummary {
  std::string key;
  int64_t users = 0;
  std::optional<double> value;  // conversions, sum of values, numerator sum; none for kQuantile
  std::optional<double> denominator;  // kRatio only: the denominator sum
  std::optional<double> mean;         // rate, mean, ratio or quantile estimate
  std::optional<double> variance;     // per-user variance (kRatio: n Var(ratio); kQuantile: n se^2)
  std::optional<double> std_error;    // of `mean`
  std::optional<double> cuped_mean;   // CUPED-adjusted mean, when applied
  std::optional<double> cuped_variance;
};

enum class Direction { kBetter, kWorse, kNoDifference, kUndefined };

struct ComparisonResult {
  std::string variant_key;
  // Headline figures (CUPED-adjusted when cuped_applied). Fixed-horizon, unadjusted CIs.
  std::optional<double> lift_abs;
  std::optional<double> lift_rel;
  std::optional<Interval> ci_abs;
  std::optional<Interval> ci_rel;
  std::optional<double> p_value;                // fixed-horizon, raw
  std::optional<double> p_value_adjusted;       // of the decision p-value (sequential when enabled)
  std::optional<double> chance_to_beat;         // P(variant better than control), direction-aware
  std::optional<double> expected_loss;          // E[loss] of shipping the variant, absolute units
  std::optional<double> expected_loss_control;  // E[loss] of keeping control
  // Sequential (when AnalysisOptions::sequential).
  std::optional<Interval> seq_ci_abs;
  std::optional<Interval> seq_ci_rel;
  std::optional<double> seq_p_value;
  // CUPED.
  bool cuped_applied = false;
  std::optional<double> cuped_theta;
  // Decision.
  bool significant = false;  // p_value_adjusted < alpha
  Direction direction = Direction::kUndefined;
  std::string undefined_reason;  // why figures are missing, when they are
  std::string verdict;
};

struct MetricAnalysis {
  std::vector<VariantSummary> variants;       // in input order, control included
  std::vector<ComparisonResult> comparisons;  // one per treatment, in input order
};

// Errors: InvalidArgument for fewer than 2 variants, control_index out of range, alpha
// outside (0, 1), sequential_tuning <= 0, non-positive priors, a quantile level outside
// (0, 1), a QuantileSample whose p differs from the spec or whose values are not finite and
// ordered (lower <= estimate <= upper), or CUPED data on some variants only or with a user
// count different from the metric's.
Result<MetricAnalysis> AnalyzeMetric(const MetricSpec& spec, std::span<const VariantData> variants,
                                     const AnalysisOptions& options = {});

// "+4.1 %" style formatting used by verdicts (one decimal; absolute figures with 4 significant
// digits).
std::string FormatPercent(double fraction);

}  // namespace splitstream::stats

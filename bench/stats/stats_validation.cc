// Validation of libs/stats by simulation: error rates, power and SRM detection.
//
// Experiments are simulated at the sufficient-statistic level, exactly: a variant's
// conversions are one binomial draw, a variant's mean and sample variance of normal data are
// drawn from their exact sampling distributions (normal and scaled chi-square), exposure counts
// are binomial. Seeds are fixed, so a run prints the same table every time (libstdc++'s
// distributions are deterministic for a given engine).
//
// Usage: stats_validation [--experiments N]   (default 2000)
// The table is recorded in docs/statistics.md; bench/stats/run.sh builds and runs this.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "splitstream/stats/analysis.h"
#include "splitstream/stats/inference.h"
#include "splitstream/stats/moments.h"

namespace ss = splitstream::stats;

namespace {

constexpr double kAlpha = 0.05;

struct Row {
  std::string check;
  std::string setup;
  double measured = 0;  // a rate in [0, 1]
  std::string target;
  bool pass = false;
};

// Binomial standard error of a rate measured over `trials` experiments.
double RateSe(double rate, int trials) { return std::sqrt(rate * (1 - rate) / trials); }

ss::ProportionState Proportion(int64_t n, int64_t s) {
  return ss::ProportionState::FromCounts(n, s).value();
}

std::vector<ss::VariantData> TwoVariants() {
  std::vector<ss::VariantData> v(2);
  v[0].key = std::string("control");
  v[1].key = std::string("B");
  return v;
}

// A/A on conversions through AnalyzeMetric (z-test, Beta-Binomial, Holm: the whole path).
Row FixedHorizonConversion(int experiments, std::mt19937_64& rng) {
  const int64_t n = 10000;
  const double rate = 0.10;
  std::binomial_distribution<int64_t> draw(n, rate);
  ss::MetricSpec spec{.name = "checkout", .kind = ss::MetricKind::kConversion};
  std::vector<ss::VariantData> v = TwoVariants();
  int positives = 0;
  for (int e = 0; e < experiments; ++e) {
    v[0].conversions = Proportion(n, draw(rng));
    v[1].conversions = Proportion(n, draw(rng));
    ss::ComparisonResult r = ss::AnalyzeMetric(spec, v).value().comparisons[0];
    positives += r.significant ? 1 : 0;
  }
  double fpr = static_cast<double>(positives) / experiments;
  return {"A/A false-positive rate, conversion (z-test)", "p = 10 %, 10 000 users/arm, alpha 0.05",
          fpr, "[4 %, 6 %]", fpr >= 0.04 && fpr <= 0.06};
}

// A/A on a mean metric with skew-free normal data: Welch's t-test on drawn (mean, variance).
Row FixedHorizonMean(int experiments, std::mt19937_64& rng) {
  const int64_t n = 500;
  const double mu = 20, sigma = 8;
  std::normal_distribution<double> mean_draw(mu, sigma / std::sqrt(static_cast<double>(n)));
  std::chi_squared_distribution<double> chi2(static_cast<double>(n - 1));
  ss::MetricSpec spec{.name = "spend", .kind = ss::MetricKind::kMean};
  std::vector<ss::VariantData> v = TwoVariants();
  int positives = 0;
  for (int e = 0; e < experiments; ++e) {
    for (auto& x : v) {
      double var = sigma * sigma * chi2(rng) / static_cast<double>(n - 1);
      x.values = ss::Moments::FromMeanVariance(n, mean_draw(rng), var).value();
    }
    positives += ss::AnalyzeMetric(spec, v).value().comparisons[0].significant ? 1 : 0;
  }
  double fpr = static_cast<double>(positives) / experiments;
  return {"A/A false-positive rate, mean (Welch)", "normal data, 500 users/arm, alpha 0.05", fpr,
          "[4 %, 6 %]", fpr >= 0.04 && fpr <= 0.06};
}

// A/A with daily looks: how often does any of the looks declare a difference?
std::vector<Row> Peeking(int experiments, std::mt19937_64& rng) {
  const int looks = 30;
  const int64_t per_day = 1000;  // users per arm per day
  const double rate = 0.10;
  std::binomial_distribution<int64_t> draw(per_day, rate);
  int naive = 0, sequential = 0;
  for (int e = 0; e < experiments; ++e) {
    int64_t n = 0, sc = 0, st = 0;
    bool naive_hit = false, seq_hit = false;
    for (int day = 0; day < looks; ++day) {
      n += per_day;
      sc += draw(rng);
      st += draw(rng);
      ss::TestOutcome t =
          ss::TwoProportionZTest(Proportion(n, sc), Proportion(n, st), kAlpha).value();
      naive_hit = naive_hit || t.p_value < kAlpha;
      ss::SequentialOutcome s =
          ss::SequentialInterval(t.estimate, t.std_error, 2 * n, kAlpha, 5000).value();
      seq_hit = seq_hit || s.p_value < kAlpha;
    }
    naive += naive_hit ? 1 : 0;
    sequential += seq_hit ? 1 : 0;
  }
  double naive_rate = static_cast<double>(naive) / experiments;
  double seq_rate = static_cast<double>(sequential) / experiments;
  return {
      {"A/A, 30 daily looks, fixed-horizon test (for contrast)", "p = 10 %, +1 000 users/arm/day",
       naive_rate, "inflated (> 5 %)", naive_rate > 0.05},
      {"A/A, 30 daily looks, sequential CS (N* = 5 000)", "p = 10 %, +1 000 users/arm/day",
       seq_rate, "<= 5 %", seq_rate <= 0.05},
  };
}

// A/A/A/A: three treatments against one control; how often is any of them "significant"?
std::vector<Row> FamilyWise(int experiments, std::mt19937_64& rng) {
  const int64_t n = 10000;
  std::binomial_distribution<int64_t> draw(n, 0.10);
  int raw_any = 0, holm_any = 0, bh_any = 0;
  for (int e = 0; e < experiments; ++e) {
    ss::ProportionState control = Proportion(n, draw(rng));
    std::vector<double> p;
    for (int k = 0; k < 3; ++k) {
      p.push_back(
          ss::TwoProportionZTest(control, Proportion(n, draw(rng)), kAlpha).value().p_value);
    }
    auto any_below = [](const std::vector<double>& v) {
      for (double x : v) {
        if (x < kAlpha) return true;
      }
      return false;
    };
    raw_any += any_below(p) ? 1 : 0;
    holm_any += any_below(ss::AdjustPValues(p, ss::Correction::kHolm)) ? 1 : 0;
    bh_any += any_below(ss::AdjustPValues(p, ss::Correction::kBenjaminiHochberg)) ? 1 : 0;
  }
  auto rate = [&](int k) { return static_cast<double>(k) / experiments; };
  const char* setup = "3 treatments vs control, p = 10 %, 10 000 users/arm";
  return {
      {"A/A/A/A, any treatment significant, no correction", setup, rate(raw_any),
       "inflated (> 5 %)", rate(raw_any) > 0.05},
      {"A/A/A/A, any treatment significant, Holm (default)", setup, rate(holm_any), "<= 5 %",
       rate(holm_any) <= 0.05},
      {"A/A/A/A, any treatment significant, Benjamini-Hochberg", setup, rate(bh_any),
       "<= 5 % (all nulls true)", rate(bh_any) <= 0.05},
  };
}

Row Power(int experiments, std::mt19937_64& rng, double* predicted_out) {
  const int64_t n = 20000;
  const double pc = 0.10, pt = 0.105;  // a true relative lift of 5 %
  std::binomial_distribution<int64_t> draw_c(n, pc), draw_t(n, pt);
  int detected = 0;
  for (int e = 0; e < experiments; ++e) {
    ss::TestOutcome t =
        ss::TwoProportionZTest(Proportion(n, draw_c(rng)), Proportion(n, draw_t(rng)), kAlpha)
            .value();
    detected += t.p_value < kAlpha ? 1 : 0;
  }
  // Power of a two-sided z-test: Phi(d/se - z) + Phi(-d/se - z), se at the true rates.
  double se = std::sqrt(pc * (1 - pc) / n + pt * (1 - pt) / n);
  double z = ss::CriticalValue(kAlpha);
  auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  double predicted = phi((pt - pc) / se - z) + phi(-(pt - pc) / se - z);
  *predicted_out = predicted;
  double power = static_cast<double>(detected) / experiments;
  char target[64];
  std::snprintf(target, sizeof target, "%.1f %% +/- 3 points (formula)", 100 * predicted);
  return {"Power, conversion +5 % relative", "10 % vs 10.5 %, 20 000 users/arm", power, target,
          std::abs(power - predicted) <= 0.03};
}

std::vector<Row> Srm(int experiments, int null_experiments, std::mt19937_64& rng) {
  const int64_t users = 1000000;
  std::binomial_distribution<int64_t> split(users, 0.5);
  std::vector<double> weights{0.5, 0.5};
  int flagged_drop = 0, flagged_null = 0;
  for (int e = 0; e < experiments; ++e) {
    int64_t a = split(rng);
    int64_t b = users - a;
    std::binomial_distribution<int64_t> keep(b, 0.99);  // 1 % of B's exposures are lost
    std::vector<int64_t> counts{a, keep(rng)};
    flagged_drop += ss::SampleRatioMismatch(counts, weights).value().mismatch ? 1 : 0;
  }
  for (int e = 0; e < null_experiments; ++e) {
    int64_t a = split(rng);
    std::vector<int64_t> counts{a, users - a};
    flagged_null += ss::SampleRatioMismatch(counts, weights).value().mismatch ? 1 : 0;
  }
  double drop_rate = static_cast<double>(flagged_drop) / experiments;
  double null_rate = static_cast<double>(flagged_null) / null_experiments;
  // The chi-square test's power against this drop: with df = 1 the statistic is (Z + sqrt(l))^2,
  // l the non-centrality sum (E_drop - E_null)^2 / E_null over the expected counts.
  double kept = 0.5 * users * 0.99;
  double e_null = (0.5 * users + kept) / 2;
  double lambda = 2 * (0.5 * users - e_null) * (0.5 * users - e_null) / e_null;
  double z = ss::CriticalValue(0.001);
  auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  double predicted = phi(std::sqrt(lambda) - z) + phi(-std::sqrt(lambda) - z);
  // The expected counts themselves.
  std::vector<int64_t> expected{users / 2, static_cast<int64_t>(kept)};
  ss::SrmResult on_expected = ss::SampleRatioMismatch(expected, weights).value();
  char target[64], setup[96], expected_setup[96];
  std::snprintf(target, sizeof target, "%.1f %% +/- 3 points (chi-square power)", 100 * predicted);
  std::snprintf(setup, sizeof setup, "50/50, 1 M users, no drop (%d experiments)",
                null_experiments);
  std::snprintf(expected_setup, sizeof expected_setup, "500 000 vs 495 000: p = %.2g",
                on_expected.p_value);
  return {
      {"SRM flagged, 1 % of one arm's exposures dropped", "50/50, 1 M users, p < 0.001", drop_rate,
       target, std::abs(drop_rate - predicted) <= 0.03},
      {"SRM on the expected counts of that drop", expected_setup, on_expected.mismatch ? 1.0 : 0.0,
       "flagged", on_expected.mismatch},
      {"SRM flagged without a drop", setup, null_rate, "about 0.1 %",
       std::abs(null_rate - 0.001) <= 3 * RateSe(0.001, null_experiments) + 1e-4},
  };
}

}  // namespace

int main(int argc, char** argv) {
  int experiments = 2000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--experiments") == 0) experiments = std::atoi(argv[i + 1]);
  }
  if (experiments <= 0) {
    std::fprintf(stderr, "usage: stats_validation [--experiments N]\n");
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<Row> rows;
  {
    std::mt19937_64 rng(20261125);
    rows.push_back(FixedHorizonConversion(experiments, rng));
  }
  {
    std::mt19937_64 rng(20261126);
    rows.push_back(FixedHorizonMean(experiments, rng));
  }
  {
    std::mt19937_64 rng(20261127);
    for (Row& r : Peeking(experiments, rng)) rows.push_back(r);
  }
  {
    std::mt19937_64 rng(20261130);
    for (Row& r : FamilyWise(experiments, rng)) rows.push_back(r);
  }
  double predicted = 0;
  {
    std::mt19937_64 rng(20261128);
    rows.push_back(Power(experiments, rng, &predicted));
  }
  {
    std::mt19937_64 rng(20261129);
    for (Row& r : Srm(experiments, 50 * experiments, rng)) rows.push_back(r);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("| check | setup | measured | target | pass |\n|---|---|---|---|---|\n");
  bool all = true;
  for (const Row& r : rows) {
    // Rates measured over N experiments carry a binomial standard error; show it.
    int trials = r.setup.find("no drop") != std::string::npos ? 50 * experiments : experiments;
    std::printf("| %s | %s | %.2f %% (+/- %.2f) | %s | %s |\n", r.check.c_str(), r.setup.c_str(),
                100 * r.measured, 100 * RateSe(r.measured, trials), r.target.c_str(),
                r.pass ? "yes" : "NO");
    all = all && r.pass;
  }
  std::printf("\n%d experiments per row (SRM without drop: %d), %.1f s\n", experiments,
              50 * experiments, seconds);
  return all ? 0 : 1;
}

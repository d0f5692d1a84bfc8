// Golden tests: every method against values computed by SciPy (tests/testdata/generate.py).
//
// File format (one case a line):
//   tolerance rel=<r> abs=<a>
//   <case> <key>=<v>[,<v>...] ... expect_<key>=<v>[,<v>...] ...
// A check passes when |got - expected| <= r * |expected| + a.
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "splitstream/stats/analysis.h"
#include "splitstream/stats/inference.h"
#include "splitstream/stats/moments.h"

namespace splitstream::stats {
namespace {

struct GoldenCase {
  std::string name;
  std::map<std::string, std::vector<double>> values;

  double Get(const std::string& key) const {
    auto it = values.find(key);
    if (it == values.end() || it->second.size() != 1) {
      ADD_FAILURE() << name << ": missing scalar " << key;
      return NAN;
    }
    return it->second[0];
  }
  int64_t GetInt(const std::string& key) const { return static_cast<int64_t>(Get(key)); }
  std::vector<double> GetList(const std::string& key) const {
    auto it = values.find(key);
    if (it == values.end()) ADD_FAILURE() << name << ": missing list " << key;
    return it == values.end() ? std::vector<double>{} : it->second;
  }
};

struct GoldenFile {
  double rel = -1;
  double abs = -1;
  std::vector<GoldenCase> cases;
};

GoldenFile Load(const std::string& file) {
  GoldenFile out;
  std::ifstream in(std::string(SPLITSTREAM_STATS_TESTDATA) + "/" + file);
  EXPECT_TRUE(in.good()) << "cannot open " << file;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == "tolerance") {
      std::string word;
      while (words >> word) {
        if (word.rfind("rel=", 0) == 0) out.rel = std::stod(word.substr(4));
        if (word.rfind("abs=", 0) == 0) out.abs = std::stod(word.substr(4));
      }
      continue;
    }
    GoldenCase c;
    c.name = first;
    std::string word;
    while (words >> word) {
      size_t eq = word.find('=');
      std::vector<double>& list = c.values[word.substr(0, eq)];
      std::istringstream items(word.substr(eq + 1));
      std::string item;
      while (std::getline(items, item, ',')) list.push_back(std::stod(item));
    }
    out.cases.push_back(std::move(c));
  }
  EXPECT_GT(out.rel, 0) << file << " has no tolerance line";
  EXPECT_FALSE(out.cases.empty()) << file << " has no cases";
  return out;
}

// Compares got with expect_<key> of the case.
#define EXPECT_GOLDEN(file, c, key, got)                                                \
  do {                                                                                  \
    double expected_ = (c).Get("expect_" key);                                          \
    double got_ = (got);                                                                \
    EXPECT_LE(std::abs(got_ - expected_), (file).rel* std::abs(expected_) + (file).abs) \
        << (c).name << " " key << ": got " << got_ << " expected " << expected_;        \
  } while (0)

// The first comparison of an AnalyzeMetric result against expect_{diff,p,ci_lo,ci_hi,lift,
// lift_lo,lift_hi}.
void ExpectComparison(const GoldenFile& f, const GoldenCase& c, const Result<MetricAnalysis>& a) {
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_EQ(a->comparisons.size(), 1u);
  const ComparisonResult& r = a->comparisons[0];
  ASSERT_TRUE(r.lift_abs && r.p_value && r.ci_abs && r.lift_rel && r.ci_rel) << c.name;
  EXPECT_GOLDEN(f, c, "diff", *r.lift_abs);
  EXPECT_GOLDEN(f, c, "p", *r.p_value);
  EXPECT_GOLDEN(f, c, "ci_lo", r.ci_abs->lo);
  EXPECT_GOLDEN(f, c, "ci_hi", r.ci_abs->hi);
  EXPECT_GOLDEN(f, c, "lift", *r.lift_rel);
  EXPECT_GOLDEN(f, c, "lift_lo", r.ci_rel->lo);
  EXPECT_GOLDEN(f, c, "lift_hi", r.ci_rel->hi);
}

// A TestOutcome against expect_{diff,se,p,ci_lo,ci_hi}.
void ExpectOutcome(const GoldenFile& f, const GoldenCase& c, const TestOutcome& r) {
  EXPECT_GOLDEN(f, c, "diff", r.estimate);
  EXPECT_GOLDEN(f, c, "se", r.std_error);
  EXPECT_GOLDEN(f, c, "p", r.p_value);
  EXPECT_GOLDEN(f, c, "ci_lo", r.ci.lo);
  EXPECT_GOLDEN(f, c, "ci_hi", r.ci.hi);
}

// RelativeLift of two summaries against expect_{lift,lift_lo,lift_hi}.
void ExpectLift(const GoldenFile& f, const GoldenCase& c, const SampleSummary& sc,
                const SampleSummary& st, double critical) {
  Result<Lift> lift = RelativeLift(sc.mean, sc.variance / static_cast<double>(sc.n), st.mean,
                                   st.variance / static_cast<double>(st.n), critical);
  ASSERT_TRUE(lift.ok()) << c.name << ": " << lift.status().ToString();
  EXPECT_GOLDEN(f, c, "lift", lift->lift);
  EXPECT_GOLDEN(f, c, "lift_lo", lift->ci.lo);
  EXPECT_GOLDEN(f, c, "lift_hi", lift->ci.hi);
}

ProportionState Proportion(int64_t n, int64_t s) {
  return ProportionState::FromCounts(n, s).value();
}

TEST(GoldenTest, TwoProportionZTest) {
  GoldenFile f = Load("ztest.test");
  for (const GoldenCase& c : f.cases) {
    ProportionState pc = Proportion(c.GetInt("n_c"), c.GetInt("s_c"));
    ProportionState pt = Proportion(c.GetInt("n_t"), c.GetInt("s_t"));
    double alpha = c.Get("alpha");
    Result<TestOutcome> r = TwoProportionZTest(pc, pt, alpha);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().ToString();
    ExpectOutcome(f, c, *r);
    EXPECT_GOLDEN(f, c, "z", r->statistic);
    ExpectLift(f, c, pc.Finalize(), pt.Finalize(), CriticalValue(alpha));

    // The same figures through AnalyzeMetric.
    MetricSpec spec{.name = "checkout", .kind = MetricKind::kConversion};
    std::vector<VariantData> variants(2);
    variants[0].key = "control";
    variants[0].conversions = pc;
    variants[1].key = "b";
    variants[1].conversions = pt;
    AnalysisOptions options;
    options.alpha = alpha;
    ExpectComparison(f, c, AnalyzeMetric(spec, variants, options));
  }
}

TEST(GoldenTest, WelchTTest) {
  GoldenFile f = Load("welch.test");
  for (const GoldenCase& c : f.cases) {
    SampleSummary sc =
        Moments::FromSums(c.GetInt("n_c"), c.Get("sum_c"), c.Get("sumsq_c")).value().Finalize();
    SampleSummary st =
        Moments::FromSums(c.GetInt("n_t"), c.Get("sum_t"), c.Get("sumsq_t")).value().Finalize();
    double alpha = c.Get("alpha");
    Result<TestOutcome> r = WelchTTest(sc, st, alpha);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().ToString();
    ExpectOutcome(f, c, *r);
    EXPECT_GOLDEN(f, c, "t", r->statistic);
    EXPECT_GOLDEN(f, c, "df", r->df);
    ExpectLift(f, c, sc, st, CriticalValue(alpha, r->df));

    // The same figures through AnalyzeMetric.
    MetricSpec spec{.name = "revenue", .kind = MetricKind::kMean};
    std::vector<VariantData> variants(2);
    variants[0].key = "control";
    variants[0].values =
        Moments::FromSums(c.GetInt("n_c"), c.Get("sum_c"), c.Get("sumsq_c")).value();
    variants[1].key = "b";
    variants[1].values =
        Moments::FromSums(c.GetInt("n_t"), c.Get("sum_t"), c.Get("sumsq_t")).value();
    AnalysisOptions options;
    options.alpha = alpha;
    ExpectComparison(f, c, AnalyzeMetric(spec, variants, options));
  }
}

BivariateMoments Bivariate(const GoldenCase& c, const std::string& tag) {
  Result<BivariateMoments> m =
      BivariateMoments::FromSums(c.GetInt("n_" + tag), c.Get("sx_" + tag), c.Get("sy_" + tag),
                                 c.Get("sxx_" + tag), c.Get("syy_" + tag), c.Get("sxy_" + tag));
  EXPECT_TRUE(m.ok()) << c.name << ": " << m.status().ToString();
  return m.ok() ? *m : BivariateMoments();
}

TEST(GoldenTest, DeltaMethodRatio) {
  GoldenFile f = Load("ratio.test");
  for (const GoldenCase& c : f.cases) {
    Result<RatioEstimate> rc = DeltaMethodRatio(Bivariate(c, "c"));
    Result<RatioEstimate> rt = DeltaMethodRatio(Bivariate(c, "t"));
    ASSERT_TRUE(rc.ok() && rt.ok()) << c.name;
    EXPECT_GOLDEN(f, c, "ratio_c", rc->ratio);
    EXPECT_GOLDEN(f, c, "ratio_t", rt->ratio);
    EXPECT_GOLDEN(f, c, "var_c", rc->variance);
    EXPECT_GOLDEN(f, c, "var_t", rt->variance);

    // The same through AnalyzeMetric.
    MetricSpec spec{.name = "revenue_per_order", .kind = MetricKind::kRatio};
    std::vector<VariantData> variants(2);
    variants[0].key = "control";
    variants[0].ratio = Bivariate(c, "c");
    variants[1].key = "b";
    variants[1].ratio = Bivariate(c, "t");
    AnalysisOptions options;
    options.alpha = c.Get("alpha");
    ExpectComparison(f, c, AnalyzeMetric(spec, variants, options));
    EXPECT_GOLDEN(f, c, "se", std::sqrt(rc->variance + rt->variance));
  }
}

TEST(GoldenTest, BetaChanceToBeat) {
  GoldenFile f = Load("bayes_beta.test");
  for (const GoldenCase& c : f.cases) {
    Result<BayesOutcome> r = BetaChanceToBeat(Proportion(c.GetInt("n_c"), c.GetInt("s_c")),
                                              Proportion(c.GetInt("n_t"), c.GetInt("s_t")),
                                              c.Get("prior_a"), c.Get("prior_b"));
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().ToString();
    EXPECT_GOLDEN(f, c, "chance", r->chance_to_beat);
    EXPECT_GOLDEN(f, c, "loss_t", r->loss_choose_treatment);
    EXPECT_GOLDEN(f, c, "loss_c", r->loss_choose_control);
  }
}

TEST(GoldenTest, NormalChanceToBeat) {
  GoldenFile f = Load("bayes_normal.test");
  for (const GoldenCase& c : f.cases) {
    BayesOutcome r = NormalChanceToBeat(c.Get("diff"), c.Get("se"));
    EXPECT_GOLDEN(f, c, "chance", r.chance_to_beat);
    EXPECT_GOLDEN(f, c, "loss_t", r.loss_choose_treatment);
    EXPECT_GOLDEN(f, c, "loss_c", r.loss_choose_control);
  }
}

TEST(GoldenTest, SequentialInterval) {
  GoldenFile f = Load("sequential.test");
  for (const GoldenCase& c : f.cases) {
    Result<SequentialOutcome> r = SequentialInterval(c.Get("est"), c.Get("se"), c.GetInt("n"),
                                                     c.Get("alpha"), c.Get("tuning"));
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().ToString();
    EXPECT_GOLDEN(f, c, "lo", r->ci.lo);
    EXPECT_GOLDEN(f, c, "hi", r->ci.hi);
    EXPECT_GOLDEN(f, c, "p", r->p_value);
  }
}

TEST(GoldenTest, Cuped) {
  GoldenFile f = Load("cuped.test");
  for (const GoldenCase& c : f.cases) {
    int k = static_cast<int>(c.GetInt("variants"));
    std::vector<BivariateMoments> moments;
    BivariateMoments pooled;
    for (int i = 0; i < k; ++i) {
      moments.push_back(Bivariate(c, std::to_string(i)));
      pooled.Combine(moments.back());
    }
    double theta = CupedTheta(moments);
    EXPECT_GOLDEN(f, c, "theta", theta);
    std::vector<SampleSummary> adjusted;
    for (int i = 0; i < k; ++i) {
      adjusted.push_back(CupedAdjust(moments[i], theta, pooled.MeanY()));
      std::string idx = std::to_string(i);
      double expected_mean = c.Get("expect_mean_" + idx);
      double expected_var = c.Get("expect_var_" + idx);
      EXPECT_LE(std::abs(adjusted[i].mean - expected_mean), f.rel * std::abs(expected_mean) + f.abs)
          << c.name << " mean " << i;
      EXPECT_LE(std::abs(adjusted[i].variance - expected_var), f.rel * expected_var + f.abs)
          << c.name << " var " << i;
    }
    // Through AnalyzeMetric: the headline p-values are the adjusted Welch tests.
    MetricSpec spec{.name = "spend", .kind = MetricKind::kMean};
    std::vector<VariantData> variants(k);
    for (int i = 0; i < k; ++i) {
      variants[i].key = "v" + std::to_string(i);
      variants[i].values =
          Moments::FromSums(moments[i].n(), moments[i].SumX(),
                            moments[i].M2X() + moments[i].SumX() * moments[i].MeanX())
              .value();
      variants[i].cuped = moments[i];
    }
    AnalysisOptions options;
    options.alpha = c.Get("alpha");
    options.correction = Correction::kNone;
    Result<MetricAnalysis> a = AnalyzeMetric(spec, variants, options);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    options.use_cuped = false;
    Result<MetricAnalysis> raw = AnalyzeMetric(spec, variants, options);
    ASSERT_TRUE(raw.ok());
    for (int i = 1; i < k; ++i) {
      std::string idx = std::to_string(i);
      const ComparisonResult& r = a->comparisons.at(i - 1);
      EXPECT_TRUE(r.cuped_applied);
      double expected_p = c.Get("expect_p_" + idx);
      EXPECT_LE(std::abs(*r.p_value - expected_p), f.rel * expected_p + f.abs) << c.name << idx;
      double expected_raw = c.Get("expect_p_raw_" + idx);
      EXPECT_LE(std::abs(*raw->comparisons.at(i - 1).p_value - expected_raw),
                f.rel * expected_raw + f.abs)
          << c.name << " raw " << idx;
      EXPECT_FALSE(raw->comparisons.at(i - 1).cuped_applied);
    }
  }
}

TEST(GoldenTest, QuantileDifference) {
  GoldenFile f = Load("quantile.test");
  for (const GoldenCase& c : f.cases) {
    double p = c.Get("p");
    double alpha = c.Get("alpha");
    std::vector<VariantData> variants(2);
    for (int i = 0; i < 2; ++i) {
      std::string tag = i == 0 ? "c" : "t";
      Result<QuantileLevels> levels = LevelsForQuantile(p, c.GetInt("n_" + tag), alpha);
      ASSERT_TRUE(levels.ok()) << levels.status().ToString();
      double lo = c.Get("expect_level_lo_" + tag);
      double hi = c.Get("expect_level_hi_" + tag);
      EXPECT_LE(std::abs(levels->lower - lo), f.rel * lo + f.abs) << c.name;
      EXPECT_LE(std::abs(levels->upper - hi), f.rel * hi + f.abs) << c.name;
      QuantileSample& q = variants[i].quantile;
      q = {c.GetInt("n_" + tag), p, c.Get("est_" + tag), c.Get("lower_" + tag),
           c.Get("upper_" + tag)};
      Result<double> var = QuantileVariance(q, alpha);
      ASSERT_TRUE(var.ok()) << var.status().ToString();
      double ev = c.Get("expect_var_" + tag);
      EXPECT_LE(std::abs(*var - ev), f.rel * ev + f.abs) << c.name;
      variants[i].key = i == 0 ? "control" : "b";
    }
    MetricSpec spec{.name = "latency", .kind = MetricKind::kQuantile, .quantile = p};
    AnalysisOptions options;
    options.alpha = alpha;
    ExpectComparison(f, c, AnalyzeMetric(spec, variants, options));
  }
}

TEST(GoldenTest, SampleRatioMismatch) {
  GoldenFile f = Load("srm.test");
  for (const GoldenCase& c : f.cases) {
    std::vector<int64_t> counts;
    for (double v : c.GetList("counts")) counts.push_back(static_cast<int64_t>(v));
    std::vector<double> weights = c.GetList("weights");
    Result<SrmResult> r = SampleRatioMismatch(counts, weights);
    ASSERT_TRUE(r.ok()) << c.name << ": " << r.status().ToString();
    EXPECT_GOLDEN(f, c, "chi2", r->chi2);
    EXPECT_GOLDEN(f, c, "p", r->p_value);
    EXPECT_EQ(r->mismatch, c.Get("expect_mismatch") == 1) << c.name;
  }
}

void CheckAdjusted(const char* file, Correction correction) {
  GoldenFile f = Load(file);
  for (const GoldenCase& c : f.cases) {
    std::vector<double> got = AdjustPValues(c.GetList("p"), correction);
    std::vector<double> expected = c.GetList("expect_adjusted");
    ASSERT_EQ(got.size(), expected.size()) << c.name;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_LE(std::abs(got[i] - expected[i]), f.rel * expected[i] + f.abs)
          << file << " " << c.name << " [" << i << "]";
    }
  }
}

TEST(GoldenTest, Holm) { CheckAdjusted("holm.test", Correction::kHolm); }
TEST(GoldenTest, BenjaminiHochberg) { CheckAdjusted("bh.test", Correction::kBenjaminiHochberg); }

}  // namespace
}  // namespace splitstream::stats

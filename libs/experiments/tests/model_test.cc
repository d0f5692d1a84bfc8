#include "splitstream/experiments/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

namespace splitstream::experiments {
namespace {

ExperimentSpec ValidSpec() {
  ExperimentSpec spec;
  spec.key = "checkout-button.v2";
  spec.variants = {{"control", 1}, {"treatment", 1}};
  return spec;
}

TEST(IsValidKey, AcceptsAndRejects) {
  EXPECT_TRUE(IsValidKey("a"));
  EXPECT_TRUE(IsValidKey("0abc_def.ghi-jkl"));
  EXPECT_TRUE(IsValidKey(std::string(64, 'x')));
  EXPECT_FALSE(IsValidKey(std::string(65, 'x')));
  EXPECT_FALSE(IsValidKey(""));
  EXPECT_FALSE(IsValidKey("_abc"));
  EXPECT_FALSE(IsValidKey("-abc"));
  EXPECT_FALSE(IsValidKey(".abc"));
  EXPECT_FALSE(IsValidKey("Abc"));
  EXPECT_FALSE(IsValidKey("a b"));
  EXPECT_FALSE(IsValidKey("a/b"));
  EXPECT_FALSE(IsValidKey("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidKey(std::string("a\0b", 3)));
}

TEST(IsValidText, Utf8WithoutNul) {
  EXPECT_TRUE(IsValidText(""));
  EXPECT_TRUE(IsValidText("user-42"));
  EXPECT_TRUE(IsValidText("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidText(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidText("\xff"));
  EXPECT_FALSE(IsValidText("\xc3"));              // truncated
  EXPECT_FALSE(IsValidText("\xc0\xaf"));          // overlong
  EXPECT_FALSE(IsValidText("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidText("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(ValidateAndNormalize, FillsDefaults) {
  ExperimentSpec spec = ValidSpec();
  ASSERT_TRUE(ValidateAndNormalize(spec).ok());
  EXPECT_EQ(spec.name, "checkout-button.v2");
  EXPECT_EQ(spec.seed, "checkout-button.v2");
  EXPECT_EQ(spec.hash_version, 2);

  ExperimentSpec named = ValidSpec();
  named.name = "Checkout button";
  named.seed = "custom-seed";
  ASSERT_TRUE(ValidateAndNormalize(named).ok());
  EXPECT_EQ(named.name, "Checkout button");
  EXPECT_EQ(named.seed, "custom-seed");
}

TEST(ValidateAndNormalize, AcceptsEdges) {
  ExperimentSpec spec = ValidSpec();
  spec.traffic = 0;
  spec.layer = "homepage";
  spec.layer_start = 0;
  spec.layer_end = 1;
  spec.hash_version = 1;
  spec.variants.resize(16);
  for (size_t i = 0; i < spec.variants.size(); ++i) {
    spec.variants[i] = {"v" + std::to_string(i), 1e-9};
  }
  spec.metrics = {
      {"conv", "purchase", "conversion", std::nullopt, std::nullopt, 24, true, false},
      {"rev", "purchase", "mean", std::nullopt, std::nullopt, std::nullopt, true, false},
      {"aov", "revenue", "ratio", "order", std::nullopt, std::nullopt, true, false},
      {"p95", "latency", "quantile", std::nullopt, 0.95, std::nullopt, false, true},
      {"n", "click", "count", std::nullopt, std::nullopt, std::nullopt, true, false}};
  Status st = ValidateAndNormalize(spec);
  EXPECT_TRUE(st.ok()) << st.ToString();
  spec.traffic = 1;
  spec.layer_start = 0.999;
  EXPECT_TRUE(ValidateAndNormalize(spec).ok());
}

struct BadCase {
  std::string name;
  std::function<void(ExperimentSpec&)> mutate;
  std::string field;
};

class ValidateBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ValidateBad, NamesTheField) {
  ExperimentSpec spec = ValidSpec();
  GetParam().mutate(spec);
  Status st = ValidateAndNormalize(spec);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.field(), GetParam().field) << st.ToString();
  EXPECT_FALSE(st.message().empty());
}

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

MetricSpec Metric(std::string kind) {
  MetricSpec m;
  m.key = "m";
  m.event_type = "purchase";
  m.kind = std::move(kind);
  return m;
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ValidateBad,
    ::testing::Values(
        BadCase{"EmptyKey", [](ExperimentSpec& s) { s.key = ""; }, "key"},
        BadCase{"UpperKey", [](ExperimentSpec& s) { s.key = "Checkout"; }, "key"},
        BadCase{"LongKey", [](ExperimentSpec& s) { s.key = std::string(65, 'a'); }, "key"},
        BadCase{"LongName", [](ExperimentSpec& s) { s.name = std::string(201, 'n'); }, "name"},
        BadCase{"BinaryName", [](ExperimentSpec& s) { s.name = "\xff"; }, "name"},
        BadCase{"LongDescription",
                [](ExperimentSpec& s) { s.description = std::string(10001, 'd'); },
                "description"},
        BadCase{"OneVariant", [](ExperimentSpec& s) { s.variants.resize(1); }, "variants"},
        BadCase{"NoVariants", [](ExperimentSpec& s) { s.variants.clear(); }, "variants"},
        BadCase{"SeventeenVariants",
                [](ExperimentSpec& s) {
                  s.variants.clear();
                  for (int i = 0; i < 17; ++i) s.variants.push_back({"v" + std::to_string(i), 1});
                },
                "variants"},
        BadCase{"BadVariantKey",
                [](ExperimentSpec& s) { s.variants.push_back({"Bad Key", 1}); },
                "variants[2].key"},
        BadCase{"DuplicateVariantKey",
                [](ExperimentSpec& s) { s.variants.push_back({"control", 1}); },
                "variants[2].key"},
        BadCase{"ZeroWeight", [](ExperimentSpec& s) { s.variants[1].weight = 0; },
                "variants[1].weight"},
        BadCase{"NegativeWeight", [](ExperimentSpec& s) { s.variants[0].weight = -1; },
                "variants[0].weight"},
        BadCase{"NanWeight", [](ExperimentSpec& s) { s.variants[1].weight = kNan; },
                "variants[1].weight"},
        BadCase{"InfWeight", [](ExperimentSpec& s) { s.variants[1].weight = kInf; },
                "variants[1].weight"},
        BadCase{"NegativeTraffic", [](ExperimentSpec& s) { s.traffic = -0.01; }, "traffic"},
        BadCase{"TrafficAboveOne", [](ExperimentSpec& s) { s.traffic = 1.01; }, "traffic"},
        BadCase{"NanTraffic", [](ExperimentSpec& s) { s.traffic = kNan; }, "traffic"},
        BadCase{"BadLayer", [](ExperimentSpec& s) { s.layer = "Home Page"; }, "layer"},
        BadCase{"EmptyLayer", [](ExperimentSpec& s) { s.layer = ""; }, "layer"},
        BadCase{"NegativeLayerStart",
                [](ExperimentSpec& s) {
                  s.layer = "l";
                  s.layer_start = -0.1;
                },
                "layer_start"},
        BadCase{"LayerStartOne",
                [](ExperimentSpec& s) {
                  s.layer = "l";
                  s.layer_start = 1;
                },
                "layer_start"},
        BadCase{"NanLayerStart",
                [](ExperimentSpec& s) {
                  s.layer = "l";
                  s.layer_start = kNan;
                },
                "layer_start"},
        BadCase{"EmptyShare",
                [](ExperimentSpec& s) {
                  s.layer = "l";
                  s.layer_start = 0.5;
                  s.layer_end = 0.5;
                },
                "layer_end"},
        BadCase{"LayerEndAboveOne",
                [](ExperimentSpec& s) {
                  s.layer = "l";
                  s.layer_end = 1.5;
                },
                "layer_end"},
        BadCase{"ShareWithoutLayer", [](ExperimentSpec& s) { s.layer_end = 0.5; }, "layer"},
        BadCase{"LongSeed", [](ExperimentSpec& s) { s.seed = std::string(257, 's'); }, "seed"},
        BadCase{"HashVersionZero", [](ExperimentSpec& s) { s.hash_version = 0; },
                "hash_version"},
        BadCase{"HashVersionThree", [](ExperimentSpec& s) { s.hash_version = 3; },
                "hash_version"},
        BadCase{"UnknownMetricKind",
                [](ExperimentSpec& s) { s.metrics = {Metric("median")}; }, "metrics[0].kind"},
        BadCase{"BadMetricKey",
                [](ExperimentSpec& s) {
                  s.metrics = {Metric("mean"), Metric("mean")};
                  s.metrics[1].key = "Bad";
                },
                "metrics[1].key"},
        BadCase{"DuplicateMetricKey",
                [](ExperimentSpec& s) { s.metrics = {Metric("mean"), Metric("count")}; },
                "metrics[1].key"},
        BadCase{"EmptyEventType",
                [](ExperimentSpec& s) {
                  s.metrics = {Metric("mean")};
                  s.metrics[0].event_type = "";
                },
                "metrics[0].event_type"},
        BadCase{"RatioWithoutDenominator",
                [](ExperimentSpec& s) { s.metrics = {Metric("ratio")}; },
                "metrics[0].denominator_event_type"},
        BadCase{"DenominatorOnMean",
                [](ExperimentSpec& s) {
                  s.metrics = {Metric("mean")};
                  s.metrics[0].denominator_event_type = "order";
                },
                "metrics[0].denominator_event_type"},
        BadCase{"QuantileMissing", [](ExperimentSpec& s) { s.metrics = {Metric("quantile")}; },
                "metrics[0].quantile"},
        BadCase{"QuantileOne",
                [](ExperimentSpec& s) {
                  s.metrics = {Metric("quantile")};
                  s.metrics[0].quantile = 1;
                },
                "metrics[0].quantile"},
        BadCase{"QuantileZero",
                [](ExperimentSpec& s) {
                  s.metrics = {Metric("quantile")};
                  s.metrics[0].quantile = 0;
                },
                "metrics[0].quantile"},
        BadCase{"QuantileOnMean",
                [](ExperimentSpec& s) {
                  s.metrics = {Metric("mean")};
                  s.metrics[0].quantile = 0.5;
                },
                "metrics[0].quantile"},
        BadCase{"ZeroWindow",
                [](ExperimentSpec& s) {
                  s.metrics = {Metric("count")};
                  s.metrics[0].window_hours = 0;
                },
                "metrics[0].window_hours"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(StatusName, RoundTrips) {
  for (ExperimentStatus s :
       {ExperimentStatus::kDraft, ExperimentStatus::kRunning, ExperimentStatus::kStopped}) {
    EXPECT_EQ(ParseExperimentStatus(StatusName(s)), s);
  }
  EXPECT_EQ(ParseExperimentStatus("paused"), std::nullopt);
}

}  // namespace
}  // namespace splitstream::experiments

// Prints, as one JSON object, the ClickHouse SQL that Splitstream sends, so that
// clickhouse_current_test.py can run it on a current ClickHouse (chdb) beside the 18.16 of
// the test stack: {"schema": [the CREATE statements of `splitstream migrate` for DATABASE],
// "queries": {name: SELECT, ...}} for a fixed experiment (id 1, variants 1 and 2) with a
// metric of every kind, CUPED on, in both deduplication modes.
//   clickhouse_sql_dump DATABASE
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <string>
#include <vector>

#include "splitstream/pipeline/clickhouse_writer.h"
#include "splitstream/results/sql.h"

namespace {

using splitstream::results::Dedup;
using splitstream::results::ExperimentQuery;
using splitstream::results::MetricQuery;
using splitstream::stats::MetricKind;

MetricQuery Metric(std::string key, std::string event_type, MetricKind kind) {
  MetricQuery m;
  m.key = std::move(key);
  m.event_type = std::move(event_type);
  m.kind = kind;
  return m;
}

ExperimentQuery Experiment(Dedup dedup) {
  ExperimentQuery q;
  q.experiment_id = 1;
  q.variant_ids = {1, 2};
  q.cuped_pre_window_hours = 24 * 14;
  q.dedup = dedup;
  q.metrics.push_back(Metric("converted", "purchase", MetricKind::kConversion));
  q.metrics.back().window_hours = 48;
  q.metrics.push_back(Metric("revenue", "purchase", MetricKind::kMean));
  q.metrics.push_back(Metric("views", "view", MetricKind::kCount));
  q.metrics.push_back(Metric("per_view", "purchase", MetricKind::kRatio));
  q.metrics.back().denominator_event_type = "view";
  q.metrics.push_back(Metric("p50", "purchase", MetricKind::kQuantile));
  q.metrics.push_back(Metric("p95", "latency", MetricKind::kQuantile));
  q.metrics.back().quantile = 0.95;
  return q;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DATABASE\n", argv[0]);
    return 2;
  }
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  w.Key("schema");
  w.StartArray();
  for (const std::string& s : splitstream::pipeline::ClickHouseSchemaStatements(argv[1])) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  }
  w.EndArray();
  w.Key("queries");
  w.StartObject();
  for (Dedup dedup : {Dedup::kFinal, Dedup::kArgMax}) {
    const std::string mode = dedup == Dedup::kFinal ? "final" : "argmax";
    const ExperimentQuery q = Experiment(dedup);
    auto main_query = splitstream::results::BuildMainQuery(q);
    auto quantiles = splitstream::results::BuildQuantileQuery(
        q, {{.metric_index = 4, .variant_id = 1, .levels = {0.25, 0.5, 0.75}},
            {.metric_index = 5, .variant_id = 2, .levels = {0.95}}});
    if (!main_query.ok() || !quantiles.ok()) {
      std::fprintf(stderr, "%s\n",
                   (main_query.ok() ? quantiles.status() : main_query.status()).ToString().c_str());
      return 1;
    }
    for (const auto& [name, sql] :
         {std::pair{"main_" + mode, *main_query}, std::pair{"quantiles_" + mode, *quantiles}}) {
      w.Key(name.c_str());
      w.String(sql.c_str(), static_cast<rapidjson::SizeType>(sql.size()));
    }
  }
  w.EndObject();
  w.EndObject();
  std::printf("%s\n", out.GetString());
  return 0;
}

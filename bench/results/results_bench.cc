// results_bench: generates an experiment with N users and M events in ClickHouse (INSERT ...
// SELECT FROM numbers()), then times, in the same run, (1) ResultsEngine::Compute with FINAL
// and with argMax deduplication (all metric kinds, CUPED on), (2) the bare ClickHouse
// aggregation without deduplication (count, avg, quantiles by variant) and (3) the streamed
// read that the incremental engine's build would do (libs/results README). Medians of --runs.
//
// Usage: results_bench [--users N] [--events M] [--runs R] [--database DB] [--keep]
//                      [--dedup final|argmax|both] [--csv FILE] [--print-sql]
// --csv writes the first FINAL run's results (RenderCsv) to FILE, to compare the figures of two
// versions of the engine on the same data; --print-sql prints the main query and exits.
// Needs SPLITSTREAM_CLICKHOUSE_URL.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "splitstream/pipeline/clickhouse_writer.h"
#include "splitstream/results/render.h"
#include "splitstream/results/results.h"

namespace {

using namespace splitstream;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The _batch of the generated rows: writer 1, batches 1, 2, ...; the changes of the refresh
// runs come from writer 2.
constexpr uint64_t kWriter1 = uint64_t{1} << 32, kWriter2 = uint64_t{2} << 32;

int Fail(const Status& st, std::string_view what) {
  fmt::print(stderr, "results_bench: {}: {}\n", what, st.ToString());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t users = 1000000, events = 10000000;
  int runs = 3;
  std::string database = "results_bench";
  bool keep = false;
  std::string dedups = "both";
  std::string csv_path;
  bool print_sql = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--users")
      users = std::atoll(next().c_str());
    else if (a == "--events")
      events = std::atoll(next().c_str());
    else if (a == "--runs")
      runs = std::atoi(next().c_str());
    else if (a == "--database")
      database = next();
    else if (a == "--keep")
      keep = true;
    else if (a == "--dedup")
      dedups = next();
    else if (a == "--csv")
      csv_path = next();
    else if (a == "--print-sql")
      print_sql = true;
    else {
      fmt::print(
          stderr,
          "usage: results_bench [--users N] [--events M] [--runs R] [--database DB] [--keep] "
          "[--dedup final|argmax|both] [--csv FILE] [--print-sql]\n");
      return 2;
    }
  }
  const char* url = std::getenv("SPLITSTREAM_CLICKHOUSE_URL");
  if (!url) {
    fmt::print(stderr, "results_bench: SPLITSTREAM_CLICKHOUSE_URL is not set\n");
    return 2;
  }
  clickhouse::ClientOptions co;
  co.url = url;
  co.database = "";
  co.request_timeout = std::chrono::minutes(10);
  auto admin = clickhouse::Client::Create(co);
  if (!admin.ok()) return Fail(admin.status(), "client");
  clickhouse::Client& ch = **admin;
  if (!keep) (void)ch.Execute("DROP DATABASE IF EXISTS " + database);
  if (Status st = pipeline::MigrateClickHouse(ch, database); !st.ok()) return Fail(st, "schema");
  co.database = database;

  auto count = ch.QueryRows(fmt::format("SELECT count() FROM {}.events", database));
  if (!count.ok()) return Fail(count.status(), "count");
  if ((*count)[0][0] == "0") {
    auto t0 = std::chrono::steady_clock::now();
    // Users u0..u(N-1), alternating variants 1 and 2, exposed one per millisecond from
    // 2024-05-01T12:00:00Z. Every 17th user has a superseded older version (same key).
    const int64_t base_s = 1714564800;
    Status st = ch.Execute(fmt::format(
        "INSERT INTO {}.assignments (experiment_id, user_id, variant_id, assigned_at, "
        "assigned_at_us, _version, _deleted, _source_ts_ms, _batch) SELECT 1, concat('u', "
        "toString(number % {})), 1 + (number % {}) % 2, toDateTime({} + intDiv(number % {}, "
        "1000)), ({} * 1000 + number % {}) * 1000, if(number < {}, 10, 5), 0, "
        "{} * 1000 + number % {}, {} + intDiv(number, 150000) FROM numbers({})",
        database, users, users, base_s, users, base_s, users, users, base_s, users, kWriter1,
        users + users / 17));
    if (!st.ok()) return Fail(st, "insert assignments");
    // Batches of 150 000 rows of one writer, as the sink would write them (_batch, libs/pipeline
    // README). Events: each user gets M/N events spread from 2 h before to 70 h after exposure: 30
    // % page views (no value), 10 % purchases (value 1..100, +5 % in variant 2), 60 % loads
    // (latency 50..549 ms).
    st = ch.Execute(fmt::format(
        "INSERT INTO {0}.events (event_id, experiment_id, variant_id, user_id, event_type, value, "
        "properties, ts, ts_us, received_at, received_at_us, _version, _deleted, _source_ts_ms, "
        "_batch) "
        "SELECT toString(number), 1, v, concat('u', toString(u)), "
        "multiIf(k < 3, 'view', k < 4, 'purchase', 'load'), "
        "multiIf(k < 3, CAST(NULL AS Nullable(Float64)), k < 4, "
        "toNullable(toFloat64(1 + intHash32(number) % 100) * if(v = 2, 1.05, 1)), "
        "toNullable(toFloat64(50 + intHash32(number) % 500))), '{{}}', "
        "toDateTime(intDiv(t, 1000000)), t, toDateTime(intDiv(t, 1000000)), t, 20, 0, "
        "intDiv(t, 1000), {4} + intDiv(number, 150000) FROM (SELECT number, number % {1} AS u, "
        "1 + u % 2 AS v, "
        "intHash32(number * 3 + 1) % 10 AS k, ({2} * 1000 + u) * 1000 + "
        "(toInt64(intHash32(number * 7 + 2) % 72) - 2) * 3600000000 AS t FROM numbers({3}))",
        database, users, base_s, events, kWriter1));
    if (!st.ok()) return Fail(st, "insert events");
    fmt::print("generated {} users and {} events in {:.1f} s\n", users, events,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }

  experiments::Experiment e;
  e.id = ExperimentId(1);
  e.spec.key = "bench";
  e.spec.name = "bench";
  e.variants = {{VariantId(1), "control", 1}, {VariantId(2), "b", 1}};
  auto metric = [](std::string key, std::string type, std::string kind) {
    experiments::MetricSpec m;
    m.key = std::move(key);
    m.event_type = std::move(type);
    m.kind = std::move(kind);
    return m;
  };
  experiments::MetricSpec checkout = metric("checkout", "purchase", "conversion");
  checkout.window_hours = 48;
  experiments::MetricSpec ratio = metric("revenue_per_view", "purchase", "ratio");
  ratio.denominator_event_type = "view";
  experiments::MetricSpec p50 = metric("latency_p50", "load", "quantile");
  p50.quantile = 0.5;
  experiments::MetricSpec p95 = metric("latency_p95", "load", "quantile");
  p95.quantile = 0.95;
  e.spec.metrics = {
      checkout, metric("revenue", "purchase", "mean"), metric("views", "view", "count"), ratio, p50,
      p95};

  if (print_sql) {
    results::ExperimentQuery q;
    q.experiment_id = 1;
    q.variant_ids = {1, 2};
    q.cuped_pre_window_hours = results::EngineOptions().cuped_pre_window_hours;
    for (const experiments::MetricSpec& m : e.spec.metrics) {
      results::MetricQuery mq;
      mq.key = m.key;
      mq.event_type = m.event_type;
      mq.kind = *results::ParseMetricKind(m.kind);
      mq.denominator_event_type = m.denominator_event_type.value_or("");
      mq.quantile = m.quantile.value_or(0.5);
      mq.window_hours = m.window_hours;
      q.metrics.push_back(mq);
    }
    auto sql = results::BuildMainQuery(q);
    if (!sql.ok()) return Fail(sql.status(), "sql");
    fmt::print("{}\n", *sql);
    return 0;
  }
  std::vector<results::Dedup> modes;
  if (dedups == "final" || dedups == "both") modes.push_back(results::Dedup::kFinal);
  if (dedups == "argmax" || dedups == "both") modes.push_back(results::Dedup::kArgMax);
  if (modes.empty()) {
    fmt::print(stderr, "results_bench: --dedup must be final, argmax or both\n");
    return 2;
  }
  std::string verdicts;
  for (results::Dedup dedup : modes) {
    results::EngineOptions eo;
    eo.dedup = dedup;
    eo.incremental = false;
    auto engine = results::ResultsEngine::Create(co, eo);
    if (!engine.ok()) return Fail(engine.status(), "engine");
    std::vector<double> total, query;
    int trips = 0;
    for (int r = 0; r < runs; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      auto res = (*engine)->Compute(e);
      if (!res.ok()) return Fail(res.status(), "compute");
      total.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      query.push_back(res->query_seconds);
      trips = res->round_trips;
      if (r == 0 && dedup == results::Dedup::kFinal) {
        fmt::print("exposed users: {} / {}\n", res->variants[0].users, res->variants[1].users);
        if (!csv_path.empty()) std::ofstream(csv_path) << results::RenderCsv(*res);
        for (const auto& m : res->metrics) {
          if (m.analysis) verdicts += "  " + m.analysis->comparisons[0].verdict + "\n";
        }
      }
    }
    fmt::print(
        "results ({}, {} metrics, CUPED on, {} round trips): median {:.3f} s "
        "(ClickHouse {:.3f} s)\n",
        dedup == results::Dedup::kFinal ? "FINAL" : "argMax", e.spec.metrics.size(), trips,
        Median(total), Median(query));
  }
  fmt::print("{}", verdicts);

  auto bare_client = clickhouse::Client::Create(co);
  if (!bare_client.ok()) return Fail(bare_client.status(), "client");
  std::vector<double> bare;
  for (int r = 0; r < runs; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    auto rows = (*bare_client)
                    ->QueryRows(
                        "SELECT variant_id, count(), avg(value), quantiles(0.5, 0.95)(value) "
                        "FROM events GROUP BY variant_id");
    if (!rows.ok()) return Fail(rows.status(), "bare aggregation");
    bare.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  fmt::print(
      "bare aggregation (count, avg, quantiles by variant, no dedup, {} rows): median "
      "{:.3f} s\n",
      events, Median(bare));

  // The incremental engine (the default, libs/results README "Incremental results"): the
  // first request builds the experiment's state; each later one reads only what was written
  // since. Before each timed refresh, one batch of changes: 10 000 new events, 100 updated
  // and 100 deleted ones, 1 000 newly exposed users.
  results::EngineOptions state_options;
  auto state_engine = results::ResultsEngine::Create(co, state_options);
  if (!state_engine.ok()) return Fail(state_engine.status(), "engine");
  auto t_build = std::chrono::steady_clock::now();
  auto built = (*state_engine)->Compute(e);
  if (!built.ok()) return Fail(built.status(), "state build");
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_build).count();
  if (built->source != "state built") {
    return Fail(Status::Internal("the first request was computed by " + built->source), "state");
  }
  std::vector<double> refresh;
  int refresh_trips = 0;
  std::string state_csv;
  for (int r = 0; r < runs; ++r) {
    const uint64_t batch = kWriter2 | static_cast<uint64_t>(r + 1);
    const uint64_t version = 100 + static_cast<uint64_t>(r);
    const std::string copy_columns =
        "event_id, experiment_id, variant_id, user_id, event_type, value, properties, ts, ts_us, "
        "received_at, received_at_us";
    std::vector<std::string> changes = {
        // New events of existing users, an hour after their exposure.
        fmt::format(
            "INSERT INTO {0}.events ({1}, _version, _deleted, _source_ts_ms, _batch) SELECT "
            "concat('r{2}-', toString(number)), 1, 1 + u % 2, concat('u', toString(u)), "
            "if(number % 3 = 0, 'purchase', 'load'), toNullable(toFloat64(1 + number % 97)), "
            "'{{}}', toDateTime(intDiv(t, 1000000)), t, toDateTime(intDiv(t, 1000000)), t, {3}, 0, "
            "intDiv(t, 1000), {4} FROM (SELECT number, intHash32(number + {2}) % {5} AS u, "
            "({6} * 1000 + u) * 1000 + 3600000000 AS t FROM numbers(10000))",
            database, copy_columns, r, version, batch, users, int64_t{1714564800}),
        // Updates (a new value) and deletes (the key only) of generated events.
        fmt::format("INSERT INTO {0}.events ({1}, _version, _deleted, _source_ts_ms, _batch) "
                    "SELECT event_id, experiment_id, variant_id, user_id, event_type, "
                    "toNullable(toFloat64(7)), properties, ts, ts_us, received_at, received_at_us, "
                    "{2}, 0, _source_ts_ms, {3} FROM {0}.events WHERE event_id IN (SELECT "
                    "toString(intHash32(number + {4}) % {5}) FROM numbers(100))",
                    database, copy_columns, version, batch, r * 1000, events),
        fmt::format("INSERT INTO {0}.events ({1}, _version, _deleted, _source_ts_ms, _batch) "
                    "SELECT event_id, 0, 0, '', '', NULL, '', ts, ts_us, ts, ts_us, {2}, 1, "
                    "_source_ts_ms, {3} FROM {0}.events WHERE event_id IN (SELECT "
                    "toString(intHash32(number + {4}) % {5}) FROM numbers(100))",
                    database, copy_columns, version, batch, r * 1000 + 500, events),
        // Newly exposed users.
        fmt::format("INSERT INTO {0}.assignments (experiment_id, user_id, variant_id, "
                    "assigned_at, assigned_at_us, _version, _deleted, _source_ts_ms, _batch) "
                    "SELECT 1, concat('r{1}-u', toString(number)), 1 + number % 2, "
                    "toDateTime({2}), {2} * 1000000, {3}, 0, {2} * 1000, {4} FROM numbers(1000)",
                    database, r, int64_t{1714564800}, version, batch),
    };
    for (const std::string& sql : changes) {
      if (Status st = ch.Execute(sql); !st.ok()) return Fail(st, "insert changes");
    }
    auto t0 = std::chrono::steady_clock::now();
    auto res = (*state_engine)->Compute(e);
    if (!res.ok()) return Fail(res.status(), "state refresh");
    refresh.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (res->source != "state refreshed") {
      return Fail(Status::Internal("a refresh was computed by " + res->source), "state");
    }
    refresh_trips = res->round_trips;
    res->computed_at_us = 0;  // the one field the query's answer has otherwise
    state_csv = results::RenderCsv(*res);
  }
  const results::EngineStateStats stats = (*state_engine)->state_stats();
  fmt::print(
      "state build (first request: {} events, {} users kept, {} MB): {:.3f} s\n"
      "state refresh (10 000 new events, 100 updated, 100 deleted, 1 000 new exposures, {} round "
      "trips): median {:.3f} s\n",
      stats.events, stats.users, stats.bytes / 1000000, build_s, refresh_trips, Median(refresh));
  // The same figures from the query, on the data after the last refresh.
  results::EngineOptions query_options;
  query_options.incremental = false;
  auto query_engine = results::ResultsEngine::Create(co, query_options);
  if (!query_engine.ok()) return Fail(query_engine.status(), "engine");
  auto from_query = (*query_engine)->Compute(e);
  if (!from_query.ok()) return Fail(from_query.status(), "query after the refreshes");
  from_query->computed_at_us = 0;
  const std::string query_csv = results::RenderCsv(*from_query);
  // Sums of non-integer values in another order may differ in the last bits: compare numbers.
  double worst = 0;
  bool same_shape = true;
  {
    auto fields = [](const std::string& text) {
      std::vector<std::string> out(1);
      for (char c : text) {
        if (c == ',' || c == '\n') {
          out.emplace_back();
        } else {
          out.back() += c;
        }
      }
      return out;
    };
    std::vector<std::string> a = fields(state_csv), b = fields(query_csv);
    same_shape = a.size() == b.size();
    for (size_t i = 0; same_shape && i < a.size(); ++i) {
      char* end_a = nullptr;
      char* end_b = nullptr;
      double x = std::strtod(a[i].c_str(), &end_a), y = std::strtod(b[i].c_str(), &end_b);
      bool numbers = !a[i].empty() && !b[i].empty() && *end_a == '\0' && *end_b == '\0';
      if (!numbers) {
        same_shape = same_shape && a[i] == b[i];
        continue;
      }
      worst = std::max(worst, std::abs(x - y) / std::max(1.0, std::abs(y)));
    }
  }
  fmt::print(
      "state against the query after the refreshes: {}, largest relative difference {:.1e}\n",
      same_shape ? "same fields" : "DIFFERENT FIELDS", worst);
  if (!same_shape || worst > 1e-9) {
    fmt::print(stderr, "state:\n{}\nquery:\n{}\n", state_csv, query_csv);
    return 1;
  }
  if (!keep) (void)ch.Execute("DROP DATABASE IF EXISTS " + database);
  return 0;
}

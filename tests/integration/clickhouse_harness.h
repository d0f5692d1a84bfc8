// Comparing a ClickHouse table's deduplicated state with its PostgreSQL table, shared by the
// direct-mode, sink and `up` integration tests: each row rendered identically on both sides
// (timestamps as microseconds and whole seconds, doubles re-printed in C++, NULL as \N) and
// compared as a sorted multiset, so row count and every column must agree.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cdc_harness.h"
#include "splitstream/clickhouse/client.h"
#include "splitstream/pg/pg.h"
#include "splitstream/pipeline/clickhouse_writer.h"

namespace splitstream::testing {

// A client of the ClickHouse at `url` (default: the test stack's) with `database` as default
// ("" for none).
inline std::unique_ptr<clickhouse::Client> NewClickHouse(
    const std::string& database, const std::string& url = Env("SPLITSTREAM_CLICKHOUSE_URL")) {
  clickhouse::ClientOptions opts;
  opts.url = url;
  opts.database = database;
  auto c = clickhouse::Client::Create(opts);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

// One compared column: how PostgreSQL and ClickHouse render it as text. Timestamps compare
// their microseconds and whole seconds (the `c_us` and `c DateTime` columns); floats are
// re-printed in C++ (shortest round-trip) on both sides.
struct Compared {
  std::string pg, ch;
  bool is_float = false;
};

inline Compared Plain(const std::string& c) { return {c + "::text", "toString(" + c + ")"}; }
inline Compared Float(const std::string& c) { return {c + "::text", "toString(" + c + ")", true}; }
inline Compared Timestamp(const std::string& c) {
  return {fmt::format("(extract(epoch from {0}) * 1000000)::bigint || '/' || "
                      "floor(extract(epoch from {0}))::bigint",
                      c),
          fmt::format("concat(toString({0}_us), '/', toString(toUnixTimestamp({0})))", c)};
}

struct TableSpec {
  std::string name;
  std::vector<std::string> key;  // ClickHouse ORDER BY columns
  std::vector<std::string> ch_columns;
  std::vector<Compared> compared;
};

// The four Splitstream tables as `splitstream migrate` creates them on both sides.
inline std::vector<TableSpec> SplitstreamTables() {
  std::vector<TableSpec> t = {
      {"experiments",
       {"id"},
       {"id",
        "key",
        "name",
        "description",
        "status",
        "traffic",
        "layer",
        "layer_start",
        "layer_end",
        "seed",
        "hash_version",
        "metrics",
        "allocation_version",
        "created_at",
        "created_at_us",
        "started_at",
        "started_at_us",
        "stopped_at",
        "stopped_at_us",
        "updated_at",
        "updated_at_us"},
       {Plain("id"), Plain("key"), Plain("name"), Plain("description"), Plain("status"),
        Float("traffic"), Plain("layer"), Float("layer_start"), Float("layer_end"), Plain("seed"),
        Plain("hash_version"), Plain("metrics"), Plain("allocation_version"),
        Timestamp("created_at"), Timestamp("started_at"), Timestamp("stopped_at"),
        Timestamp("updated_at")}},
      {"variants",
       {"id"},
       {"id", "experiment_id", "key", "weight", "position"},
       {Plain("id"), Plain("experiment_id"), Plain("key"), Float("weight"), Plain("position")}},
      {"assignments",
       {"experiment_id", "user_id"},
       {"experiment_id", "user_id", "variant_id", "assigned_at", "assigned_at_us"},
       {Plain("experiment_id"), Plain("user_id"), Plain("variant_id"), Timestamp("assigned_at")}},
      {"events",
       {"event_id", "ts_us"},
       {"event_id", "experiment_id", "variant_id", "user_id", "event_type", "value", "properties",
        "ts", "ts_us", "received_at", "received_at_us"},
       {Plain("event_id"), Plain("experiment_id"), Plain("variant_id"), Plain("user_id"),
        Plain("event_type"), Float("value"), Plain("properties"), Timestamp("ts"),
        Timestamp("received_at")}},
  };
  return t;
}

inline std::string Normalize(const std::optional<std::string>& v, bool is_float) {
  if (!v) return "\\N";
  if (!is_float) return *v;
  double d = std::strtod(v->c_str(), nullptr);
  return fmt::format("{}", d);
}

// Every row of the table rendered as one string, sorted: PostgreSQL's current state.
inline std::vector<std::string> PgRows(pg::Connection& pg, const TableSpec& t) {
  std::string select;
  for (const auto& c : t.compared) select += (select.empty() ? "" : ", ") + c.pg;
  auto rows = pg.Exec("SELECT " + select + " FROM " + t.name);
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  std::vector<std::string> out;
  if (!rows.ok()) return out;
  for (size_t r = 0; r < rows->size(); ++r) {
    std::string line;
    for (size_t c = 0; c < t.compared.size(); ++c) {
      const auto& v = rows->at(r, c);
      std::optional<std::string> s;
      if (v) s = std::string(*v);
      line += Normalize(s, t.compared[c].is_float) + "\t";
    }
    out.push_back(std::move(line));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The deduplicated ClickHouse state rendered the same way.
inline Result<std::vector<std::string>> ChRows(clickhouse::Client& ch, const std::string& db,
                                               const TableSpec& t) {
  std::string select;
  for (const auto& c : t.compared) select += (select.empty() ? "" : ", ") + c.ch;
  std::string sql = "SELECT " + select + " FROM (" +
                    pipeline::DeduplicatedSelect(db, t.name, t.ch_columns, t.key) + ")";
  SPLITSTREAM_ASSIGN_OR_RETURN(auto rows, ch.QueryNullableRows(sql));
  std::vector<std::string> out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < t.compared.size() && c < row.size(); ++c) {
      line += Normalize(row[c], t.compared[c].is_float) + "\t";
    }
    out.push_back(std::move(line));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Waits until every ClickHouse table equals its PostgreSQL table; on timeout reports the
// first differences.
inline void ExpectEventuallyEqual(pg::Connection& pg, clickhouse::Client& ch, const std::string& db,
                                  const std::vector<TableSpec>& tables,
                                  std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string report;
  for (;;) {
    report.clear();
    for (const auto& t : tables) {
      auto want = PgRows(pg, t);
      auto got = ChRows(ch, db, t);
      if (!got.ok()) {
        report += t.name + ": " + got.status().ToString() + "\n";
        continue;
      }
      if (*got == want) continue;
      std::vector<std::string> missing, extra;
      std::set_difference(want.begin(), want.end(), got->begin(), got->end(),
                          std::back_inserter(missing));
      std::set_difference(got->begin(), got->end(), want.begin(), want.end(),
                          std::back_inserter(extra));
      report += fmt::format(
          "{}: PostgreSQL {} rows, ClickHouse {}; {} missing (e.g. {}), {} extra "
          "(e.g. {})\n",
          t.name, want.size(), got->size(), missing.size(), missing.empty() ? "-" : missing[0],
          extra.size(), extra.empty() ? "-" : extra[0]);
    }
    if (report.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  ADD_FAILURE() << "ClickHouse differs from PostgreSQL:\n" << report;
}

}  // namespace splitstream::testing

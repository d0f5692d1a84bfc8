// Inserts rows of the `events` shape into ClickHouse as RowBinary in batches and reports
// rows/s (encoding included), median of --runs runs, with and without gzip.
//
//   eval "$(scripts/stack env --dir DIR)"
//   build-bench/bench/clickhouse/clickhouse_insert_bench [--rows 1000000] [--batch 100000] [--runs
//   3]
//
// Needs SPLITSTREAM_CLICKHOUSE_URL. Works in its own database and drops it at the end.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "splitstream/clickhouse/client.h"

namespace {

using splitstream::Status;
using namespace splitstream::clickhouse;

constexpr const char* kCreate = R"(
  CREATE TABLE events (
    event_id Int64,
    experiment_id Int64,
    variant_id Int64,
    user_id String,
    event_type String,
    value Nullable(Float64),
    properties String,
    ts Int64,
    _version UInt64,
    _deleted UInt8
  ) ENGINE = ReplacingMergeTree(_version)
  ORDER BY (experiment_id, event_id))";

const std::vector<std::string> kColumns = {"event_id",   "experiment_id", "variant_id", "user_id",
                                           "event_type", "value",         "properties", "ts",
                                           "_version",   "_deleted"};

void EncodeBatch(int64_t first, int64_t count, RowBinaryWriter& w) {
  static const char* kTypes[] = {"exposure", "click", "purchase"};
  char user[32];
  for (int64_t id = first; id < first + count; ++id) {
    w.Int64(id);
    w.Int64(1 + id % 7);
    w.Int64(1 + id % 3);
    int n = std::snprintf(user, sizeof(user), "user-%lld", static_cast<long long>(id % 100000));
    w.String(std::string_view(user, static_cast<size_t>(n)));
    w.String(kTypes[id % 3]);
    bool has_value = id % 3 == 2;
    w.NullMarker(!has_value);
    if (has_value) w.Float64(static_cast<double>(id % 1000) * 0.37);
    w.String(id % 10 == 0 ? R"({"country":"de","device":"mobile"})" : "{}");
    w.Int64(int64_t{1700000000000000} + id * 1000);
    w.UInt64(static_cast<uint64_t>(id) + 1);
    w.UInt8(0);
  }
}

int Fail(const Status& st) {
  std::fprintf(stderr, "clickhouse_insert_bench: %s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 1000000, batch = 100000;
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows")) rows = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
  }
  const char* url = std::getenv("SPLITSTREAM_CLICKHOUSE_URL");
  if (!url || !*url) {
    std::fprintf(stderr, "SPLITSTREAM_CLICKHOUSE_URL is not set\n");
    return 1;
  }
  const std::string db = "splitstream_ch_bench_" + std::to_string(getpid());
  ClientOptions admin_options;
  admin_options.url = url;
  admin_options.database = "";
  auto admin = Client::Create(admin_options);
  if (!admin.ok()) return Fail(admin.status());
  if (Status st = (*admin)->Execute("CREATE DATABASE " + QuoteIdentifier(db)); !st.ok()) {
    return Fail(st);
  }

  // Encoding alone, for reference.
  {
    RowBinaryWriter w;
    auto start = std::chrono::steady_clock::now();
    for (int64_t first = 0; first < rows; first += batch) {
      w.Clear();
      EncodeBatch(first, std::min(batch, rows - first), w);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("encode only: %.0f rows/s (%.1f bytes/row)\n", rows / s,
                static_cast<double>(w.size()) / static_cast<double>(std::min(batch, rows)));
  }

  int rc = 0;
  for (bool gzip : {false, true}) {
    ClientOptions options;
    options.url = url;
    options.database = db;
    options.compress_requests = gzip;
    auto client = Client::Create(options);
    if (!client.ok()) return Fail(client.status());
    std::vector<double> rates;
    int64_t body = 0, sent = 0;
    for (int run = 0; run < runs && rc == 0; ++run) {
      Status st = (*client)->Execute("DROP TABLE IF EXISTS events");
      if (st.ok()) st = (*client)->Execute(kCreate);
      if (!st.ok()) return Fail(st);
      RowBinaryWriter w;
      ClientStats before = (*client)->stats();
      auto start = std::chrono::steady_clock::now();
      for (int64_t first = 0; first < rows && st.ok(); first += batch) {
        w.Clear();
        EncodeBatch(first, std::min(batch, rows - first), w);
        st = (*client)->Insert("events", kColumns, "RowBinary", w.buffer());
      }
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!st.ok()) {
        rc = Fail(st);
        break;
      }
      ClientStats after = (*client)->stats();
      body = after.body_bytes - before.body_bytes;
      sent = after.uploaded_bytes - before.uploaded_bytes;
      rates.push_back(static_cast<double>(rows) / s);
    }
    if (rc != 0) break;
    std::sort(rates.begin(), rates.end());
    std::printf(
        "insert %s: median %.0f rows/s over %d runs (min %.0f, max %.0f); %lld rows in "
        "batches of %lld; body %.1f MB, sent %.1f MB\n",
        gzip ? "gzip-1" : "plain ", rates[rates.size() / 2], runs, rates.front(), rates.back(),
        static_cast<long long>(rows), static_cast<long long>(batch),
        static_cast<double>(body) / 1e6, static_cast<double>(sent) / 1e6);
  }
  Status dropped = (*admin)->Execute("DROP DATABASE IF EXISTS " + QuoteIdentifier(db));
  if (!dropped.ok()) return Fail(dropped);
  return rc;
}

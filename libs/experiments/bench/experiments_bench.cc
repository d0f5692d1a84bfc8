// Measures the choices documented in libs/experiments/README.md against a real PostgreSQL
// (SPLITSTREAM_PG_DSN; a fresh database is created and dropped):
//   1. assignment group commit: max_assign_batch 512 vs 1 (one statement per assignment);
//   2. repeated assignment of already stored users (is an in-memory cache worth it?);
//   3. events in 1 000-event batches: INSERT ... SELECT FROM unnest (the service) vs COPY
//      into a temporary staging table then INSERT ... SELECT, and the cost of a foreign key
//      from events to assignments.
// Prints one line per measurement (median of 3 runs).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <vector>

#include "splitstream/experiments/migrations.h"
#include "splitstream/experiments/service.h"
#include "splitstream/pg/pg.h"
#include "splitstream/testing/test_database.h"

namespace splitstream::experiments {
namespace {

using Clock_ = std::chrono::steady_clock;

double Seconds(Clock_::time_point since) {
  return std::chrono::duration<double>(Clock_::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

// Submits `users` assignments at once and waits for every callback; returns rows/s.
double AssignAll(Service& s, const std::string& experiment, const std::string& prefix, int users) {
  std::mutex mu;
  std::condition_variable cv;
  int left = users;
  std::atomic<int> failed{0};
  auto start = Clock_::now();
  for (int u = 0; u < users; ++u) {
    s.Assign({prefix + std::to_string(u), experiment}, [&](Result<Assignment> r) {
      if (!r.ok()) failed++;
      std::lock_guard<std::mutex> lock(mu);
      if (--left == 0) cv.notify_one();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return left == 0; });
  double secs = Seconds(start);
  if (failed.load() > 0) Check(Status::Internal("assignments failed"), "assign");
  return users / secs;
}

std::unique_ptr<Service> MakeService(pg::Pool* pool, const std::string& dsn, int batch) {
  auto s = Service::Create(pool, {dsn, batch, 2, nullptr});
  Check(s.status(), "service");
  return std::move(s).value();
}

int Main() {
  auto db = testing::TestDatabase::Create();
  Check(db.status(), "database");
  const std::string dsn = (*db)->dsn();
  auto pool = pg::Pool::Create(dsn, 6);
  Check(pool.status(), "pool");
  auto conn = pg::Connection::Open(dsn);
  Check(conn.status(), "connection");
  pg::Connection& sql = **conn;

  constexpr int kUsers = 6000;
  {
    auto s = MakeService(pool->get(), dsn, 512);
    for (const char* key : {"grouped", "single"}) {
      ExperimentSpec spec;
      spec.key = key;
      spec.variants = {{"control", 1}, {"treatment", 1}};
      Check(s->Create(spec).status(), "create");
      Check(s->Start(key).status(), "start");
    }
    std::vector<double> grouped, repeat;
    for (int run = 0; run < 3; ++run) {
      grouped.push_back(AssignAll(*s, "grouped", fmt::format("r{}-", run), kUsers));
      repeat.push_back(AssignAll(*s, "grouped", fmt::format("r{}-", run), kUsers));
    }
    auto stats = s->stats();
    std::printf("assign, group commit (batch <= 512, 2 threads): %.0f new rows/s (%lu batches)\n",
                Median(grouped), static_cast<unsigned long>(stats.assign_batches));
    std::printf("assign, already stored users (batch <= 512):     %.0f answers/s\n",
                Median(repeat));
    s.reset();
    auto single = MakeService(pool->get(), dsn, 1);
    std::vector<double> one;
    for (int run = 0; run < 3; ++run) {
      one.push_back(AssignAll(*single, "single", fmt::format("s{}-", run), kUsers / 6));
    }
    std::printf("assign, one statement per row (2 threads):       %.0f new rows/s\n", Median(one));
  }

  auto s = MakeService(pool->get(), dsn, 512);
  constexpr int kBatch = 1000;
  constexpr int kBatches = 20;
  auto make_batch = [&](int b) {
    std::vector<Event> events;
    for (int i = 0; i < kBatch; ++i) {
      Event e;
      e.experiment = "grouped";
      e.user_id = fmt::format("r0-{}", (b * kBatch + i) % kUsers);
      e.type = "purchase";
      e.value = i * 0.5;
      e.properties_json = fmt::format(R"({{"plan":"p{}","n":{}}})", i % 7, i);
      events.push_back(std::move(e));
    }
    return events;
  };
  auto run_insert = [&]() {
    std::vector<double> rates;
    for (int run = 0; run < 3; ++run) {
      auto start = Clock_::now();
      for (int b = 0; b < kBatches; ++b) Check(s->TrackEvents(make_batch(b)).status(), "track");
      rates.push_back(kBatch * kBatches / Seconds(start));
    }
    return Median(rates);
  };
  std::printf("events, INSERT ... SELECT FROM unnest, 1000/batch: %.0f rows/s\n", run_insert());

  // COPY into a staging table, then the same join and insert.
  Check(sql.ExecScript("CREATE TEMP TABLE staging (event_id uuid, experiment_id bigint, "
                       "user_id text, event_type text, value float8, properties jsonb, "
                       "ts timestamptz, ord bigint)"),
        "staging");
  auto exp_id = sql.Exec("SELECT id FROM experiments WHERE key = 'grouped'");
  Check(exp_id.status(), "id");
  const std::string id(exp_id->text(0, 0));
  std::vector<double> copy_rates;
  for (int run = 0; run < 3; ++run) {
    auto start = Clock_::now();
    for (int b = 0; b < kBatches; ++b) {
      std::string data;
      int ord = 0;
      for (const Event& e : make_batch(b)) {
        data += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\tnow\t{}\n", "\\N", id, e.user_id, e.type,
                            *e.value, e.properties_json, ++ord);
      }
      Check(sql.ExecScript("BEGIN; TRUNCATE staging"), "begin");
      Check(sql.CopyIn("COPY staging FROM STDIN", data).status(), "copy");
      auto missing = sql.Exec(
          "SELECT min(s.ord) FROM staging s LEFT JOIN assignments a ON a.experiment_id = "
          "s.experiment_id AND a.user_id = s.user_id WHERE a.variant_id IS NULL");
      Check(missing.status(), "missing");
      auto ins = sql.Exec(
          "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, "
          "properties, ts) SELECT gen_random_uuid(), s.experiment_id, a.variant_id, s.user_id, "
          "s.event_type, s.value, s.properties, s.ts FROM staging s JOIN assignments a ON "
          "a.experiment_id = s.experiment_id AND a.user_id = s.user_id ON CONFLICT DO NOTHING");
      Check(ins.status(), "insert");
      Check(sql.ExecScript("COMMIT"), "commit");
    }
    copy_rates.push_back(kBatch * kBatches / Seconds(start));
  }
  std::printf("events, COPY to staging + INSERT SELECT, 1000/batch: %.0f rows/s\n",
              Median(copy_rates));

  Check(sql.ExecScript("ALTER TABLE events ADD CONSTRAINT events_assignment_fk FOREIGN KEY "
                       "(experiment_id, user_id) REFERENCES assignments"),
        "fk");
  std::printf("events, unnest with an events -> assignments FK:   %.0f rows/s\n", run_insert());
  return 0;
}

}  // namespace
}  // namespace splitstream::experiments

int main() { return splitstream::experiments::Main(); }

#include "splitstream/experiments/service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "assign_batcher.h"
#include "definitions.h"
#include "splitstream/core/strings.h"
#include "splitstream/core/timestamp.h"
#include "splitstream/experiments/migrations.h"
#include "splitstream/pg/pg.h"
#include "sql_util.h"

namespace splitstream::experiments {

namespace {

using internal::Definition;
using internal::Snapshot;

constexpr std::string_view kChannel = "splitstream_experiments";
constexpr auto kListenPoll = std::chrono::milliseconds(250);
constexpr auto kMinBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
constexpr auto kPartitionCheckInterval = std::chrono::hours(1);
constexpr int kPartitionMonthsBack = 1;
constexpr int kPartitionMonthsAhead = 3;
constexpr int64_t kFutureToleranceUs = 24LL * 3600 * 1'000'000;

std::string Quoted(std::string_view text) {
  return fmt::format("\"{}\"", SanitizeForMessage(text, 80));
}

Status ValidateUserId(std::string_view user_id, const std::string& field) {
  if (user_id.empty()) return Status::InvalidArgument("user_id must not be empty", field);
  if (user_id.size() > kMaxUserIdLength) {
    return Status::InvalidArgument(
        fmt::format("user_id must have at most {} bytes", kMaxUserIdLength), field);
  }
  if (!IsValidText(user_id)) {
    return Status::InvalidArgument("user_id must be UTF-8 without NUL bytes", field);
  }
  return Status::Ok();
}

Status NotFoundKey(std::string_view key, std::string field) {
  return Status::NotFound(fmt::format("experiment {} not found", Quoted(key)), std::move(field));
}

bool LooksLikeJsonObject(std::string_view text) {
  size_t i = text.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && text[i] == '{';
}

// The multi-row insert of a batch of events (measured against COPY into a staging table:
// see the README). Events take their variant from the stored assignment; when any event
// has none, `missing` is its ordinal and nothing is inserted, all in one statement.
constexpr std::string_view kInsertEventsSql = R"sql(
WITH input AS (
  SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::float8[],
                       $6::jsonb[], $7::timestamptz[]) WITH ORDINALITY
    AS t(event_id, experiment_id, user_id, event_type, value, properties, ts, ord)
), joined AS (
  SELECT i.*, a.variant_id FROM input i
  LEFT JOIN assignments a ON a.experiment_id = i.experiment_id AND a.user_id = i.user_id
), missing AS (
  SELECT min(ord) AS ord FROM joined WHERE variant_id IS NULL
), ins AS (
  INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value,
                      properties, ts)
  SELECT event_id, experiment_id, variant_id, user_id, event_type, value, properties, ts
  FROM joined WHERE (SELECT ord FROM missing) IS NULL
  ON CONFLICT DO NOTHING
  RETURNING 1
)
SELECT (SELECT ord FROM missing), (SELECT count(*) FROM ins))sql";

class ServiceImpl final : public Service {
 public:
  ServiceImpl(pg::Pool* pool, ServiceOptions options)
      : pool_(pool),
        options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : &Clock::System()),
        stored_(options_.stored_cache_entries) {}

  ~ServiceImpl() override { Shutdown(); }

  Status Init() {
    {
      SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
      auto created = EnsureEventPartitions(*lease, kPartitionMonthsBack, kPartitionMonthsAhead);
      if (!created.ok()) return created.status().WithContext("is the schema migrated?");
    }
    SPLITSTREAM_RETURN_IF_ERROR(Reload());
    batcher_ = std::make_unique<internal::AssignBatcher>(pool_, options_.max_assign_batch,
                                                         options_.assign_threads, &stored_);
    if (options_.conninfo.empty()) {
      spdlog::warn("experiments: no conninfo for LISTEN; other servers' changes stay unseen");
    } else {
      listener_ = std::thread([this] { ListenLoop(); });
    }
    return Status::Ok();
  }

  Result<Experiment> Create(ExperimentSpec spec) override {
    SPLITSTREAM_RETURN_IF_ERROR(ValidateAndNormalize(spec));
    {
      SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
      pg::Connection& conn = *lease;
      Status st = pg::InTransaction(conn, [&]() -> Status {
        if (spec.layer) SPLITSTREAM_RETURN_IF_ERROR(CheckLayerShare(conn, spec));
        SPLITSTREAM_ASSIGN_OR_RETURN(
            auto inserted,
            conn.Exec(R"sql(
INSERT INTO experiments (key, name, description, traffic, layer, layer_start, layer_end, seed,
                         hash_version, metrics)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
ON CONFLICT (key) DO NOTHING
RETURNING id)sql",
                      {spec.key, spec.name, spec.description, internal::FormatDouble(spec.traffic),
                       spec.layer, internal::FormatDouble(spec.layer_start),
                       internal::FormatDouble(spec.layer_end), spec.seed,
                       std::to_string(spec.hash_version), internal::MetricsToJson(spec.metrics)}));
        if (inserted.empty()) {
          return Status::AlreadyExists(
              fmt::format("experiment key {} is already taken", Quoted(spec.key)), "key");
        }
        std::vector<pg::Param> keys, weights;
        for (const VariantSpec& v : spec.variants) {
          keys.emplace_back(v.key);
          weights.emplace_back(internal::FormatDouble(v.weight));
        }
        SPLITSTREAM_ASSIGN_OR_RETURN(
            auto variants, conn.Exec(R"sql(
INSERT INTO variants (experiment_id, key, weight, position)
SELECT $1, k, w, p - 1 FROM unnest($2::text[], $3::float8[]) WITH ORDINALITY AS t(k, w, p))sql",
                                     {std::string(inserted.text(0, 0)), pg::ArrayLiteral(keys),
                                      pg::ArrayLiteral(weights)}));
        (void)variants;
        return Status::Ok();
      });
      if (!st.ok()) return st;
    }
    return AfterWrite(spec.key);
  }

  Result<std::vector<Experiment>> List() override {
    std::vector<Experiment> out;
    auto snap = snapshot();
    out.reserve(snap->ordered.size());
    for (const auto& def : snap->ordered) out.push_back(def->experiment);
    return out;
  }

  Result<Experiment> Get(const std::string& key) override {
    if (auto def = snapshot()->Find(key)) return def->experiment;
    if (!IsValidKey(key)) return NotFoundKey(key, "key");
    {
      SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
      SPLITSTREAM_ASSIGN_OR_RETURN(auto rows,
                                   lease->Exec("SELECT 1 FROM experiments WHERE key = $1", {key}));
      if (rows.empty()) return NotFoundKey(key, "key");
    }
    return AfterWrite(key);
  }

  Result<Experiment> Start(const std::string& key) override {
    {
      SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
      SPLITSTREAM_ASSIGN_OR_RETURN(auto updated, lease->Exec(R"sql(
UPDATE experiments SET status = 'running', started_at = now(), updated_at = now()
WHERE key = $1 AND status = 'draft' RETURNING id)sql",
                                                             {key}));
      if (updated.empty()) {
        SPLITSTREAM_ASSIGN_OR_RETURN(
            auto current, lease->Exec("SELECT status FROM experiments WHERE key = $1", {key}));
        if (current.empty()) return NotFoundKey(key, "key");
        if (current.text(0, 0) == "stopped") {
          return Status::FailedPrecondition(
              fmt::format("experiment {} is stopped and cannot run again", Quoted(key)));
        }
        // Already running: a no-op.
      }
    }
    return AfterWrite(key);
  }

  Result<Experiment> Stop(const std::string& key) override {
    {
      SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
      SPLITSTREAM_ASSIGN_OR_RETURN(auto updated, lease->Exec(R"sql(
UPDATE experiments SET status = 'stopped', stopped_at = now(), updated_at = now()
WHERE key = $1 AND status <> 'stopped' RETURNING id)sql",
                                                             {key}));
      if (updated.empty()) {
        SPLITSTREAM_ASSIGN_OR_RETURN(
            auto current, lease->Exec("SELECT 1 FROM experiments WHERE key = $1", {key}));
        if (current.empty()) return NotFoundKey(key, "key");
      }
    }
    return AfterWrite(key);
  }

  Result<Experiment> UpdateAllocation(const std::string& key, std::optional<double> traffic,
                                      std::optional<std::vector<double>> weights) override {
    if (traffic) SPLITSTREAM_RETURN_IF_ERROR(ValidateTraffic(*traffic));
    std::vector<pg::Param> weight_params;
    if (weights) {
      for (size_t i = 0; i < weights->size(); ++i) {
        SPLITSTREAM_RETURN_IF_ERROR(
            ValidateWeight((*weights)[i], fmt::format("variants[{}].weight", i)));
        weight_params.emplace_back(internal::FormatDouble((*weights)[i]));
      }
    }
    if (!traffic && !weights) return Get(key);
    {
      SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
      pg::Connection& conn = *lease;
      Status st = pg::InTransaction(conn, [&]() -> Status {
        SPLITSTREAM_ASSIGN_OR_RETURN(
            auto current,
            conn.Exec("SELECT id, status, (SELECT count(*) FROM variants v WHERE "
                      "v.experiment_id = e.id) FROM experiments e WHERE key = $1 FOR UPDATE",
                      {key}));
        if (current.empty()) return NotFoundKey(key, "key");
        if (current.text(0, 1) == "stopped") {
          return Status::FailedPrecondition(
              fmt::format("experiment {} is stopped; its allocation is final", Quoted(key)));
        }
        const std::string id(current.text(0, 0));
        if (weights) {
          SPLITSTREAM_ASSIGN_OR_RETURN(int64_t count, internal::ParseInt64(current.text(0, 2)));
          if (static_cast<int64_t>(weights->size()) != count) {
            return Status::InvalidArgument(
                fmt::format("expected {} variants (each of the experiment's, in order), got {}",
                            count, weights->size()),
                "variants");
          }
          SPLITSTREAM_ASSIGN_OR_RETURN(auto updated,
                                       conn.Exec(R"sql(
UPDATE variants v SET weight = t.w
FROM unnest($2::float8[]) WITH ORDINALITY AS t(w, p)
WHERE v.experiment_id = $1 AND v.position = t.p - 1)sql",
                                                 {id, pg::ArrayLiteral(weight_params)}));
          (void)updated;
        }
        pg::Param traffic_param;
        if (traffic) traffic_param = internal::FormatDouble(*traffic);
        SPLITSTREAM_ASSIGN_OR_RETURN(auto updated, conn.Exec(R"sql(
UPDATE experiments SET traffic = coalesce($2::float8, traffic),
                       allocation_version = allocation_version + 1, updated_at = now()
WHERE id = $1)sql",
                                                             {id, traffic_param}));
        (void)updated;
        return Status::Ok();
      });
      if (!st.ok()) return st;
    }
    return AfterWrite(key);
  }

  void Assign(AssignRequest request, std::function<void(Result<Assignment>)> done) override {
    auto def = snapshot()->Find(request.experiment);
    if (!def) return done(NotFoundKey(request.experiment, "experiment"));
    if (Status st = ValidateUserId(request.user_id, "user_id"); !st.ok()) return done(st);
    if (def->experiment.status != ExperimentStatus::kRunning) {
      Assignment a;
      a.experiment = def->experiment.spec.key;
      a.user_id = std::move(request.user_id);
      a.reason = "not_running";
      return done(std::move(a));
    }
    if (auto hit = stored_.Find(def->experiment.id.value(), request.user_id)) {
      Assignment a;
      a.experiment = def->experiment.spec.key;
      a.user_id = std::move(request.user_id);
      a.in_experiment = true;
      a.variant = def->experiment.variants[hit->variant].key;
      a.reason = "stored";
      a.stored = true;
      a.assigned_at_us = hit->assigned_at_us;
      return done(std::move(a));
    }
    const assignment::Decision decision = def->allocation.Assign(request.user_id);
    internal::PendingAssign p;
    if (decision.reason == assignment::Reason::kAssigned) {
      p.variant = decision.variant;
    } else if (def->allocation_version > 1) {
      // The allocation changed since the start: the user may have been stored under an
      // earlier one, and a stored user stays in.
      p.reason_if_absent = std::string(assignment::ReasonName(decision.reason));
    } else {
      Assignment a;
      a.experiment = def->experiment.spec.key;
      a.user_id = std::move(request.user_id);
      a.reason = std::string(assignment::ReasonName(decision.reason));
      return done(std::move(a));
    }
    p.def = std::move(def);
    p.user_id = std::move(request.user_id);
    p.done = std::move(done);
    if (!batcher_->Submit(p)) p.done(Status::Unavailable("the service is shutting down"));
  }

  Result<std::vector<Assignment>> UserAssignments(const std::string& user_id) override {
    SPLITSTREAM_RETURN_IF_ERROR(ValidateUserId(user_id, "user_id"));
    auto snap = snapshot();
    std::vector<pg::Param> running;
    for (const auto& def : snap->ordered) {
      if (def->experiment.status == ExperimentStatus::kRunning) {
        running.emplace_back(std::to_string(def->experiment.id.value()));
      }
    }
    std::vector<Assignment> out;
    if (running.empty()) return out;
    SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
    // By primary key: one index probe per running experiment, no index on user_id needed.
    SPLITSTREAM_ASSIGN_OR_RETURN(auto rows, lease->Exec(R"sql(
SELECT experiment_id, variant_id, (extract(epoch FROM assigned_at) * 1000000)::bigint
FROM assignments WHERE experiment_id = ANY($1::bigint[]) AND user_id = $2
ORDER BY experiment_id)sql",
                                                        {pg::ArrayLiteral(running), user_id}));
    for (size_t r = 0; r < rows.size(); ++r) {
      SPLITSTREAM_ASSIGN_OR_RETURN(int64_t exp_id, internal::ParseInt64(rows.text(r, 0)));
      SPLITSTREAM_ASSIGN_OR_RETURN(int64_t variant_id, internal::ParseInt64(rows.text(r, 1)));
      auto it = snap->by_id.find(exp_id);
      if (it == snap->by_id.end()) continue;
      int index = it->second->VariantIndex(VariantId(variant_id));
      if (index < 0) return Status::DataLoss("a stored assignment names an unknown variant");
      Assignment a;
      a.experiment = it->second->experiment.spec.key;
      a.user_id = user_id;
      a.in_experiment = true;
      a.variant = it->second->experiment.variants[index].key;
      a.reason = "stored";
      a.stored = true;
      SPLITSTREAM_ASSIGN_OR_RETURN(a.assigned_at_us, internal::ParseInt64(rows.text(r, 2)));
      out.push_back(std::move(a));
    }
    return out;
  }

  Result<size_t> TrackEvents(std::vector<Event> events) override {
    if (events.empty()) return size_t{0};
    if (events.size() > kMaxEventsPerBatch) {
      return Status::InvalidArgument(
          fmt::format("at most {} events a batch, got {}", kMaxEventsPerBatch, events.size()),
          "events");
    }
    auto snap = snapshot();
    const int64_t now = clock_->WallMicros();
    const int64_t earliest = internal::StartOfMonthUtc(now, -kPartitionMonthsBack);
    const int64_t latest = now + kFutureToleranceUs;
    const size_t n = events.size();
    std::vector<pg::Param> ids, exps, users, types, values, props, tss;
    std::vector<int64_t> ts_us(n);
    for (auto* v : {&ids, &exps, &users, &types, &values, &props, &tss}) v->reserve(n);
    for (size_t i = 0; i < n; ++i) {
      Event& e = events[i];
      const std::string field = fmt::format("events[{}]", i);
      auto def = snap->Find(e.experiment);
      if (!def) return NotFoundKey(e.experiment, field + ".experiment");
      SPLITSTREAM_RETURN_IF_ERROR(ValidateUserId(e.user_id, field + ".user_id"));
      if (e.type.empty() || e.type.size() > kMaxEventTypeLength || !IsValidText(e.type)) {
        return Status::InvalidArgument(
            fmt::format("type must be 1 to {} bytes of UTF-8", kMaxEventTypeLength),
            field + ".type");
      }
      if (e.value && !std::isfinite(*e.value)) {
        return Status::InvalidArgument("value must be a finite number", field + ".value");
      }
      if (!IsValidText(e.properties_json) || !LooksLikeJsonObject(e.properties_json)) {
        return Status::InvalidArgument("properties must be a JSON object", field + ".properties");
      }
      ts_us[i] = e.ts_us.value_or(now);
      if (ts_us[i] < earliest || ts_us[i] > latest) {
        return Status::InvalidArgument(
            fmt::format("ts {} is outside the accepted window [{}, {}]", FormatTimestamp(ts_us[i]),
                        FormatTimestamp(earliest), FormatTimestamp(latest)),
            field + ".ts");
      }
      if (e.event_id) {
        if (!internal::IsCanonicalUuid(*e.event_id)) {
          return Status::InvalidArgument("event_id must be a UUID (8-4-4-4-12 hex digits)",
                                         field + ".event_id");
        }
        ids.emplace_back(*e.event_id);
      } else {
        ids.emplace_back(internal::NewUuidV4());
      }
      exps.emplace_back(std::to_string(def->experiment.id.value()));
      users.emplace_back(std::move(e.user_id));
      types.emplace_back(std::move(e.type));
      if (e.value) {
        values.emplace_back(internal::FormatDouble(*e.value));
      } else {
        values.emplace_back(std::nullopt);
      }
      props.emplace_back(std::move(e.properties_json));
      tss.emplace_back(FormatTimestamp(ts_us[i], kPostgresUtc));
    }

    SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
    auto rows = lease->Exec(kInsertEventsSql,
                            {pg::ArrayLiteral(ids), pg::ArrayLiteral(exps), pg::ArrayLiteral(users),
                             pg::ArrayLiteral(types), pg::ArrayLiteral(values),
                             pg::ArrayLiteral(props), pg::ArrayLiteral(tss)});
    if (!rows.ok()) {
      const std::string state = lease->LastSqlState();
      if (state == pg::kCheckViolation) return MissingPartition(*lease, ts_us);
      if (state.starts_with("22")) {
        // Malformed data PostgreSQL rejected (e.g. properties that are not valid JSON).
        return Status::InvalidArgument("an event holds a value PostgreSQL cannot store", "events");
      }
      return rows.status().WithContext("store events");
    }
    if (rows->at(0, 0)) {
      SPLITSTREAM_ASSIGN_OR_RETURN(int64_t ord, internal::ParseInt64(rows->text(0, 0)));
      const size_t i = static_cast<size_t>(ord - 1);
      return Status::InvalidArgument(
          fmt::format("user {} has no assignment in experiment {}; assign before tracking",
                      Quoted(*users[i]), Quoted(events[i].experiment)),
          fmt::format("events[{}].user_id", i));
    }
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t stored, internal::ParseInt64(rows->text(0, 1)));
    return static_cast<size_t>(stored);
  }

  Status Ready() override {
    SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire(std::chrono::milliseconds(2000)));
    auto rows = lease->Exec("SELECT 1");
    return rows.ok() ? Status::Ok() : rows.status().WithContext("PostgreSQL");
  }

  ServiceStats stats() const override {
    ServiceStats s;
    if (batcher_) {
      s.assign_batches = batcher_->batches();
      s.assign_rows = batcher_->rows();
      s.stored_cache_hits = stored_.hits();
    }
    s.cache_reloads = cache_reloads_.load();
    return s;
  }

  void Shutdown() override {
    std::lock_guard<std::mutex> once(shutdown_mu_);  // concurrent callers wait for the first
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (batcher_) batcher_->Shutdown();
    if (listener_.joinable()) listener_.join();
  }

 private:
  std::shared_ptr<const Snapshot> snapshot() const {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    return snapshot_;
  }

  // Reloads the whole cache. Serialised: a load that started later always wins, so the
  // cache never goes back to an older state.
  Status Reload() {
    std::lock_guard<std::mutex> reload_lock(reload_mu_);
    SPLITSTREAM_ASSIGN_OR_RETURN(auto lease, pool_->Acquire());
    SPLITSTREAM_ASSIGN_OR_RETURN(auto snap, internal::LoadSnapshot(*lease));
    {
      std::lock_guard<std::mutex> lock(snapshot_mu_);
      snapshot_ = std::move(snap);
    }
    cache_reloads_.fetch_add(1);
    return Status::Ok();
  }

  // Read-your-writes: the cache is reloaded before the write is acknowledged.
  Result<Experiment> AfterWrite(const std::string& key) {
    SPLITSTREAM_RETURN_IF_ERROR(Reload().WithContext("saved, but reloading the cache failed"));
    if (auto def = snapshot()->Find(key)) return def->experiment;
    return NotFoundKey(key, "key");
  }

  // Caller holds a transaction. Locks the layer for the rest of it, then compares the share
  // with every draft or running experiment of the layer.
  Status CheckLayerShare(pg::Connection& conn, const ExperimentSpec& spec) {
    SPLITSTREAM_ASSIGN_OR_RETURN(
        auto lock, conn.Exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 7311104203))",
                             {"splitstream.layer:" + *spec.layer}));
    (void)lock;
    SPLITSTREAM_ASSIGN_OR_RETURN(auto others, conn.Exec(R"sql(
SELECT key, layer_start, layer_end FROM experiments
WHERE layer = $1 AND status <> 'stopped' ORDER BY id)sql",
                                                        {*spec.layer}));
    const assignment::LayerShare mine{*spec.layer, spec.layer_start, spec.layer_end};
    for (size_t r = 0; r < others.size(); ++r) {
      assignment::LayerShare theirs{*spec.layer, 0, 0};
      SPLITSTREAM_ASSIGN_OR_RETURN(theirs.start, internal::ParseDouble(others.text(r, 1)));
      SPLITSTREAM_ASSIGN_OR_RETURN(theirs.end, internal::ParseDouble(others.text(r, 2)));
      if (assignment::Overlaps(mine, theirs)) {
        return Status::Conflict(
            fmt::format("share [{}, {}) of layer {} overlaps experiment {} with [{}, {})",
                        spec.layer_start, spec.layer_end, Quoted(*spec.layer),
                        Quoted(others.text(r, 0)), theirs.start, theirs.end),
            "layer_start");
      }
    }
    return Status::Ok();
  }

  // The insert failed for want of a partition (the window check passed, so retention or
  // maintenance removed or never made it): name the first event concerned.
  Status MissingPartition(pg::Connection& conn, const std::vector<int64_t>& ts_us) {
    std::vector<pg::Param> months;
    for (int64_t ts : ts_us) months.emplace_back("events_" + internal::MonthSuffixUtc(ts));
    auto rows = conn.Exec(
        "SELECT ord FROM unnest($1::text[]) WITH ORDINALITY AS t(name, ord) "
        "WHERE to_regclass(name) IS NULL ORDER BY ord LIMIT 1",
        {pg::ArrayLiteral(months)});
    std::string field = "events";
    if (rows.ok() && !rows->empty()) {
      auto ord = internal::ParseInt64(rows->text(0, 0));
      if (ord.ok()) field = fmt::format("events[{}].ts", *ord - 1);
    }
    return Status::InvalidArgument("no partition of events holds this ts (retention or clock)",
                                   field);
  }

  bool Stopping() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    return stopping_;
  }

  // Sleeps up to `d`; false when Shutdown began.
  bool SleepUnlessStopping(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(stop_mu_);
    return !stop_cv_.wait_for(lock, d, [this] { return stopping_; });
  }

  void ListenLoop() {
    std::unique_ptr<pg::Connection> conn;
    auto backoff = kMinBackoff;
    bool reload_pending = false;
    auto next_partition_check = std::chrono::steady_clock::now() + kPartitionCheckInterval;
    while (!Stopping()) {
      if (!conn) {
        auto opened = pg::Connection::Open(options_.conninfo);
        Status st = opened.ok() ? (*opened)->Listen(kChannel) : opened.status();
        if (!st.ok()) {
          spdlog::warn("experiments: LISTEN connection failed, retrying in {} ms: {}",
                       backoff.count(), st.ToString());
          if (!SleepUnlessStopping(backoff)) break;
          backoff = std::min(backoff * 2, kMaxBackoff);
          continue;
        }
        conn = std::move(*opened);
        backoff = kMinBackoff;
        // Notifications sent while we were not listening are lost: reload everything.
        reload_pending = true;
      }
      if (reload_pending) {
        Status st = Reload();
        if (st.ok()) {
          reload_pending = false;
        } else {
          spdlog::warn("experiments: cache reload failed: {}", st.ToString());
        }
      }
      auto note = conn->WaitNotification(kListenPoll);
      if (!note.ok()) {
        spdlog::warn("experiments: LISTEN connection lost: {}", note.status().ToString());
        conn.reset();
        continue;
      }
      if (*note) {
        // Coalesce a burst of notifications into one reload.
        for (;;) {
          auto more = conn->WaitNotification(std::chrono::milliseconds(0));
          if (!more.ok()) {
            conn.reset();
            break;
          }
          if (!*more) break;
        }
        reload_pending = true;
      }
      if (std::chrono::steady_clock::now() >= next_partition_check) {
        next_partition_check = std::chrono::steady_clock::now() + kPartitionCheckInterval;
        auto lease = pool_->Acquire();
        if (lease.ok()) {
          auto created =
              EnsureEventPartitions(**lease, kPartitionMonthsBack, kPartitionMonthsAhead);
          if (!created.ok()) {
            spdlog::warn("experiments: partition maintenance: {}", created.status().ToString());
          }
        }
      }
    }
  }

  pg::Pool* pool_;
  const ServiceOptions options_;
  Clock* clock_;

  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // guarded by snapshot_mu_
  std::mutex reload_mu_;                      // serialises Reload()
  std::atomic<uint64_t> cache_reloads_{0};

  internal::StoredAssignmentCache stored_;  // before batcher_, which writes into it
  std::unique_ptr<internal::AssignBatcher> batcher_;
  std::thread listener_;
  std::mutex shutdown_mu_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
};

}  // namespace

Result<std::unique_ptr<Service>> Service::Create(pg::Pool* pool, ServiceOptions options) {
  if (pool == nullptr) return Status::InvalidArgument("a connection pool is required");
  auto impl = std::make_unique<ServiceImpl>(pool, std::move(options));
  SPLITSTREAM_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Service>(std::move(impl));
}

}  // namespace splitstream::experiments

#include "definitions.h"

#include <fmt/format.h>

#include <map>

#include "splitstream/pg/pg.h"
#include "sql_util.h"

namespace splitstream::experiments::internal {

namespace {

assignment::Allocation MakeAllocation(const Experiment& e) {
  // Allocation expects weights summing to 1 (GrowthBook falls back to equal weights
  // otherwise), so normalise here.
  double total = 0;
  for (const Variant& v : e.variants) total += v.weight;
  std::vector<double> weights;
  weights.reserve(e.variants.size());
  for (const Variant& v : e.variants) weights.push_back(total > 0 ? v.weight / total : 0);
  std::optional<assignment::LayerShare> layer;
  if (e.spec.layer)
    layer = assignment::LayerShare{*e.spec.layer, e.spec.layer_start, e.spec.layer_end};
  return assignment::Allocation(e.spec.seed, e.spec.hash_version, e.spec.traffic,
                                std::move(weights), std::move(layer));
}

constexpr std::string_view kExperimentsSql = R"sql(
SELECT id, key, name, description, status, traffic, layer, layer_start, layer_end, seed,
       hash_version, allocation_version,
       (extract(epoch FROM created_at) * 1000000)::bigint,
       (extract(epoch FROM started_at) * 1000000)::bigint,
       (extract(epoch FROM stopped_at) * 1000000)::bigint
FROM experiments ORDER BY id)sql";

constexpr std::string_view kVariantsSql =
    "SELECT experiment_id, id, key, weight FROM variants ORDER BY experiment_id, position";

constexpr std::string_view kMetricsSql = R"sql(
SELECT e.id, m.key, m.event_type, m.kind, m.denominator_event_type, m.quantile, m.window_hours,
       m.higher_is_better, m.guardrail
FROM experiments e,
     ROWS FROM (jsonb_to_recordset(e.metrics) AS (key text, event_type text, kind text,
                denominator_event_type text, quantile double precision, window_hours bigint,
                higher_is_better boolean, guardrail boolean)) WITH ORDINALITY
       AS m(key, event_type, kind, denominator_event_type, quantile, window_hours,
            higher_is_better, guardrail, ord)
ORDER BY e.id, m.ord)sql";

std::string Text(const pg::Rows& rows, size_t r, size_t c) { return std::string(rows.text(r, c)); }

}  // namespace

Definition::Definition(Experiment e, int allocation_version_in)
    : experiment(std::move(e)),
      allocation_version(allocation_version_in),
      allocation(MakeAllocation(experiment)) {}

int Definition::VariantIndex(VariantId id) const {
  for (size_t i = 0; i < experiment.variants.size(); ++i) {
    if (experiment.variants[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

std::shared_ptr<const Definition> Snapshot::Find(const std::string& key) const {
  auto it = by_key.find(key);
  return it == by_key.end() ? nullptr : it->second;
}

Result<std::shared_ptr<const Snapshot>> LoadSnapshot(pg::Connection& conn) {
  pg::Rows exps, vars, mets;
  Status st = pg::InTransaction(
      conn,
      [&]() -> Status {
        SPLITSTREAM_ASSIGN_OR_RETURN(exps, conn.Exec(kExperimentsSql));
        SPLITSTREAM_ASSIGN_OR_RETURN(vars, conn.Exec(kVariantsSql));
        SPLITSTREAM_ASSIGN_OR_RETURN(mets, conn.Exec(kMetricsSql));
        return Status::Ok();
      },
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (!st.ok()) return st.WithContext("load experiments");

  std::map<int64_t, std::pair<Experiment, int>> loaded;
  for (size_t r = 0; r < exps.size(); ++r) {
    Experiment e;
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t id, ParseInt64(exps.text(r, 0)));
    e.id = ExperimentId(id);
    e.spec.key = Text(exps, r, 1);
    e.spec.name = Text(exps, r, 2);
    e.spec.description = Text(exps, r, 3);
    auto status = ParseExperimentStatus(exps.text(r, 4));
    if (!status) return Status::DataLoss("unknown experiment status in the database");
    e.status = *status;
    SPLITSTREAM_ASSIGN_OR_RETURN(e.spec.traffic, ParseDouble(exps.text(r, 5)));
    if (exps.at(r, 6)) e.spec.layer = *exps.at(r, 6);
    SPLITSTREAM_ASSIGN_OR_RETURN(e.spec.layer_start, ParseDouble(exps.text(r, 7)));
    SPLITSTREAM_ASSIGN_OR_RETURN(e.spec.layer_end, ParseDouble(exps.text(r, 8)));
    e.spec.seed = Text(exps, r, 9);
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t hash_version, ParseInt64(exps.text(r, 10)));
    e.spec.hash_version = static_cast<int>(hash_version);
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t allocation_version, ParseInt64(exps.text(r, 11)));
    SPLITSTREAM_ASSIGN_OR_RETURN(e.created_at_us, ParseInt64(exps.text(r, 12)));
    SPLITSTREAM_ASSIGN_OR_RETURN(e.started_at_us, ParseOptionalInt64(exps.at(r, 13)));
    SPLITSTREAM_ASSIGN_OR_RETURN(e.stopped_at_us, ParseOptionalInt64(exps.at(r, 14)));
    loaded.emplace(id, std::make_pair(std::move(e), static_cast<int>(allocation_version)));
  }
  for (size_t r = 0; r < vars.size(); ++r) {
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t exp_id, ParseInt64(vars.text(r, 0)));
    auto it = loaded.find(exp_id);
    // A variant committed after the experiments read cannot exist: one snapshot.
    if (it == loaded.end()) continue;
    Variant v;
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t id, ParseInt64(vars.text(r, 1)));
    v.id = VariantId(id);
    v.key = Text(vars, r, 2);
    SPLITSTREAM_ASSIGN_OR_RETURN(v.weight, ParseDouble(vars.text(r, 3)));
    Experiment& e = it->second.first;
    e.spec.variants.push_back({v.key, v.weight});
    e.variants.push_back(std::move(v));
  }
  for (size_t r = 0; r < mets.size(); ++r) {
    SPLITSTREAM_ASSIGN_OR_RETURN(int64_t exp_id, ParseInt64(mets.text(r, 0)));
    auto it = loaded.find(exp_id);
    if (it == loaded.end()) continue;
    MetricSpec m;
    m.key = Text(mets, r, 1);
    m.event_type = Text(mets, r, 2);
    m.kind = Text(mets, r, 3);
    if (mets.at(r, 4)) m.denominator_event_type = *mets.at(r, 4);
    if (mets.at(r, 5)) {
      SPLITSTREAM_ASSIGN_OR_RETURN(double q, ParseDouble(*mets.at(r, 5)));
      m.quantile = q;
    }
    SPLITSTREAM_ASSIGN_OR_RETURN(m.window_hours, ParseOptionalInt64(mets.at(r, 6)));
    m.higher_is_better = mets.text(r, 7) != "f";
    m.guardrail = mets.text(r, 8) == "t";
    it->second.first.spec.metrics.push_back(std::move(m));
  }

  auto snapshot = std::make_shared<Snapshot>();
  for (auto& [id, entry] : loaded) {
    auto def = std::make_shared<const Definition>(std::move(entry.first), entry.second);
    snapshot->by_key.emplace(def->experiment.spec.key, def);
    snapshot->by_id.emplace(id, def);
    snapshot->ordered.push_back(std::move(def));
  }
  return std::shared_ptr<const Snapshot>(std::move(snapshot));
}

std::string MetricsToJson(const std::vector<MetricSpec>& metrics) {
  std::string out = "[";
  for (size_t i = 0; i < metrics.size(); ++i) {
    const MetricSpec& m = metrics[i];
    if (i > 0) out += ',';
    out += "{\"key\":" + JsonString(m.key);
    out += ",\"event_type\":" + JsonString(m.event_type);
    out += ",\"kind\":" + JsonString(m.kind);
    if (m.denominator_event_type) {
      out += ",\"denominator_event_type\":" + JsonString(*m.denominator_event_type);
    }
    if (m.quantile) out += ",\"quantile\":" + FormatDouble(*m.quantile);
    if (m.window_hours) out += fmt::format(",\"window_hours\":{}", *m.window_hours);
    out +=
        fmt::format(",\"higher_is_better\":{},\"guardrail\":{}}}", m.higher_is_better, m.guardrail);
  }
  out += ']';
  return out;
}

}  // namespace splitstream::experiments::internal

#include "incremental.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>
#include <vector>

#include "splitstream/clickhouse/row_binary.h"

namespace splitstream::results {
namespace {

using clickhouse::RowBinaryReader;
using clickhouse::RowBinaryRows;

constexpr const char* kTables[2] = {"assignments", "events"};

// The rows of batches not read yet: per writer seen, from the highest batch read on (again:
// a multi-partition INSERT may have been visible in part; copies change nothing), and every
// row of writers not seen yet.
std::string NewBatches(const std::map<uint64_t, uint64_t>& marks) {
  if (marks.empty()) return "1";
  std::string seen, writers;
  for (const auto& [writer, batch] : marks) {
    seen += fmt::format("(_batch >= {} AND _batch <= {}) OR ", batch, (writer << 32) | 0xFFFFFFFFu);
    writers += (writers.empty() ? "" : ", ") + std::to_string(writer);
  }
  return fmt::format("({}intDiv(_batch, 4294967296) NOT IN ({}))", seen, writers);
}

Result<uint64_t> ParseUInt(const std::string& text, std::string_view what) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::Internal(fmt::format("ClickHouse returned \"{}\" for {}", text, what));
  }
  return v;
}

// Runs a query whose answer is rows of `width` unsigned integers.
Result<std::vector<std::vector<uint64_t>>> QueryNumbers(clickhouse::Client& client,
                                                        const std::string& sql, size_t width,
                                                        std::string_view what, int* round_trips) {
  ++*round_trips;
  auto rows = client.QueryRows(sql);
  if (!rows.ok()) return rows.status().WithContext(what);
  std::vector<std::vector<uint64_t>> out;
  for (const auto& r : *rows) {
    if (r.size() != width) {
      return Status::Internal(fmt::format("{}: {} columns, expected {}", what, r.size(), width));
    }
    out.emplace_back();
    for (const std::string& field : r) {
      SPLITSTREAM_ASSIGN_OR_RETURN(uint64_t v, ParseUInt(field, what));
      out.back().push_back(v);
    }
  }
  return out;
}

// Streams a RowBinary query into `read_row` (which reads and applies one row).
Status Stream(clickhouse::Client& client, const std::string& sql,
              const RowBinaryRows::ReadRow& read_row, std::string_view what, int* round_trips) {
  RowBinaryRows rows(read_row);
  ++*round_trips;
  Status st = client.QueryStream(sql + " FORMAT RowBinary",
                                 [&](std::string_view piece) { return rows.Feed(piece); });
  if (st.ok()) st = rows.Finish();
  return st.WithContext(what);
}

// Reads one exposure row (uh, _version, _deleted, variant_id, assigned_at_us[, _batch]).
bool ReadExposure(RowBinaryReader& in, ExposureRow* row, uint64_t* batch) {
  uint8_t deleted = 0;
  if (!in.UInt64(&row->user) || !in.UInt64(&row->version) || !in.UInt8(&deleted) ||
      !in.Int64(&row->variant_id) || !in.Int64(&row->exposed_us) ||
      (batch != nullptr && !in.UInt64(batch))) {
    return false;
  }
  row->deleted = deleted != 0;
  return true;
}

// Reads one event row (key, _version, _deleted, experiment_id, uh, event_type, value, ts_us[,
// _batch]).
bool ReadEvent(RowBinaryReader& in, EventRow* row, uint64_t* batch) {
  uint8_t deleted = 0;
  bool is_null = false;
  double value = 0;
  if (!in.UInt64(&row->key) || !in.UInt64(&row->version) || !in.UInt8(&deleted) ||
      !in.Int64(&row->experiment_id) || !in.UInt64(&row->user) || !in.String(&row->event_type) ||
      !in.NullMarker(&is_null) || (!is_null && !in.Float64(&value)) || !in.Int64(&row->ts_us) ||
      (batch != nullptr && !in.UInt64(batch))) {
    return false;
  }
  row->deleted = deleted != 0;
  row->value = is_null ? std::nullopt : std::optional<double>(value);
  return true;
}

constexpr const char* kExposureColumns =
    "cityHash64(user_id), _version, _deleted, variant_id, assigned_at_us";
constexpr const char* kEventColumns =
    "cityHash64(event_id, ts_us), _version, _deleted, experiment_id, cityHash64(user_id), "
    "event_type, value, ts_us";

}  // namespace

Status LiveExperiment::Update(clickhouse::Client& client, int* round_trips) {
  const int64_t x = state_.query().experiment_id;
  // The truncations, the freshness and whether the tables have _batch, in one round trip.
  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto meta,
      QueryNumbers(client,
                   fmt::format("SELECT (SELECT max(version) FROM _truncations WHERE `table` = "
                               "'assignments'), (SELECT max(version) FROM _truncations WHERE "
                               "`table` = 'events'), {}, (SELECT count() FROM system.columns "
                               "WHERE database = currentDatabase() AND table IN ('assignments', "
                               "'events') AND name = '_batch')",
                               FreshnessSql(x)),
                   4, "the truncation query", round_trips));
  if (meta.size() != 1) return Status::Internal("the truncation query returned no row");
  const uint64_t truncated[2] = {meta[0][0], meta[0][1]};
  const uint64_t fresh = meta[0][2];
  if (meta[0][3] != 2) {
    return Status::FailedPrecondition(
        "assignments or events has no _batch column (written by an older sink)");
  }
  fresh_ms_ = fresh > 0 ? std::optional<int64_t>(static_cast<int64_t>(fresh)) : std::nullopt;
  rebuilt_ = !built_ || truncated[0] != truncated_[0] || truncated[1] != truncated_[1];
  truncated_[0] = truncated[0];
  truncated_[1] = truncated[1];
  Status st = rebuilt_ ? Build(client, round_trips) : ReadNew(client, round_trips);
  if (!st.ok()) {
    built_ = false;
    return st;
  }
  state_.Settle();
  built_ = true;
  return Status::Ok();
}

Status LiveExperiment::Build(clickhouse::Client& client, int* round_trips) {
  const int64_t x = state_.query().experiment_id;
  // The batches written so far, read before the tables: whatever is written while they are
  // read, the next ReadNew reads again (copies change nothing).
  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto rows,
      QueryNumbers(
          client,
          fmt::format(
              "SELECT 0, intDiv(_batch, 4294967296) AS w, max(_batch) FROM assignments GROUP BY "
              "w UNION ALL SELECT 1, intDiv(_batch, 4294967296) AS w, max(_batch) FROM events "
              "GROUP BY w UNION ALL SELECT 2, toUInt64(0), count() FROM assignments WHERE "
              "experiment_id = {0} UNION ALL SELECT 3, toUInt64(0), count() FROM events WHERE "
              "experiment_id = {0}",
              x),
          3, "the batch query", round_trips));
  marks_[0].clear();
  marks_[1].clear();
  at_marks_.clear();
  std::string event_marks;
  uint64_t counts[2] = {0, 0};  // the experiment's rows (all versions): room to reserve
  for (const auto& r : rows) {
    const uint64_t table = r[0], writer = r[1], batch = r[2];
    if (table >= 2) {
      counts[table & 1] = batch;
      continue;
    }
    marks_[table & 1][writer] = batch;
    if (table == 1) event_marks += (event_marks.empty() ? "" : ", ") + std::to_string(batch);
  }
  // The event rows of the marked batches, before the build reads the table: the first ReadNew
  // reads those batches again and applies only what was not there yet.
  if (!event_marks.empty()) {
    SPLITSTREAM_RETURN_IF_ERROR(Stream(
        client,
        fmt::format("SELECT _batch, cityHash64(event_id, ts_us), _version FROM events WHERE "
                    "_batch IN ({})",
                    event_marks),
        [&](RowBinaryReader& in) {
          uint64_t batch = 0, key = 0, version = 0;
          if (!in.UInt64(&batch) || !in.UInt64(&key) || !in.UInt64(&version)) return false;
          at_marks_[batch >> 32].insert({key, version});
          return true;
        },
        "read the marked batches", round_trips));
  }
  // What a state takes, measured on the benchmark's experiment (docs/benchmarks.md): about
  // 127 bytes per event row with its users and quantile values; counted here per row of
  // every version, so an estimate from above.
  const uint64_t need = counts[1] * 128 + counts[0] * 160;
  if (need > max_bytes_) {
    return Status::FailedPrecondition(
        fmt::format("its state would take about {:.1f} MB ({} event rows), more than the "
                    "{:.1f} MB allowed (EngineOptions::max_state_bytes)",
                    need / 1048576.0, counts[1], max_bytes_ / 1048576.0));
  }
  state_ = ExperimentState(state_.query());
  state_.Reserve(counts[1], counts[0]);
  // Exposures first, so that most events find their user exposed and add to it at once.
  // Deleted rows come too: their versions keep older copies out.
  SPLITSTREAM_RETURN_IF_ERROR(Stream(
      client,
      fmt::format("SELECT {} FROM assignments FINAL WHERE experiment_id = {} AND _version > {}",
                  kExposureColumns, x, truncated_[0]),
      [&](RowBinaryReader& in) {
        ExposureRow row;
        if (!ReadExposure(in, &row, nullptr)) return false;
        state_.ApplyExposure(row);
        return true;
      },
      "read assignments", round_trips));
  // The filter inside may run before the merge (it keeps every delete marker); the same
  // outside runs after it (EventsSql).
  return Stream(
      client,
      fmt::format("SELECT {0} FROM (SELECT event_id, ts_us, _version, _deleted, experiment_id, "
                  "user_id, event_type, value FROM events FINAL WHERE (experiment_id = {1} OR "
                  "_deleted = 1) AND _version > {2}) WHERE experiment_id = {1} OR _deleted = 1",
                  kEventColumns, x, truncated_[1]),
      [&](RowBinaryReader& in) {
        EventRow row;
        if (!ReadEvent(in, &row, nullptr)) return false;
        state_.ApplyEvent(row);
        return true;
      },
      "read events", round_trips);
}

Status LiveExperiment::ReadNew(clickhouse::Client& client, int* round_trips) {
  const int64_t x = state_.query().experiment_id;
  Marks seen[2] = {marks_[0], marks_[1]};
  auto note = [&](int table, uint64_t batch) {
    uint64_t& mark = seen[table][batch >> 32];
    if (batch > mark) mark = batch;
  };
  SPLITSTREAM_RETURN_IF_ERROR(Stream(
      client,
      fmt::format("SELECT {}, _batch FROM assignments WHERE experiment_id = {} AND _version > {} "
                  "AND {}",
                  kExposureColumns, x, truncated_[0], NewBatches(marks_[0])),
      [&](RowBinaryReader& in) {
        ExposureRow row;
        uint64_t batch = 0;
        if (!ReadExposure(in, &row, &batch)) return false;
        state_.ApplyExposure(row);
        note(0, batch);
        return true;
      },
      "read new assignments", round_trips));
  // Every experiment's rows: an update may move a known event to another experiment. Only the
  // highest version of each key counts (ClickHouse returns rows in no particular order): an
  // older version of an event that moved to another experiment in the same read must not count
  // as ours.
  struct Owned {
    EventRow row;
    std::string type;
    uint64_t batch = 0;
  };
  std::vector<Owned> rows;
  SPLITSTREAM_RETURN_IF_ERROR(Stream(
      client,
      fmt::format("SELECT {}, _batch FROM events WHERE _version > {} AND {}", kEventColumns,
                  truncated_[1], NewBatches(marks_[1])),
      [&](RowBinaryReader& in) {
        Owned o;
        if (!ReadEvent(in, &o.row, &o.batch)) return false;
        note(1, o.batch);
        auto mark = marks_[1].find(o.batch >> 32);
        auto seen_rows = at_marks_.find(o.batch >> 32);
        if (mark != marks_[1].end() && mark->second == o.batch && seen_rows != at_marks_.end() &&
            seen_rows->second.contains({o.row.key, o.row.version})) {
          return true;  // read before
        }
        o.type = o.row.event_type;
        rows.push_back(std::move(o));
        return true;
      },
      "read new events", round_trips));
  for (const auto& [writer, batch] : seen[1]) {
    auto old = marks_[1].find(writer);
    if (old == marks_[1].end() || old->second != batch) at_marks_[writer].clear();
  }
  for (const Owned& o : rows) {
    if (seen[1][o.batch >> 32] == o.batch)
      at_marks_[o.batch >> 32].insert({o.row.key, o.row.version});
  }
  std::sort(rows.begin(), rows.end(), [](const Owned& a, const Owned& b) {
    return a.row.key != b.row.key ? a.row.key < b.row.key : a.row.version < b.row.version;
  });
  for (size_t i = 0; i < rows.size(); ++i) {
    if (i + 1 < rows.size() && rows[i + 1].row.key == rows[i].row.key) continue;
    rows[i].row.event_type = rows[i].type;
    state_.ApplyEvent(rows[i].row);
  }
  marks_[0] = std::move(seen[0]);
  marks_[1] = std::move(seen[1]);
  return Status::Ok();
}

}  // namespace splitstream::results

#include "splitstream/results/state.h"

#include <algorithm>
#include <cmath>

#include "splitstream/stats/inference.h"

namespace splitstream::results {
namespace {

constexpr int64_t kMicrosPerHour = int64_t{3600} * 1000 * 1000;

// Merges `adds` into the sorted `sorted` and takes `removes` out (multisets; a value to remove
// that is not there is ignored).
void MergeValues(std::vector<double>& sorted, std::vector<double>& adds,
                 std::vector<double>& removes) {
  if (adds.empty() && removes.empty()) return;
  std::sort(adds.begin(), adds.end());
  std::sort(removes.begin(), removes.end());
  std::vector<double> merged;
  merged.reserve(sorted.size() + adds.size());
  std::merge(sorted.begin(), sorted.end(), adds.begin(), adds.end(), std::back_inserter(merged));
  std::vector<double> out;
  out.reserve(merged.size());
  size_t r = 0;
  for (double v : merged) {
    while (r < removes.size() && removes[r] < v) ++r;
    if (r < removes.size() && removes[r] == v) {
      ++r;
      continue;
    }
    out.push_back(v);
  }
  sorted = std::move(out);
  std::vector<double>().swap(adds);  // a build adds every value: give the room back
  std::vector<double>().swap(removes);
}

// quantileExact's value for `level` of the sorted values: rank min(floor(max(level, 0) * n),
// n - 1), as the main query reads it (sql.cc).
double ValueAt(const std::vector<double>& sorted, double level) {
  const auto n = static_cast<int64_t>(sorted.size());
  auto rank = static_cast<int64_t>(std::max(level, 0.0) * static_cast<double>(n));
  return sorted[static_cast<size_t>(std::min(rank, n - 1))];
}

}  // namespace

ExperimentState::ExperimentState(ExperimentQuery q) : q_(std::move(q)) {
  auto type_index = [&](const std::string& type) {
    auto it = std::find(types_.begin(), types_.end(), type);
    if (it != types_.end()) return static_cast<size_t>(it - types_.begin());
    types_.push_back(type);
    feeds_.emplace_back();
    return types_.size() - 1;
  };
  // Distinct quantile conditions (event type and window), as the main query groups them.
  std::vector<std::pair<std::string, std::optional<int64_t>>> conditions;
  const bool cuped = q_.cuped_pre_window_hours > 0;
  for (const MetricQuery& m : q_.metrics) {
    auto window =
        m.window_hours ? std::optional<int64_t>(*m.window_hours * kMicrosPerHour) : std::nullopt;
    const size_t t = type_index(m.event_type);
    if (m.kind == stats::MetricKind::kQuantile) {
      std::pair<std::string, std::optional<int64_t>> c{m.event_type, m.window_hours};
      auto it = std::find(conditions.begin(), conditions.end(), c);
      size_t g = static_cast<size_t>(it - conditions.begin());
      if (it == conditions.end()) {
        conditions.push_back(c);
        Feed f;
        f.quantile = true;
        f.slot = g;
        f.window_us = window;
        feeds_[t].push_back(f);
      }
      metric_slot_.push_back(g);
      continue;
    }
    metric_slot_.push_back(slots_);
    Feed post;
    post.window_us = window;
    post.slot = slots_++;
    switch (m.kind) {
      case stats::MetricKind::kConversion:
      case stats::MetricKind::kCount:
        post.kind = Feed::kCount;
        break;
      case stats::MetricKind::kMean:
        post.kind = Feed::kSum;  // an event without a value adds 0
        break;
      case stats::MetricKind::kRatio:
        post.kind = Feed::kSum;
        post.missing = 1;  // a value-less event counts 1 (clicks per view)
        break;
      case stats::MetricKind::kQuantile:
        break;
    }
    feeds_[t].push_back(post);
    if (m.kind == stats::MetricKind::kRatio) {
      Feed den = post;
      den.slot = slots_++;
      const size_t d = type_index(m.denominator_event_type);
      feeds_[d].push_back(den);
    } else if (cuped && CupedApplies(m.kind)) {
      Feed pre = post;
      pre.pre = true;
      pre.window_us = q_.cuped_pre_window_hours * kMicrosPerHour;
      pre.slot = slots_++;
      feeds_[t].push_back(pre);
    }
  }
  conditions_ = conditions.size();
  values_.resize(conditions_);
}

bool ExperimentState::Serves(const ExperimentQuery& q) const {
  return q.experiment_id == q_.experiment_id && q.variant_ids == q_.variant_ids &&
         q.cuped_pre_window_hours == q_.cuped_pre_window_hours && q.metrics == q_.metrics;
}

void ExperimentState::Reserve(size_t events, size_t users) {
  events_.reserve(events);
  event_index_.reserve(events);
  users_.reserve(users);
  user_index_.reserve(users);
  acc_.reserve(users * slots_);
}

uint32_t ExperimentState::UserIndex(uint64_t user) {
  auto [it, inserted] = user_index_.try_emplace(user, static_cast<uint32_t>(users_.size()));
  if (inserted) {
    users_.emplace_back();
    acc_.resize(acc_.size() + slots_, 0.0);
  }
  return it->second;
}

uint8_t ExperimentState::TypeIndex(std::string_view type) const {
  for (size_t i = 0; i < types_.size(); ++i) {
    if (types_[i] == type) return static_cast<uint8_t>(i);
  }
  return kOtherType;
}

void ExperimentState::Link(uint32_t user, uint32_t event) {
  events_[event].user = user;
  events_[event].next = users_[user].head;
  users_[user].head = event;
}

void ExperimentState::Unlink(uint32_t user, uint32_t event) {
  uint32_t* at = &users_[user].head;
  while (*at != kNone && *at != event) at = &events_[*at].next;
  if (*at == event) *at = events_[event].next;
  events_[event].user = kNone;
  events_[event].next = kNone;
}

void ExperimentState::Contribute(const User& u, uint32_t user, const Event& e, bool removes) {
  if (e.type == kOtherType) return;
  for (const Feed& f : feeds_[e.type]) {
    bool in = f.pre ? (e.ts_us < u.exposed_us && e.ts_us >= u.exposed_us - *f.window_us)
                    : (e.ts_us >= u.exposed_us &&
                       (!f.window_us || e.ts_us < u.exposed_us + *f.window_us));
    if (!in) continue;
    if (f.quantile) {
      if (!e.has_value) continue;
      Values& v = values_[f.slot][u.variant_id];
      (removes ? v.removes : v.adds).push_back(e.value);
      continue;
    }
    if (removes) continue;  // accumulators are recomputed whole (Settle)
    acc_[static_cast<size_t>(user) * slots_ + f.slot] +=
        f.kind == Feed::kCount ? 1.0 : (e.has_value ? e.value : f.missing);
  }
}

void ExperimentState::MarkDirty(uint32_t user) {
  User& u = users_[user];
  if (u.dirty) return;
  u.dirty = true;
  dirty_.push_back(user);
  if (!u.exposed || conditions_ == 0) return;
  for (uint32_t e = u.head; e != kNone; e = events_[e].next) Contribute(u, user, events_[e], true);
}

void ExperimentState::ApplyExposure(const ExposureRow& row) {
  const uint32_t user = UserIndex(row.user);
  User& u = users_[user];
  if (u.version != 0 && row.version <= u.version) return;  // a copy or an older version
  if (u.head != kNone && (u.exposed || !row.deleted)) MarkDirty(user);
  u.version = row.version;
  u.exposed = !row.deleted;
  if (!row.deleted) {
    u.variant_id = row.variant_id;
    u.exposed_us = row.exposed_us;
  }
}

void ExperimentState::ApplyEvent(const EventRow& row) {
  const bool live = !row.deleted && row.experiment_id == q_.experiment_id;
  auto it = event_index_.find(row.key);
  uint32_t index;
  if (it == event_index_.end()) {
    if (!live && !row.deleted) return;  // another experiment's event: none of ours
    index = static_cast<uint32_t>(events_.size());
    events_.emplace_back();
    event_index_.emplace(row.key, index);
  } else {
    index = it->second;
    if (row.version <= events_[index].version) return;  // a copy or an older version
    const uint32_t old = events_[index].user;
    if (old != kNone) {
      MarkDirty(old);
      Unlink(old, index);
    }
  }
  Event& e = events_[index];
  e.version = row.version;
  if (!live) return;  // a tombstone: deleted, or moved to another experiment
  e.ts_us = row.ts_us;
  e.has_value = row.value.has_value();
  e.value = row.value.value_or(0);
  e.type = TypeIndex(row.event_type);
  const uint32_t user = UserIndex(row.user);
  Link(user, index);
  const User& u = users_[user];
  if (u.exposed && !u.dirty) Contribute(u, user, events_[index], false);
}

void ExperimentState::Settle() {
  for (uint32_t user : dirty_) {
    User& u = users_[user];
    u.dirty = false;
    std::fill_n(acc_.begin() + static_cast<ptrdiff_t>(user * slots_), slots_, 0.0);
    if (!u.exposed) continue;
    for (uint32_t e = u.head; e != kNone; e = events_[e].next) {
      Contribute(u, user, events_[e], false);
    }
  }
  dirty_.clear();
}

Aggregates ExperimentState::Gather(double alpha) {
  const bool cuped = q_.cuped_pre_window_hours > 0;
  const size_t nv = q_.variant_ids.size();
  // Per variant: users, then per metric its sums in MetricColumns order.
  std::vector<int64_t> users(nv, 0);
  std::vector<std::vector<std::vector<double>>> sums(nv);
  for (size_t v = 0; v < nv; ++v) {
    for (const MetricQuery& m : q_.metrics) {
      sums[v].emplace_back(MetricColumns(m, cuped).size(), 0.0);
    }
  }
  size_t last = 0;  // users of a variant tend to come in runs: look there first
  for (size_t i = 0; i < users_.size(); ++i) {
    const User& u = users_[i];
    if (!u.exposed) continue;
    if (q_.variant_ids[last] != u.variant_id) {
      auto it = std::find(q_.variant_ids.begin(), q_.variant_ids.end(), u.variant_id);
      if (it == q_.variant_ids.end()) continue;  // not a variant of the definition
      last = static_cast<size_t>(it - q_.variant_ids.begin());
    }
    ++users[last];
    const double* acc = acc_.data() + i * slots_;
    for (size_t k = 0; k < q_.metrics.size(); ++k) {
      const MetricQuery& m = q_.metrics[k];
      std::vector<double>& s = sums[last][k];
      const size_t slot = metric_slot_[k];
      switch (m.kind) {
        case stats::MetricKind::kQuantile:
          break;
        case stats::MetricKind::kRatio: {
          const double x = acc[slot], y = acc[slot + 1];
          s[0] += x;
          s[1] += y;
          s[2] += x * x;
          s[3] += y * y;
          s[4] += x * y;
          break;
        }
        case stats::MetricKind::kConversion:
        case stats::MetricKind::kMean:
        case stats::MetricKind::kCount: {
          const bool conversion = m.kind == stats::MetricKind::kConversion;
          const double x = conversion ? (acc[slot] > 0 ? 1.0 : 0.0) : acc[slot];
          size_t c = 0;
          s[c++] += x;
          if (!conversion) s[c++] += x * x;
          if (cuped) {
            const double p = conversion ? (acc[slot + 1] > 0 ? 1.0 : 0.0) : acc[slot + 1];
            s[c++] += p;
            s[c++] += p * p;
            s[c++] += x * p;
          }
          break;
        }
      }
    }
  }
  Aggregates out;
  for (std::map<int64_t, Values>& per_variant : values_) {
    for (auto& [id, v] : per_variant) MergeValues(v.sorted, v.adds, v.removes);
  }
  for (size_t v = 0; v < nv; ++v) {
    const int64_t id = q_.variant_ids[v];
    for (size_t k = 0; k < q_.metrics.size(); ++k) {
      const MetricQuery& m = q_.metrics[k];
      if (m.kind != stats::MetricKind::kQuantile) continue;
      auto it = values_[metric_slot_[k]].find(id);
      if (it == values_[metric_slot_[k]].end() || it->second.sorted.empty()) continue;
      const std::vector<double>& sorted = it->second.sorted;
      const auto n = static_cast<int64_t>(sorted.size());
      sums[v][k][0] = static_cast<double>(n);
      Result<stats::QuantileLevels> levels = stats::LevelsForQuantile(m.quantile, n, alpha);
      out.quantiles[{k, id}] = levels.ok() ? std::vector<double>{ValueAt(sorted, levels->lower),
                                                                 ValueAt(sorted, levels->p),
                                                                 ValueAt(sorted, levels->upper)}
                                           : std::vector<double>{ValueAt(sorted, m.quantile)};
    }
    out.variants[id] = {users[v], std::move(sums[v])};
  }
  return out;
}

size_t ExperimentState::bytes() const {
  size_t n = events_.capacity() * sizeof(Event) + users_.capacity() * sizeof(User) +
             acc_.capacity() * sizeof(double);
  // flat_hash_map: one control byte and one slot per bucket.
  n += event_index_.capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
  n += user_index_.capacity() * (sizeof(std::pair<uint64_t, uint32_t>) + 1);
  for (const std::map<int64_t, Values>& per_variant : values_) {
    for (const auto& [id, v] : per_variant) {
      n += (v.sorted.capacity() + v.adds.capacity() + v.removes.capacity()) * sizeof(double);
    }
  }
  return n;
}

}  // namespace splitstream::results

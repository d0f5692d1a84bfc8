#include "assign_batcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <string>
#include <unordered_map>

#include "splitstream/pg/pg.h"
#include "sql_util.h"

namespace splitstream::experiments::internal {

namespace {

// One INSERT for the whole batch, prepared once per connection. It reads no table: the
// conflict check goes through the primary key's unique index whatever the plan, so the
// cached generic plan cannot go stale as `assignments` grows (a join to `assignments` here
// was once planned as a hash of the whole table while it was empty, and kept).
// - Only new assignments are sent, each (experiment, user) once: Write() leaves out lookups
//   (no variant) and repeats within the batch, which then share the first one's outcome. So
//   the statement needs no DISTINCT ON and its sort.
// - Every row of the statement is stored with the same assigned_at, the transaction's
//   now(), so it is converted to microseconds once (an InitPlan), not per row.
// - Rows that already existed (ON CONFLICT skipped them) and lookups are read back with
//   kRereadSql, planned afresh each time (it is rare: returning users are answered from the
//   cache of stored assignments).
constexpr std::string_view kAssignSql = R"sql(
INSERT INTO assignments (experiment_id, user_id, variant_id, assigned_at)
SELECT experiment_id, user_id, variant_id, now()
FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS t(experiment_id, user_id, variant_id)
ON CONFLICT (experiment_id, user_id) DO NOTHING
RETURNING experiment_id, user_id, (SELECT (extract(epoch FROM now()) * 1000000)::bigint))sql";

constexpr std::string_view kRereadSql = R"sql(
SELECT t.ord, a.variant_id, (extract(epoch FROM a.assigned_at) * 1000000)::bigint
FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS t(experiment_id, user_id, ord)
JOIN assignments a ON a.experiment_id = t.experiment_id AND a.user_id = t.user_id)sql";

using Outcome = AssignOutcome;

void Deliver(PendingAssign& p, Result<Assignment> result) {
  try {
    p.done(std::move(result));
  } catch (const std::exception& e) {
    spdlog::error("assignment callback threw: {}", e.what());
  } catch (...) {
    spdlog::error("assignment callback threw");
  }
}

Result<std::vector<Outcome>> Write(pg::Connection& conn, const std::vector<PendingAssign>& batch) {
  // The batch's keys, (experiment id, user id) in the text forms the statement returns.
  auto key = [](std::string_view experiment, std::string_view user) {
    std::string k;
    k.reserve(experiment.size() + 1 + user.size());
    k.append(experiment).append(1, '\x1f').append(user);
    return k;
  };
  std::vector<pg::Param> exp_ids, user_ids;
  std::vector<std::string> keys;  // built once per request
  exp_ids.reserve(batch.size());
  user_ids.reserve(batch.size());
  keys.reserve(batch.size());
  for (const PendingAssign& p : batch) {
    exp_ids.emplace_back(std::to_string(p.def->experiment.id.value()));
    user_ids.emplace_back(p.user_id);
    keys.push_back(key(*exp_ids.back(), p.user_id));
  }
  // New assignments to insert: each key once, the first request with a variant wins.
  std::unordered_map<std::string_view, size_t> sent;
  sent.reserve(batch.size());
  std::vector<size_t> to_send;
  for (size_t i = 0; i < batch.size(); ++i) {
    const PendingAssign& p = batch[i];
    if (p.variant && sent.emplace(keys[i], i).second) to_send.push_back(i);
  }
  // Sent in key order, so that concurrent batches (several batcher threads, several servers)
  // take their row locks in one order: one waits for the other instead of a deadlock when
  // both insert the same users.
  std::sort(to_send.begin(), to_send.end(), [&](size_t a, size_t b) {
    const int64_t ea = batch[a].def->experiment.id.value(),
                  eb = batch[b].def->experiment.id.value();
    return ea != eb ? ea < eb : batch[a].user_id < batch[b].user_id;
  });
  std::vector<pg::Param> new_exp, new_user, new_variant;
  for (size_t i : to_send) {
    const PendingAssign& p = batch[i];
    new_exp.push_back(exp_ids[i]);
    new_user.push_back(user_ids[i]);
    new_variant.emplace_back(std::to_string(p.def->experiment.variants[*p.variant].id.value()));
  }
  // Inserted rows by key.
  std::unordered_map<std::string, int64_t> inserted;  // key -> assigned_at_us
  if (!new_exp.empty()) {
    SPLITSTREAM_ASSIGN_OR_RETURN(
        auto rows, conn.ExecPrepared("splitstream_assign", kAssignSql,
                                     {pg::ArrayLiteral(new_exp), pg::ArrayLiteral(new_user),
                                      pg::ArrayLiteral(new_variant)}));
    inserted.reserve(rows.size());
    for (size_t r = 0; r < rows.size(); ++r) {
      SPLITSTREAM_ASSIGN_OR_RETURN(int64_t at, ParseInt64(rows.text(r, 2)));
      inserted.emplace(key(rows.text(r, 0), rows.text(r, 1)), at);
    }
  }
  std::vector<Outcome> out(batch.size());
  std::vector<size_t> missing;
  for (size_t i = 0; i < batch.size(); ++i) {
    const std::string& k = keys[i];
    auto it = inserted.find(k);
    if (it == inserted.end()) {
      missing.push_back(i);
      continue;
    }
    // Stored by this statement, with the variant of the request that was sent for this key.
    const PendingAssign& first = batch[sent.at(k)];
    Outcome& o = out[i];
    o.variant_id = first.def->experiment.variants[*first.variant].id.value();
    o.assigned_at_us = it->second;
    o.inserted = true;
  }
  if (!missing.empty()) {
    // Stored before (by an earlier batch or another server), or lookups: read them now.
    std::vector<pg::Param> m_exp, m_user;
    for (size_t i : missing) {
      m_exp.push_back(exp_ids[i]);
      m_user.push_back(user_ids[i]);
    }
    SPLITSTREAM_ASSIGN_OR_RETURN(
        auto again, conn.Exec(kRereadSql, {pg::ArrayLiteral(m_exp), pg::ArrayLiteral(m_user)}));
    for (size_t r = 0; r < again.size(); ++r) {
      SPLITSTREAM_ASSIGN_OR_RETURN(int64_t ord, ParseInt64(again.text(r, 0)));
      if (ord < 1 || static_cast<size_t>(ord) > missing.size()) {
        return Status::Internal("assignment re-read returned an unexpected ordinal");
      }
      Outcome& o = out[missing[ord - 1]];
      SPLITSTREAM_ASSIGN_OR_RETURN(o.variant_id, ParseOptionalInt64(again.at(r, 1)));
      SPLITSTREAM_ASSIGN_OR_RETURN(o.assigned_at_us, ParseInt64(again.text(r, 2)));
    }
  }
  return out;
}

}  // namespace

AssignBatcher::AssignBatcher(pg::Pool* pool, int max_batch, int threads,
                             StoredAssignmentCache* stored)
    : pool_(pool), max_batch_(static_cast<size_t>(std::max(1, max_batch))), stored_(stored) {
  answerer_ = std::thread([this] { Answer(); });
  for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Run(); });
}

AssignBatcher::~AssignBatcher() { Shutdown(); }

bool AssignBatcher::Submit(PendingAssign& p) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(p));
  }
  cv_.notify_one();
  return true;
}

void AssignBatcher::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  {
    std::lock_guard<std::mutex> lock(written_mu_);
    writers_done_ = true;
  }
  written_cv_.notify_all();
  if (answerer_.joinable()) answerer_.join();
  std::lock_guard<std::mutex> lock(mu_);
  threads_.clear();
}

void AssignBatcher::Run() {
  std::vector<PendingAssign> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Process(batch);
    batch.clear();
  }
}

void AssignBatcher::Process(std::vector<PendingAssign>& batch) {
  batches_.fetch_add(1);
  rows_.fetch_add(batch.size());
  Written written;
  {
    auto lease = pool_->Acquire();
    Result<std::vector<Outcome>> outcomes =
        lease.ok() ? Write(**lease, batch) : Result<std::vector<Outcome>>(lease.status());
    if (outcomes.ok()) {
      written.outcomes = std::move(outcomes).value();
    } else {
      written.status = outcomes.status();
    }
  }  // the connection returns to the pool before the answers
  written.batch = std::move(batch);
  {
    std::lock_guard<std::mutex> lock(written_mu_);
    written_.push_back(std::move(written));
  }
  written_cv_.notify_one();
}

void AssignBatcher::Answer() {
  for (;;) {
    Written written;
    {
      std::unique_lock<std::mutex> lock(written_mu_);
      written_cv_.wait(lock, [&] { return writers_done_ || !written_.empty(); });
      if (written_.empty()) return;  // the writers are done and everything is answered
      written = std::move(written_.front());
      written_.pop_front();
    }
    AnswerBatch(written);
  }
}

void AssignBatcher::AnswerBatch(Written& written) {
  std::vector<PendingAssign>& batch = written.batch;
  if (!written.status.ok()) {
    Status st = written.status.WithContext("store assignments");
    spdlog::warn("{}", st.ToString());
    for (PendingAssign& p : batch) Deliver(p, st);
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    PendingAssign& p = batch[i];
    const Outcome& o = written.outcomes[i];
    Assignment a;
    a.experiment = p.def->experiment.spec.key;
    a.user_id = p.user_id;
    if (!o.variant_id) {
      if (p.variant) {
        Deliver(p, Status::Internal("the stored assignment could not be read back"));
        continue;
      }
      a.in_experiment = false;
      a.reason = p.reason_if_absent;
      Deliver(p, std::move(a));
      continue;
    }
    int index = p.def->VariantIndex(VariantId(*o.variant_id));
    if (index < 0) {
      Deliver(p, Status::DataLoss("a stored assignment names a variant of another experiment"));
      continue;
    }
    a.in_experiment = true;
    a.variant = p.def->experiment.variants[index].key;
    a.stored = !o.inserted;
    a.reason = o.inserted ? "assigned" : "stored";
    a.assigned_at_us = o.assigned_at_us;
    if (stored_) stored_->Put(p.def->experiment.id.value(), p.user_id, {index, o.assigned_at_us});
    Deliver(p, std::move(a));
  }
}

}  // namespace splitstream::experiments::internal

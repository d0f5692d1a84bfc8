// Against a real PostgreSQL (SPLITSTREAM_PG_DSN): the experiment service end to end.
#include "splitstream/experiments/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "splitstream/assignment/assignment.h"
#include "splitstream/core/timestamp.h"
#include "splitstream/pg/pg.h"
#include "splitstream/testing/test_database.h"

namespace splitstream::experiments {
namespace {

using std::chrono::milliseconds;

ExperimentSpec Spec(const std::string& key) {
  ExperimentSpec spec;
  spec.key = key;
  spec.variants = {{"control", 1}, {"treatment", 1}};
  return spec;
}

ExperimentSpec LayerSpec(const std::string& key, const std::string& layer, double start,
                         double end) {
  ExperimentSpec spec = Spec(key);
  spec.layer = layer;
  spec.layer_start = start;
  spec.layer_end = end;
  return spec;
}

Result<Assignment> AssignSync(Service& service, const std::string& experiment,
                              const std::string& user) {
  std::promise<Result<Assignment>> promise;
  auto future = promise.get_future();
  service.Assign({user, experiment},
                 [&promise](Result<Assignment> r) { promise.set_value(std::move(r)); });
  return future.get();
}

// Polls `pred` for up to `timeout`.
template <typename Pred>
bool Eventually(Pred pred, milliseconds timeout = milliseconds(10000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = testing::TestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
    auto pool = pg::Pool::Create(db_->dsn(), 6);
    ASSERT_TRUE(pool.ok()) << pool.status().ToString();
    pool_ = std::move(pool).value();
    auto conn = pg::Connection::Open(db_->dsn());
    ASSERT_TRUE(conn.ok());
    sql_ = std::move(conn).value();
    StartService();
  }

  void TearDown() override {
    service_.reset();
    pool_.reset();
  }

  void StartService(size_t stored_cache_entries = 1 << 20) {
    auto service =
        Service::Create(pool_.get(), {db_->dsn(), 512, 2, nullptr, stored_cache_entries});
    ASSERT_TRUE(service.ok()) << service.status().ToString();
    service_ = std::move(service).value();
  }

  Experiment MustCreateRunning(ExperimentSpec spec) {
    auto created = service_->Create(std::move(spec));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) return {};
    auto started = service_->Start(created->spec.key);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    return started.ok() ? *started : Experiment{};
  }

  int64_t Count(const std::string& sql, const std::vector<pg::Param>& params = {}) {
    auto rows = sql_->Exec(sql, params);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? std::stoll(std::string(rows->text(0, 0))) : -1;
  }

  std::unique_ptr<testing::TestDatabase> db_;
  std::unique_ptr<pg::Pool> pool_;
  std::unique_ptr<pg::Connection> sql_;
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceTest, CreateListGetStartStop) {
  ExperimentSpec spec = Spec("checkout");
  spec.description = "d";
  spec.traffic = 0.5;
  spec.metrics = {{"aov", "revenue", "ratio", "order", std::nullopt, 48, true, false},
                  {"p95", "latency", "quantile", std::nullopt, 0.95, std::nullopt, false, true}};
  auto created = service_->Create(spec);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_GT(created->id.value(), 0);
  EXPECT_EQ(created->status, ExperimentStatus::kDraft);
  EXPECT_EQ(created->spec.name, "checkout");
  EXPECT_EQ(created->spec.seed, "checkout");
  EXPECT_EQ(created->spec.traffic, 0.5);
  ASSERT_EQ(created->variants.size(), 2u);
  EXPECT_EQ(created->variants[0].key, "control");
  EXPECT_EQ(created->variants[1].key, "treatment");
  EXPECT_NE(created->variants[0].id, created->variants[1].id);
  ASSERT_EQ(created->spec.metrics.size(), 2u);
  EXPECT_EQ(created->spec.metrics[0].denominator_event_type, "order");
  EXPECT_EQ(created->spec.metrics[0].window_hours, 48);
  EXPECT_EQ(created->spec.metrics[1].quantile, 0.95);
  EXPECT_FALSE(created->spec.metrics[1].higher_is_better);
  EXPECT_TRUE(created->spec.metrics[1].guardrail);
  EXPECT_GT(created->created_at_us, 0);
  EXPECT_FALSE(created->started_at_us);

  ASSERT_TRUE(service_->Create(Spec("another")).ok());
  auto list = service_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].spec.key, "checkout");
  EXPECT_EQ((*list)[1].spec.key, "another");

  auto got = service_->Get("checkout");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, created->id);
  auto missing = service_->Get("nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().field(), "key");

  auto started = service_->Start("checkout");
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  EXPECT_EQ(started->status, ExperimentStatus::kRunning);
  ASSERT_TRUE(started->started_at_us);
  auto again = service_->Start("checkout");  // no-op
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->started_at_us, started->started_at_us);

  auto stopped = service_->Stop("checkout");
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->status, ExperimentStatus::kStopped);
  EXPECT_TRUE(stopped->stopped_at_us);
  EXPECT_EQ(service_->Start("checkout").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(service_->Stop("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Start("nope").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(service_->Stop("another").ok());  // draft -> stopped
  EXPECT_TRUE(service_->Ready().ok());
}

TEST_F(ServiceTest, RejectsDuplicateKeyAndBadSpecs) {
  ASSERT_TRUE(service_->Create(Spec("dup")).ok());
  auto dup = service_->Create(Spec("dup"));
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(dup.status().field(), "key");

  ExperimentSpec bad = Spec("bad");
  bad.variants[1].weight = -1;
  auto invalid = service_->Create(bad);
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid.status().field(), "variants[1].weight");
  EXPECT_EQ(Count("SELECT count(*) FROM experiments"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM variants"), 2);
}

TEST_F(ServiceTest, LayerSharesMustNotOverlap) {
  ASSERT_TRUE(service_->Create(LayerSpec("a", "home", 0, 0.5)).ok());
  ASSERT_TRUE(service_->Create(LayerSpec("b", "home", 0.5, 1)).ok());
  auto c = service_->Create(LayerSpec("c", "home", 0.4, 0.6));
  EXPECT_EQ(c.status().code(), StatusCode::kConflict);
  EXPECT_EQ(c.status().field(), "layer_start");
  EXPECT_NE(c.status().message().find("\"a\""), std::string::npos) << c.status().message();
  EXPECT_TRUE(service_->Create(LayerSpec("d", "search", 0.4, 0.6)).ok());
  // A stopped experiment frees its share.
  ASSERT_TRUE(service_->Stop("a").ok());
  EXPECT_TRUE(service_->Create(LayerSpec("e", "home", 0.2, 0.5)).ok());
}

TEST_F(ServiceTest, ConcurrentOverlappingCreatesExactlyOneWins) {
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::vector<Status> results(kThreads);
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      // Every share contains [0.3, 0.35): all overlap pairwise.
      auto r = service_->Create(LayerSpec("race" + std::to_string(t), "race", 0.05 * t, 0.35));
      results[t] = r.status();
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  int ok = 0;
  for (const Status& st : results) {
    if (st.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(st.code(), StatusCode::kConflict) << st.ToString();
    }
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(Count("SELECT count(*) FROM experiments WHERE layer = 'race'"), 1);
}

TEST_F(ServiceTest, AssignIsDeterministicAndSticky) {
  Experiment e = MustCreateRunning(Spec("det"));
  assignment::Allocation expected("det", 2, 1.0, {0.5, 0.5}, std::nullopt);
  std::map<std::string, int> counts;
  for (int u = 0; u < 200; ++u) {
    const std::string user = "user-" + std::to_string(u);
    auto first = AssignSync(*service_, "det", user);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    ASSERT_TRUE(first->in_experiment);
    EXPECT_EQ(first->reason, "assigned");
    EXPECT_FALSE(first->stored);
    EXPECT_GT(first->assigned_at_us, 0);
    const auto decision = expected.Assign(user);
    EXPECT_EQ(first->variant, e.variants[decision.variant].key) << user;
    counts[first->variant]++;
    auto second = AssignSync(*service_, "det", user);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->variant, first->variant);
    EXPECT_TRUE(second->stored);
    EXPECT_EQ(second->reason, "stored");
    EXPECT_EQ(second->assigned_at_us, first->assigned_at_us);
  }
  EXPECT_GT(counts["control"], 60);
  EXPECT_GT(counts["treatment"], 60);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 200);

  auto unknown = AssignSync(*service_, "nope", "u");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().field(), "experiment");
  auto empty = AssignSync(*service_, "det", "");
  EXPECT_EQ(empty.status().field(), "user_id");
  auto binary = AssignSync(*service_, "det", "\xff");
  EXPECT_EQ(binary.status().field(), "user_id");
}

TEST_F(ServiceTest, ReturningUsersAreAnsweredFromMemoryOnlyWhenTheCacheIsOn) {
  for (size_t entries : {size_t{1} << 20, size_t{0}}) {
    service_.reset();
    StartService(entries);
    const std::string key = "mem" + std::to_string(entries);
    MustCreateRunning(Spec(key));
    auto first = AssignSync(*service_, key, "returning");
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    const ServiceStats before = service_->stats();
    for (int i = 0; i < 5; ++i) {
      auto again = AssignSync(*service_, key, "returning");
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->variant, first->variant);
      EXPECT_TRUE(again->stored);
      EXPECT_EQ(again->reason, "stored");
      EXPECT_EQ(again->assigned_at_us, first->assigned_at_us);
    }
    const ServiceStats after = service_->stats();
    if (entries > 0) {
      EXPECT_EQ(after.stored_cache_hits - before.stored_cache_hits, 5u);
      EXPECT_EQ(after.assign_batches, before.assign_batches);  // no round trip
    } else {
      EXPECT_EQ(after.stored_cache_hits, 0u);
      EXPECT_EQ(after.assign_rows - before.assign_rows, 5u);  // read back from PostgreSQL
    }
  }
}

TEST_F(ServiceTest, StickyAcrossRestartAndAllocationChanges) {
  MustCreateRunning(Spec("sticky"));
  std::map<std::string, std::string> before;
  for (int u = 0; u < 100; ++u) {
    const std::string user = "u" + std::to_string(u);
    auto a = AssignSync(*service_, "sticky", user);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    before[user] = a->variant;
  }
  // A restart: a new service on the same database.
  service_.reset();
  StartService();
  ASSERT_TRUE(
      service_->UpdateAllocation("sticky", std::nullopt, std::vector<double>{1, 1000}).ok());
  for (const auto& [user, variant] : before) {
    auto a = AssignSync(*service_, "sticky", user);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->variant, variant) << user;
    EXPECT_EQ(a->reason, "stored");
  }
  // New users follow the new weights.
  int treatment = 0;
  for (int u = 0; u < 100; ++u) {
    auto a = AssignSync(*service_, "sticky", "new" + std::to_string(u));
    ASSERT_TRUE(a.ok());
    treatment += a->variant == "treatment";
  }
  EXPECT_GE(treatment, 97);

  // Traffic to zero: stored users stay in, others are out and not stored.
  auto updated = service_->UpdateAllocation("sticky", 0.0, std::nullopt);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->spec.traffic, 0.0);
  EXPECT_EQ(updated->variants[1].weight, 1000);
  for (const auto& [user, variant] : before) {
    auto a = AssignSync(*service_, "sticky", user);
    ASSERT_TRUE(a.ok());
    EXPECT_TRUE(a->in_experiment);
    EXPECT_EQ(a->variant, variant);
  }
  const int64_t stored = Count("SELECT count(*) FROM assignments");
  auto out = AssignSync(*service_, "sticky", "newcomer");
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(out->in_experiment);
  EXPECT_EQ(out->reason, "not_in_traffic");
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), stored);

  auto wrong = service_->UpdateAllocation("sticky", std::nullopt, std::vector<double>{1, 1, 1});
  EXPECT_EQ(wrong.status().field(), "variants");
  auto negative = service_->UpdateAllocation("sticky", std::nullopt, std::vector<double>{1, 0});
  EXPECT_EQ(negative.status().field(), "variants[1].weight");
  EXPECT_EQ(service_->UpdateAllocation("sticky", 2.0, std::nullopt).status().field(), "traffic");
  EXPECT_EQ(service_->UpdateAllocation("nope", 0.5, std::nullopt).status().code(),
            StatusCode::kNotFound);
}

TEST_F(ServiceTest, NonRunningExperimentsAssignNobody) {
  ASSERT_TRUE(service_->Create(Spec("draft")).ok());
  auto a = AssignSync(*service_, "draft", "u1");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->in_experiment);
  EXPECT_EQ(a->reason, "not_running");

  MustCreateRunning(Spec("later-stopped"));
  auto in = AssignSync(*service_, "later-stopped", "u1");
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(in->in_experiment);
  ASSERT_TRUE(service_->Stop("later-stopped").ok());
  auto after = AssignSync(*service_, "later-stopped", "u1");
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->in_experiment);
  EXPECT_EQ(after->reason, "not_running");
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 1);
}

TEST_F(ServiceTest, LayerIsExclusiveOverManyUsers) {
  MustCreateRunning(LayerSpec("left", "l", 0, 0.5));
  MustCreateRunning(LayerSpec("right", "l", 0.5, 1));
  int in_left = 0, in_right = 0;
  for (int u = 0; u < 1000; ++u) {
    const std::string user = "x" + std::to_string(u);
    auto l = AssignSync(*service_, "left", user);
    auto r = AssignSync(*service_, "right", user);
    ASSERT_TRUE(l.ok() && r.ok());
    EXPECT_FALSE(l->in_experiment && r->in_experiment) << user;
    EXPECT_TRUE(l->in_experiment || r->in_experiment) << user;  // shares cover the layer
    if (!l->in_experiment) {
      EXPECT_EQ(l->reason, "not_in_layer");
    }
    in_left += l->in_experiment;
    in_right += r->in_experiment;
  }
  EXPECT_GT(in_left, 400);
  EXPECT_GT(in_right, 400);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 1000);
}

TEST_F(ServiceTest, ConcurrentAssignsAreBatchedAndDurable) {
  MustCreateRunning(Spec("busy"));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  const ServiceStats before = service_->stats();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::future<Result<Assignment>>> futures;
      for (int i = 0; i < kPerThread; ++i) {
        auto promise = std::make_shared<std::promise<Result<Assignment>>>();
        futures.push_back(promise->get_future());
        // Every user twice (once by this thread, once by the next): duplicates in flight.
        const int user = (t * kPerThread + i) % (kThreads * kPerThread / 2);
        service_->Assign({"c" + std::to_string(user), "busy"},
                         [promise](Result<Assignment> r) { promise->set_value(std::move(r)); });
      }
      for (auto& f : futures) {
        auto r = f.get();
        (r.ok() && r->in_experiment ? ok : failed)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  const ServiceStats after = service_->stats();
  const uint64_t rows = after.assign_rows - before.assign_rows;
  const uint64_t batches = after.assign_batches - before.assign_batches;
  // Every request went through the batcher, except repeats answered from the cache of
  // stored assignments once the first request of that user had committed.
  const uint64_t hits = after.stored_cache_hits - before.stored_cache_hits;
  EXPECT_EQ(rows + hits, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_GE(rows, static_cast<uint64_t>(kThreads * kPerThread / 2));
  EXPECT_LT(batches, rows / 4) << batches << " batches for " << rows << " rows";
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), kThreads * kPerThread / 2);
  // Every answer agrees with what is stored.
  for (int u = 0; u < 50; ++u) {
    auto a = AssignSync(*service_, "busy", "c" + std::to_string(u));
    ASSERT_TRUE(a.ok());
    EXPECT_TRUE(a->stored);
  }
}

TEST_F(ServiceTest, OneBatchWithRepeatsANewUserAndAStoredOne) {
  // One batcher thread and no cache of stored assignments, so every request below goes
  // through the batcher.
  service_.reset();
  auto created = Service::Create(pool_.get(), {db_->dsn(), 512, 1, nullptr, 0});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  service_ = std::move(created).value();
  MustCreateRunning(Spec("mix"));
  auto old = AssignSync(*service_, "mix", "old");
  ASSERT_TRUE(old.ok() && old->in_experiment);
  const ServiceStats before = service_->stats();

  // With every pooled connection held, the batcher waits with "first", and the rest collect
  // into the next batch: "dup" three times, "new", and "old", stored before.
  std::vector<pg::Pool::Lease> held;
  for (int i = 0; i < pool_->size(); ++i) {
    auto lease = pool_->Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    held.push_back(std::move(lease).value());
  }
  auto submit = [&](const std::string& user) {
    auto promise = std::make_shared<std::promise<Result<Assignment>>>();
    auto future = promise->get_future();
    service_->Assign({user, "mix"},
                     [promise](Result<Assignment> r) { promise->set_value(std::move(r)); });
    return future;
  };
  auto first = submit("first");
  std::this_thread::sleep_for(milliseconds(200));  // the batcher takes "first" and waits
  std::vector<std::future<Result<Assignment>>> rest;
  for (const char* user : {"dup", "new", "dup", "old", "dup"}) rest.push_back(submit(user));
  held.clear();  // back to the pool

  ASSERT_TRUE(first.get().ok());
  std::vector<Assignment> got;
  for (auto& f : rest) {
    Result<Assignment> r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->in_experiment);
    got.push_back(*r);
  }
  EXPECT_EQ(service_->stats().assign_batches - before.assign_batches, 2u);
  // The repeats share one stored row and are all answered as assigned by this batch.
  for (size_t i : {0u, 2u, 4u}) {
    EXPECT_EQ(got[i].reason, "assigned") << i;
    EXPECT_FALSE(got[i].stored) << i;
    EXPECT_EQ(got[i].variant, got[0].variant) << i;
    EXPECT_EQ(got[i].assigned_at_us, got[0].assigned_at_us) << i;
  }
  EXPECT_EQ(got[1].reason, "assigned");
  EXPECT_EQ(got[1].assigned_at_us, got[0].assigned_at_us);  // one statement, one now()
  EXPECT_EQ(got[3].reason, "stored");
  EXPECT_TRUE(got[3].stored);
  EXPECT_EQ(got[3].variant, old->variant);
  EXPECT_EQ(got[3].assigned_at_us, old->assigned_at_us);
  // What was answered is what is stored.
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 4);
  for (size_t i : {0u, 1u}) {
    EXPECT_EQ(Count("SELECT (extract(epoch FROM assigned_at) * 1000000)::bigint FROM assignments "
                    "WHERE user_id = $1",
                    {got[i].user_id}),
              got[i].assigned_at_us);
    EXPECT_EQ(Count("SELECT count(*) FROM assignments a JOIN variants v ON v.id = a.variant_id "
                    "WHERE a.user_id = $1 AND v.key = $2",
                    {got[i].user_id, got[i].variant}),
              1);
  }
}

TEST_F(ServiceTest, ShutdownDrainsPendingAssignments) {
  MustCreateRunning(Spec("drain"));
  std::atomic<int> ok{0};
  for (int i = 0; i < 500; ++i) {
    service_->Assign({"d" + std::to_string(i), "drain"}, [&ok](Result<Assignment> r) {
      if (r.ok() && r->in_experiment) ok++;
    });
  }
  service_->Shutdown();
  EXPECT_EQ(ok.load(), 500);
  EXPECT_EQ(Count("SELECT count(*) FROM assignments"), 500);
  auto late = AssignSync(*service_, "drain", "late");
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
}

TEST_F(ServiceTest, UserAssignmentsListsRunningExperimentsOnly) {
  MustCreateRunning(Spec("one"));
  MustCreateRunning(Spec("two"));
  ASSERT_TRUE(AssignSync(*service_, "one", "alice").ok());
  ASSERT_TRUE(AssignSync(*service_, "two", "alice").ok());
  auto list = service_->UserAssignments("alice");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].experiment, "one");
  EXPECT_TRUE((*list)[0].stored);
  ASSERT_TRUE(service_->Stop("one").ok());
  list = service_->UserAssignments("alice");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].experiment, "two");
  EXPECT_TRUE(service_->UserAssignments("bob")->empty());
  EXPECT_EQ(service_->UserAssignments("").status().field(), "user_id");
}

class EventsTest : public ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    MustCreateRunning(Spec("ev"));
    for (const char* user : {"u1", "u2", "u3"}) {
      auto a = AssignSync(*service_, "ev", user);
      ASSERT_TRUE(a.ok());
      variants_[user] = a->variant;
    }
  }

  Event Ev(const std::string& user, std::string type = "purchase") {
    Event e;
    e.experiment = "ev";
    e.user_id = user;
    e.type = std::move(type);
    return e;
  }

  int64_t Events() { return Count("SELECT count(*) FROM events"); }

  std::map<std::string, std::string> variants_;
};

TEST_F(EventsTest, StoresWithTheStoredVariant) {
  std::vector<Event> batch;
  for (const char* user : {"u1", "u2", "u3"}) {
    Event e = Ev(user);
    e.value = 12.5;
    e.properties_json = R"({"plan": "pro", "n": 3})";
    batch.push_back(e);
  }
  batch.push_back(Ev("u1", "click"));
  auto stored = service_->TrackEvents(batch);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(*stored, 4u);
  auto rows = sql_->Exec(
      "SELECT e.user_id, v.key, e.value, e.properties->>'plan' FROM events e "
      "JOIN variants v ON v.id = e.variant_id WHERE e.event_type = 'purchase' ORDER BY 1");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  for (size_t r = 0; r < rows->size(); ++r) {
    EXPECT_EQ(rows->text(r, 1), variants_[std::string(rows->text(r, 0))]);
    EXPECT_EQ(rows->text(r, 2), "12.5");
    EXPECT_EQ(rows->text(r, 3), "pro");
  }
  EXPECT_EQ(Count("SELECT count(*) FROM events WHERE value IS NULL"), 1);
  EXPECT_EQ(Count("SELECT count(DISTINCT event_id) FROM events"), 4);
}

TEST_F(EventsTest, AnUnassignedUserRejectsTheWholeBatch) {
  std::vector<Event> batch = {Ev("u1"), Ev("u2"), Ev("stranger"), Ev("nobody")};
  auto r = service_->TrackEvents(batch);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().field(), "events[2].user_id");
  EXPECT_EQ(Events(), 0);
}

TEST_F(EventsTest, AnUnknownExperimentRejectsTheWholeBatch) {
  std::vector<Event> batch = {Ev("u1"), Ev("u2")};
  batch[1].experiment = "missing";
  auto r = service_->TrackEvents(batch);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().field(), "events[1].experiment");
  EXPECT_EQ(Events(), 0);
}

TEST_F(EventsTest, TimestampsOutsideTheWindowAreRejected) {
  const int64_t now = Clock::System().WallMicros();
  const int64_t day = 86400LL * 1000000;
  std::vector<Event> batch = {Ev("u1"), Ev("u2")};
  batch[0].ts_us = now - day;
  batch[1].ts_us = now - 400 * day;
  auto old = service_->TrackEvents(batch);
  EXPECT_EQ(old.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(old.status().field(), "events[1].ts");
  batch[1].ts_us = now + 2 * day;
  auto future = service_->TrackEvents(batch);
  EXPECT_EQ(future.status().field(), "events[1].ts");
  // The message quotes the time as the API takes it (RFC 3339), not as PostgreSQL writes it.
  EXPECT_NE(
      future.status().message().find("ts " + FormatTimestamp(*batch[1].ts_us) + " is outside"),
      std::string::npos)
      << future.status().message();
  EXPECT_EQ(Events(), 0);

  // In the window but its partition was dropped (retention): still a clear error.
  batch[1].ts_us = now + day / 2;
  ASSERT_TRUE(service_->TrackEvents(batch).ok());
  auto month = sql_->Exec("SELECT 'events_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')");
  ASSERT_TRUE(month.ok());
  ASSERT_TRUE(sql_->ExecScript("DROP TABLE " + std::string(month->text(0, 0))).ok());
  std::vector<Event> late = {Ev("u3")};
  late[0].ts_us = now;
  auto gone = service_->TrackEvents(late);
  EXPECT_EQ(gone.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gone.status().field(), "events[0].ts");
}

TEST_F(EventsTest, ExplicitEventIdIsIdempotent) {
  std::vector<Event> batch = {Ev("u1"), Ev("u2")};
  batch[0].event_id = "0b4e7d3c-2f1a-4c5e-9d6b-8a7f6e5d4c3b";
  batch[1].event_id = "1b4e7d3c-2f1a-4c5e-9d6b-8a7f6e5d4c3b";
  batch[0].ts_us = batch[1].ts_us = Clock::System().WallMicros();
  ASSERT_EQ(service_->TrackEvents(batch).value(), 2u);
  EXPECT_EQ(service_->TrackEvents(batch).value(), 0u);  // a retry stores nothing new
  EXPECT_EQ(Events(), 2);

  std::vector<Event> bad = {Ev("u1")};
  bad[0].event_id = "not-a-uuid";
  EXPECT_EQ(service_->TrackEvents(bad).status().field(), "events[0].event_id");
  bad[0].event_id.reset();
  bad[0].properties_json = "[1]";
  EXPECT_EQ(service_->TrackEvents(bad).status().field(), "events[0].properties");
  bad[0].properties_json = "{";
  auto malformed = service_->TrackEvents(bad);
  EXPECT_EQ(malformed.status().code(), StatusCode::kInvalidArgument);
  bad[0].properties_json = "{}";
  bad[0].type = "";
  EXPECT_EQ(service_->TrackEvents(bad).status().field(), "events[0].type");
  EXPECT_EQ(Events(), 2);
  EXPECT_EQ(
      service_->TrackEvents(std::vector<Event>(kMaxEventsPerBatch + 1, Ev("u1"))).status().field(),
      "events");
}

TEST_F(ServiceTest, ChangesByAnotherServerReachTheCache) {
  auto pool2 = pg::Pool::Create(db_->dsn(), 4);
  ASSERT_TRUE(pool2.ok());
  auto other = Service::Create(pool2->get(), {db_->dsn(), 512, 2, nullptr});
  ASSERT_TRUE(other.ok()) << other.status().ToString();

  ASSERT_TRUE((*other)->Create(Spec("remote")).ok());
  ASSERT_TRUE((*other)->Start("remote").ok());
  auto running_here = [&] {
    auto list = service_->List();  // the cache only: no query
    for (const Experiment& e : *list) {
      if (e.spec.key == "remote") return e.status == ExperimentStatus::kRunning;
    }
    return false;
  };
  EXPECT_TRUE(Eventually(running_here));
  auto a = AssignSync(*service_, "remote", "u");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->in_experiment);

  // The LISTEN connection dies; a change made meanwhile is picked up after reconnecting.
  auto killed = sql_->Exec(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE datname = current_database() AND query LIKE 'LISTEN%'");
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  EXPECT_EQ(killed->text(0, 0), "2");
  ASSERT_TRUE((*other)->UpdateAllocation("remote", 0.25, std::nullopt).ok());
  EXPECT_TRUE(Eventually([&] { return service_->Get("remote")->spec.traffic == 0.25; }));
  ASSERT_TRUE((*other)->Stop("remote").ok());
  EXPECT_TRUE(
      Eventually([&] { return service_->Get("remote")->status == ExperimentStatus::kStopped; }));
  other->reset();
}

}  // namespace
}  // namespace splitstream::experiments

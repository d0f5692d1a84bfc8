#include "splitstream/pipeline/ack_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace splitstream::pipeline {
namespace {

TEST(AckTracker, ConfirmsOnlyTheContiguousPrefix) {
  AckTracker t;
  uint64_t a = t.Assign(), b = t.Assign();
  t.Commit(Lsn(100));
  uint64_t c = t.Assign();
  t.Commit(Lsn(200));
  EXPECT_EQ(t.Confirmable(), Lsn(0));
  EXPECT_EQ(t.InFlight(), 3u);
  t.Ack(c);  // the second transaction is delivered before the first
  EXPECT_EQ(t.Confirmable(), Lsn(0));
  t.Ack(b);
  EXPECT_EQ(t.Confirmable(), Lsn(0));
  t.Ack(a);
  EXPECT_EQ(t.Confirmable(), Lsn(200));
  EXPECT_EQ(t.InFlight(), 0u);
}

TEST(AckTracker, EmptyTransactionConfirmsAtOnceWhenNothingIsPending) {
  AckTracker t;
  t.Commit(Lsn(50));
  EXPECT_EQ(t.Confirmable(), Lsn(50));
  uint64_t a = t.Assign();
  t.Commit(Lsn(60));
  t.Commit(Lsn(70));  // empty, but behind a pending one
  EXPECT_EQ(t.Confirmable(), Lsn(50));
  t.Ack(a);
  EXPECT_EQ(t.Confirmable(), Lsn(70));
}

TEST(AckTracker, IdleAdvancesOnlyWithNothingInFlight) {
  AckTracker t;
  t.Idle(Lsn(10));
  EXPECT_EQ(t.Confirmable(), Lsn(10));
  uint64_t a = t.Assign();
  t.Idle(Lsn(20));
  EXPECT_EQ(t.Confirmable(), Lsn(10));
  t.Ack(a);
  // Records acknowledged but no boundary yet: the transaction is still open.
  t.Idle(Lsn(30));
  EXPECT_EQ(t.Confirmable(), Lsn(30));
}

TEST(AckTracker, AFailureStopsThePrefixForGood) {
  AckTracker t;
  uint64_t a = t.Assign();
  t.Commit(Lsn(100));
  uint64_t b = t.Assign();
  t.Commit(Lsn(200));
  t.Ack(a);
  EXPECT_EQ(t.Confirmable(), Lsn(100));
  t.Fail(b, Status::Unavailable("broker said no"));
  t.Ack(b);  // a late report for a failed record must not confirm it
  t.Commit(Lsn(300));
  t.Idle(Lsn(400));
  EXPECT_EQ(t.Confirmable(), Lsn(100));
  ASSERT_TRUE(t.failure().has_value());
  EXPECT_EQ(t.failure()->message(), "broker said no");
}

TEST(AckTracker, RestartForgetsInFlightRecordsAndTheFailure) {
  AckTracker t;
  uint64_t a = t.Assign();
  t.Commit(Lsn(100));
  uint64_t b = t.Assign();
  t.Commit(Lsn(200));
  t.Ack(a);
  t.Fail(b, Status::Unavailable("x"));
  t.Restart();
  EXPECT_FALSE(t.failure().has_value());
  EXPECT_EQ(t.InFlight(), 0u);
  EXPECT_EQ(t.Confirmable(), Lsn(100));
  t.Ack(b);  // late report of a forgotten record
  EXPECT_EQ(t.Confirmable(), Lsn(100));
  uint64_t c = t.Assign();  // the replay
  t.Commit(Lsn(200));
  t.Ack(c);
  EXPECT_EQ(t.Confirmable(), Lsn(200));
}

TEST(AckTracker, IgnoresUnknownAndRepeatedAcks) {
  AckTracker t;
  uint64_t a = t.Assign();
  t.Ack(a + 5);
  t.Commit(Lsn(9));
  EXPECT_EQ(t.Confirmable(), Lsn(0));
  t.Ack(a);
  t.Ack(a);
  EXPECT_EQ(t.Confirmable(), Lsn(9));
  EXPECT_EQ(t.InFlight(), 0u);
}

// Random delivery order: the confirmable position is always the highest boundary whose
// records are all acknowledged, and never moves backwards.
TEST(AckTracker, RandomOrderMatchesAReferenceModel) {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    AckTracker t;
    std::vector<std::pair<uint64_t, uint64_t>> boundaries;  // end_seq, lsn
    std::vector<uint64_t> seqs;
    uint64_t lsn = 0;
    for (int tx = 0; tx < 30; ++tx) {
      int n = static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) seqs.push_back(t.Assign());
      lsn += 1 + rng() % 10;
      t.Commit(Lsn(lsn));
      boundaries.emplace_back(seqs.size(), lsn);
    }
    std::vector<uint64_t> order = seqs;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<bool> acked(seqs.size(), false);
    Lsn last(0);
    for (uint64_t s : order) {
      t.Ack(s);
      acked[s] = true;
      uint64_t prefix = 0;
      while (prefix < acked.size() && acked[prefix]) ++prefix;
      uint64_t expect = 0;
      for (auto [end, l] : boundaries) {
        if (end <= prefix) expect = l;
      }
      ASSERT_EQ(t.Confirmable(), Lsn(expect));
      ASSERT_GE(t.Confirmable(), last);
      last = t.Confirmable();
    }
    EXPECT_EQ(t.Confirmable(), Lsn(lsn));
  }
}

}  // namespace
}  // namespace splitstream::pipeline

// The sink's batching and commit rules with fake Kafka handles and a fake writer.
#include <gtest/gtest.h>

#include <simdjson.h>
#include <fstream>
#include <sstream>

#include "sink_fakes.h"
#include "splitstream/pipeline/sink.h"

namespace splitstream::pipeline::testing {
namespace {

using std::chrono::milliseconds;

const TopicPartition kP0{"p.public.events", 0};
const TopicPartition kP1{"p.public.events", 1};

class SinkLoopTest : public ::testing::Test {
 protected:
  void Start(SinkOptions opts = {}) {
    if (opts.dlq_topic.empty() && !no_dlq_) opts.dlq_topic = "p.dlq";
    opts.lag_interval = milliseconds(0);
    auto sink = Sink::Create(
        opts, &target_,
        [this](kafka::PartitionsCallback a,
               kafka::PartitionsCallback r) -> Result<std::unique_ptr<kafka::Consumer>> {
          auto c = std::make_unique<FakeConsumer>(&clock_, std::move(a), std::move(r));
          consumer_ = c.get();
          return std::unique_ptr<kafka::Consumer>(std::move(c));
        },
        [this](kafka::Producer::DeliveryCallback cb) -> Result<std::unique_ptr<kafka::Producer>> {
          auto p = std::make_unique<FakeProducer>(std::move(cb));
          producer_ = p.get();
          return std::unique_ptr<kafka::Producer>(std::move(p));
        },
        &clock_);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = std::move(*sink);
    consumer_->Assign({kP0, kP1});
  }

  void Feed(const TopicPartition& tp, int64_t offset, std::optional<std::string> value,
            std::optional<std::string> key = "{\"id\":1}") {
    consumer_->Feed(Message::Make(tp.topic, tp.partition, offset, key, value, 1700000000000));
  }
  void FeedInsert(const TopicPartition& tp, int64_t offset, int64_t id) {
    Feed(tp, offset, DebeziumInsert("events", id, 1000 + offset));
  }
  void Step() {
    Status st = sink_->RunOnce();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  FakeClock clock_{1'700'000'000'000'000};
  FakeWriter writer_;
  ChangeTarget target_{&writer_};
  FakeConsumer* consumer_ = nullptr;
  FakeProducer* producer_ = nullptr;
  std::unique_ptr<Sink> sink_;
  bool no_dlq_ = false;
};

TEST_F(SinkLoopTest, ZeroBatchSizesAndIntervalsAreRefusedBeforeAnythingStarts) {
  bool consumer_made = false;
  auto create = [&](SinkOptions opts) {
    return Sink::Create(
               opts, &target_,
               [&](kafka::PartitionsCallback a,
                   kafka::PartitionsCallback r) -> Result<std::unique_ptr<kafka::Consumer>> {
                 consumer_made = true;
                 return std::unique_ptr<kafka::Consumer>(
                     std::make_unique<FakeConsumer>(&clock_, std::move(a), std::move(r)));
               },
               nullptr, &clock_)
        .status();
  };
  SinkOptions bad;
  bad.batch_rows = 0;
  EXPECT_EQ(create(bad).code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.batch_bytes = 0;
  EXPECT_EQ(create(bad).code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.max_batch_rows = 0;
  EXPECT_EQ(create(bad).code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.flush_interval = milliseconds(0);
  EXPECT_EQ(create(bad).code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.catch_up_flush_interval = milliseconds(-1);
  EXPECT_EQ(create(bad).code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.shutdown_timeout = milliseconds(0);
  EXPECT_EQ(create(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(consumer_made);
  EXPECT_TRUE(create(SinkOptions{}).ok());
  EXPECT_TRUE(consumer_made);
}

TEST_F(SinkLoopTest, CommitsNextOffsetPerPartitionOnlyAfterTheBatchIsFlushed) {
  SinkOptions opts;
  opts.batch_rows = 3;
  Start(opts);
  FeedInsert(kP0, 10, 1);
  FeedInsert(kP1, 4, 2);
  opts.poll_max_messages = 2;
  Step();
  EXPECT_EQ(writer_.flush_calls, 0);
  EXPECT_TRUE(consumer_->commits.empty()) << "nothing is committed before a flush";
  EXPECT_EQ(writer_.buffered.size(), 2u);

  FeedInsert(kP0, 11, 3);
  Step();
  ASSERT_EQ(writer_.flushed.size(), 3u);
  ASSERT_EQ(consumer_->commits.size(), 1u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 12}, {kP1, 5}}));
  EXPECT_EQ(writer_.flushed[0].lsn, Lsn(1010));
  EXPECT_EQ(sink_->Metrics().rows_by_table.at("events"), 3u);
}

TEST_F(SinkLoopTest, FlushesAfterTheIntervalAndAtTheByteLimit) {
  SinkOptions opts;
  opts.flush_interval = milliseconds(1000);
  opts.batch_bytes = 1000;  // the fake writer counts 100 bytes a row
  Start(opts);
  FeedInsert(kP0, 0, 1);
  Step();
  EXPECT_TRUE(consumer_->commits.empty());
  clock_.Advance(milliseconds(999));
  Step();  // the poll times out: the fake clock moves by the poll timeout
  ASSERT_EQ(consumer_->commits.size(), 1u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 1}}));

  for (int i = 1; i <= 10; ++i) FeedInsert(kP1, i, i);
  Step();
  ASSERT_EQ(consumer_->commits.size(), 2u) << "10 rows x 100 bytes reach batch_bytes";
  EXPECT_EQ(consumer_->commits[1], (Offsets{{kP1, 11}}));
}

TEST_F(SinkLoopTest, AFailingFlushCommitsNothingPausesAndRetriesWithBackoff) {
  SinkOptions opts;
  opts.batch_rows = 1;
  opts.initial_backoff = milliseconds(100);
  opts.max_backoff = milliseconds(400);
  opts.poll_timeout = milliseconds(1000);
  Start(opts);
  writer_.flush_status = Status::Unavailable("clickhouse down");
  FeedInsert(kP0, 0, 1);
  Step();
  EXPECT_EQ(writer_.flush_calls, 1);
  EXPECT_TRUE(consumer_->commits.empty());
  EXPECT_EQ(consumer_->paused(), (std::set<TopicPartition>{kP0, kP1}));
  EXPECT_TRUE(sink_->Metrics().paused);

  // Paused partitions deliver nothing; retries come at 100, 200, 400, 400 ms.
  FeedInsert(kP0, 1, 2);
  std::vector<int64_t> retry_gaps;
  auto last = clock_.Now();
  for (int i = 0; i < 4; ++i) {
    int calls = writer_.flush_calls;
    while (writer_.flush_calls == calls) Step();
    retry_gaps.push_back(std::chrono::duration_cast<milliseconds>(clock_.Now() - last).count());
    last = clock_.Now();
  }
  EXPECT_EQ(retry_gaps, (std::vector<int64_t>{100, 200, 400, 400}));
  EXPECT_TRUE(consumer_->commits.empty());
  EXPECT_EQ(writer_.buffered_rows(), 1u) << "the paused partition's next message was not fetched";
  EXPECT_EQ(sink_->Metrics().flush_failures, 5u);

  writer_.flush_status = Status::Ok();
  while (consumer_->commits.empty()) Step();
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 1}}));
  EXPECT_TRUE(consumer_->paused().empty()) << "resumed after the successful flush";
  EXPECT_FALSE(sink_->Metrics().paused);
  Step();  // the resumed partition's message arrives and is flushed
  ASSERT_EQ(consumer_->commits.size(), 2u);
  EXPECT_EQ(consumer_->commits[1], (Offsets{{kP0, 2}}));
  EXPECT_EQ(writer_.flushed.size(), 2u);
}

TEST_F(SinkLoopTest, ABatchGrowsPastBatchRowsOnlyWhileTheWriteBeforeItRuns) {
  SinkOptions opts;
  opts.batch_rows = 2;
  opts.max_batch_rows = 5;
  Start(opts);
  writer_.hold = true;  // writes stay in flight until released
  FeedInsert(kP0, 0, 1);
  FeedInsert(kP0, 1, 2);
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{2}));
  for (int64_t offset = 2; offset < 8; ++offset) FeedInsert(kP0, offset, offset + 1);
  Step();
  Step();
  EXPECT_EQ(writer_.buffered.size(), 5u) << "the next batch grows to max_batch_rows, no further";
  EXPECT_EQ(writer_.begin_calls, 1) << "one write at a time";
  EXPECT_TRUE(consumer_->commits.empty()) << "nothing is committed before its write ended";

  writer_.hold = false;
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{2, 5}));
  ASSERT_EQ(consumer_->commits.size(), 2u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 2}}));
  EXPECT_EQ(consumer_->commits[1], (Offsets{{kP0, 7}}));
  EXPECT_EQ(writer_.buffered.size(), 1u) << "the eighth row waits for the next batch";
  EXPECT_EQ(writer_.flushed.size(), 7u);
}

TEST_F(SinkLoopTest, WithNoWriteInFlightABatchStartsAtBatchRows) {
  SinkOptions opts;
  opts.batch_rows = 3;
  opts.poll_max_messages = 100;
  Start(opts);
  writer_.hold = true;
  for (int64_t offset = 0; offset < 7; ++offset) FeedInsert(kP1, offset, offset);
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3})) << "not all seven rows";
  EXPECT_EQ(writer_.buffered.size(), 4u);
  writer_.hold = false;
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3, 4}));
  ASSERT_EQ(consumer_->commits.size(), 2u);
  EXPECT_EQ(consumer_->commits[1], (Offsets{{kP1, 7}}));
}

TEST_F(SinkLoopTest, WhileCatchingUpBatchesDoubleThenShrinkWithWhatWaitsBehindThem) {
  SinkOptions opts;
  opts.batch_rows = 2;
  opts.max_batch_rows = 100;
  Start(opts);
  consumer_->knows_watermarks = true;
  for (int64_t offset = 0; offset < 40; ++offset) FeedInsert(kP0, offset, offset + 1);
  Step();
  // 2, 4, 8 (twice the one before); then each batch is due once it holds as many rows as wait
  // behind it: 13 (13 behind), 7 (6), 3 (3), 2 (1); the last row goes out as soon as nothing
  // waits behind it, not after the flush interval.
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{2, 4, 8, 13, 7, 3, 2, 1}));
  ASSERT_EQ(consumer_->commits.size(), 8u);
  EXPECT_EQ(consumer_->commits.back(), (Offsets{{kP0, 40}}));
  EXPECT_EQ(writer_.buffered.size(), 0u);

  // Caught up: one row at a time waits for batch_rows again.
  FeedInsert(kP0, 40, 41);
  Step();
  EXPECT_EQ(writer_.batches.size(), 8u);
  FeedInsert(kP0, 41, 42);
  Step();
  EXPECT_EQ(writer_.batches.back(), 2u);
  EXPECT_EQ(consumer_->commits.back(), (Offsets{{kP0, 42}}));
}

TEST_F(SinkLoopTest, ACatchUpBatchGrowsToMaxBatchRowsWithTheBacklogStillInKafka) {
  SinkOptions opts;
  opts.batch_rows = 3;
  opts.max_batch_rows = 8;
  opts.poll_max_messages = 2;  // the rest of the backlog is in Kafka (Consumer::CachedLag)
  Start(opts);
  consumer_->knows_watermarks = true;
  for (int64_t offset = 0; offset < 100; ++offset) FeedInsert(kP0, offset, offset + 1);
  for (int i = 0; i < 20; ++i) Step();
  ASSERT_GE(writer_.batches.size(), 4u);
  EXPECT_EQ(std::vector<size_t>(writer_.batches.begin(), writer_.batches.begin() + 4),
            (std::vector<size_t>{3, 6, 8, 8}))
      << "twice the batch before, up to max_batch_rows";
  EXPECT_EQ(consumer_->commits[3], (Offsets{{kP0, 25}}));
}

TEST_F(SinkLoopTest, WithoutABacklogABatchIsDueAtBatchRowsAsBefore) {
  SinkOptions opts;
  opts.batch_rows = 3;
  opts.max_batch_rows = 100;
  Start(opts);
  consumer_->knows_watermarks = true;
  // Traffic that the sink keeps up with: two messages at a time, nothing waiting behind them.
  for (int64_t offset = 0; offset < 8; offset += 2) {
    FeedInsert(kP0, offset, offset + 1);
    FeedInsert(kP0, offset + 1, offset + 2);
    Step();
  }
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3, 3}));
  // A burst of three: when the batch reaches batch_rows, two messages wait behind it, fewer
  // than batch_rows.
  for (int64_t offset = 8; offset < 11; ++offset) FeedInsert(kP1, offset, offset + 1);
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3, 3, 3}));
  EXPECT_EQ(writer_.buffered.size(), 2u);
}

TEST_F(SinkLoopTest, ACatchUpBatchIsDueByAgeAtTheCatchUpFlushInterval) {
  SinkOptions opts;
  opts.batch_rows = 3;
  opts.max_batch_rows = 1000;
  opts.flush_interval = milliseconds(1000);
  opts.catch_up_flush_interval = milliseconds(3000);
  opts.poll_max_messages = 2;
  Start(opts);
  consumer_->knows_watermarks = true;
  consumer_->unreturnable_lag = 100;  // far behind all along: catching up
  for (int64_t offset = 0; offset < 8; ++offset) FeedInsert(kP0, offset, offset + 1);
  for (int i = 0; i < 4; ++i) Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3}));
  ASSERT_EQ(writer_.buffered.size(), 5u) << "below twice the batch before it";
  clock_.Advance(milliseconds(1500));
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3})) << "not due at flush_interval...";
  clock_.Advance(milliseconds(1500));
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3, 5})) << "... but at catch_up_flush_interval";
  ASSERT_EQ(consumer_->commits.size(), 2u);
  EXPECT_EQ(consumer_->commits[1], (Offsets{{kP0, 8}}));
}

TEST_F(SinkLoopTest, ALagThatNeverDrainsDelaysASmallCatchUpBatchOnlyToTheFlushInterval) {
  SinkOptions opts;
  opts.batch_rows = 3;
  opts.max_batch_rows = 100;
  opts.flush_interval = milliseconds(1000);
  opts.poll_timeout = milliseconds(100);
  Start(opts);
  consumer_->knows_watermarks = true;
  consumer_->unreturnable_lag = 5;  // the lag says 5 more, Poll never returns them
  for (int64_t offset = 0; offset < 10; ++offset) FeedInsert(kP0, offset, offset + 1);
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3, 6})) << "catching up: 3, then twice that";
  ASSERT_EQ(writer_.buffered.size(), 1u);
  Step();
  EXPECT_EQ(writer_.batches.size(), 2u) << "the last row waits for what the lag promises...";
  clock_.Advance(milliseconds(1000));
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3, 6, 1})) << "... up to the flush interval";
  EXPECT_EQ(consumer_->commits.back(), (Offsets{{kP0, 10}}));

  // Then the sink behaves as without a backlog: due at batch_rows.
  for (int64_t offset = 10; offset < 13; ++offset) FeedInsert(kP0, offset, offset + 1);
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{3, 6, 1, 3}));
  EXPECT_EQ(consumer_->commits.back(), (Offsets{{kP0, 13}}));
}

TEST_F(SinkLoopTest, ACatchUpBatchCommitsOnlyAfterItsWriteAndIsRetriedWhenItFails) {
  SinkOptions opts;
  opts.batch_rows = 2;
  opts.max_batch_rows = 4;
  opts.poll_max_messages = 100;
  opts.initial_backoff = milliseconds(100);
  Start(opts);
  consumer_->knows_watermarks = true;
  writer_.hold = true;
  for (int64_t offset = 0; offset < 10; ++offset) FeedInsert(kP0, offset, offset + 1);
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{2}));
  Step();
  EXPECT_EQ(writer_.buffered.size(), 4u) << "the next batch fills to the cap during the write";
  EXPECT_TRUE(consumer_->commits.empty());
  writer_.flush_status = Status::Unavailable("clickhouse down");
  writer_.hold = false;
  Step();
  EXPECT_TRUE(consumer_->commits.empty()) << "nothing committed after a failed write";
  EXPECT_EQ(consumer_->paused(), (std::set<TopicPartition>{kP0, kP1}));
  writer_.flush_status = Status::Ok();
  while (consumer_->commits.empty()) Step();
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 10}})) << "retried with everything polled";
  EXPECT_EQ(writer_.flushed.size(), 10u);
  EXPECT_TRUE(consumer_->paused().empty());
}

TEST_F(SinkLoopTest, ABatchDueByTimeDuringAWriteStartsWhenTheWriteEnds) {
  SinkOptions opts;
  opts.batch_rows = 100;
  opts.flush_interval = milliseconds(1000);
  Start(opts);
  writer_.hold = true;
  FeedInsert(kP0, 0, 1);
  Step();
  clock_.Advance(milliseconds(1000));
  Step();
  EXPECT_EQ(writer_.begin_calls, 1);
  FeedInsert(kP0, 1, 2);
  Step();
  clock_.Advance(milliseconds(1000));
  Step();
  EXPECT_EQ(writer_.begin_calls, 1) << "due, but the first write still runs";
  writer_.hold = false;
  Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{1, 1}));
  ASSERT_EQ(consumer_->commits.size(), 2u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 1}}));
  EXPECT_EQ(consumer_->commits[1], (Offsets{{kP0, 2}}));
}

TEST_F(SinkLoopTest, AFailedWriteIsRetriedWithTheBatchThatFilledMeanwhile) {
  SinkOptions opts;
  opts.batch_rows = 2;
  opts.initial_backoff = milliseconds(100);
  Start(opts);
  writer_.hold = true;
  FeedInsert(kP0, 0, 1);
  FeedInsert(kP0, 1, 2);
  Step();
  FeedInsert(kP0, 2, 3);
  FeedInsert(kP1, 0, 4);
  Step();
  writer_.flush_status = Status::Unavailable("clickhouse down");
  writer_.hold = false;
  Step();
  EXPECT_TRUE(consumer_->commits.empty());
  EXPECT_TRUE(sink_->Metrics().paused);
  EXPECT_EQ(writer_.begin_calls, 1) << "no new write before the backoff";
  writer_.flush_status = Status::Ok();
  while (consumer_->commits.empty()) Step();
  EXPECT_EQ(writer_.batches, (std::vector<size_t>{2, 4})) << "the failed rows, then the newer";
  ASSERT_EQ(consumer_->commits.size(), 1u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 3}, {kP1, 1}}));
  EXPECT_FALSE(sink_->Metrics().paused);
  EXPECT_EQ(writer_.flushed.size(), 4u);
}

TEST_F(SinkLoopTest, RevocationCommitsTheWriteInFlightThenFlushesTheRest) {
  SinkOptions opts;
  opts.batch_rows = 2;
  Start(opts);
  writer_.hold = true;
  FeedInsert(kP0, 0, 1);
  FeedInsert(kP1, 0, 2);
  Step();
  FeedInsert(kP1, 1, 3);
  Step();
  writer_.hold = false;  // the write ends while the revocation waits for it
  consumer_->Revoke({kP1});
  ASSERT_EQ(consumer_->commits.size(), 2u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 1}, {kP1, 1}}));
  EXPECT_EQ(consumer_->commits[1], (Offsets{{kP1, 2}}));
  EXPECT_EQ(writer_.flushed.size(), 3u);
}

TEST_F(SinkLoopTest, PoisonGoesToTheDeadLetterTopicAndIsCommittedAfterItsAck) {
  SinkOptions opts;
  opts.batch_rows = 2;
  Start(opts);
  Feed(kP0, 5, "not json at all", "k1");
  FeedInsert(kP0, 6, 1);
  Step();
  ASSERT_EQ(producer_->produced.size(), 1u);
  const Produced& p = producer_->produced[0];
  EXPECT_EQ(p.topic, "p.dlq");
  EXPECT_EQ(p.key, "k1");
  EXPECT_EQ(p.value, "not json at all");
  std::map<std::string, std::string> headers;
  for (auto& h : p.headers) headers[h.key] = h.value;
  EXPECT_EQ(headers["source.topic"], "p.public.events");
  EXPECT_EQ(headers["source.partition"], "0");
  EXPECT_EQ(headers["source.offset"], "5");
  EXPECT_NE(headers["error"].find("decode"), std::string::npos) << headers["error"];
  EXPECT_EQ(sink_->Metrics().dlq_messages, 1u);
  // The valid row filled no batch alone (batch_rows 2): one more row flushes.
  EXPECT_TRUE(consumer_->commits.empty());
  producer_->hold = true;  // the DLQ produce is not acknowledged yet
  FeedInsert(kP0, 7, 2);
  Step();
  EXPECT_TRUE(consumer_->commits.empty()) << "committed before the DLQ acknowledged";
  EXPECT_EQ(writer_.flushed.size(), 0u);
  producer_->hold = false;
  while (consumer_->commits.empty()) Step();
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 8}}));
  EXPECT_EQ(writer_.flushed.size(), 2u);
}

TEST_F(SinkLoopTest, AFailedDeadLetterDeliveryIsProducedAgainBeforeCommitting) {
  SinkOptions opts;
  opts.batch_rows = 1;
  Start(opts);
  producer_->deliver_status = Status::Unavailable("broker down");
  writer_.add_status = Status::Ok();
  Feed(kP1, 0, "{\"source\":{\"connector\":\"postgresql\"}}");  // decodes to an error
  Feed(kP1, 1, DebeziumInsert("unmappable", 1, 5));             // the writer rejects it
  Step();
  clock_.Advance(milliseconds(1000));  // no rows: the batch is due by time
  Step();
  EXPECT_TRUE(consumer_->commits.empty());
  EXPECT_TRUE(sink_->Metrics().paused);
  EXPECT_EQ(producer_->produced.size(), 4u) << "failed deliveries are produced again";
  producer_->deliver_status = Status::Ok();
  while (consumer_->commits.empty()) Step();
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP1, 2}}));
  std::set<std::string> offsets;
  for (auto& p : producer_->produced) {
    for (auto& h : p.headers) {
      if (h.key == "source.offset") offsets.insert(h.value);
      if (h.key == "error" && p.value->find("unmappable") != std::string::npos) {
        EXPECT_EQ(h.value, "no such table");
      }
    }
  }
  EXPECT_EQ(offsets, (std::set<std::string>{"0", "1"}));
  EXPECT_EQ(sink_->Metrics().dlq_messages, 2u);
}

TEST_F(SinkLoopTest, WithoutADeadLetterTopicPoisonStopsTheSink) {
  no_dlq_ = true;
  Start();
  Feed(kP0, 0, "garbage");
  Status st = sink_->RunOnce();
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
}

TEST_F(SinkLoopTest, TombstonesAndResolvedMessagesWriteNothingButAreCommitted) {
  SinkOptions opts;
  opts.flush_interval = milliseconds(10);
  Start(opts);
  Feed(kP0, 3, std::nullopt);                                                      // tombstone
  Feed(kP1, 9, R"({"resolved":"1701102561022789676.0000000000"})", std::nullopt);  // changefeed
  Step();
  clock_.Advance(milliseconds(10));
  Step();
  EXPECT_TRUE(writer_.flushed.empty());
  EXPECT_TRUE(producer_->produced.empty());
  ASSERT_EQ(consumer_->commits.size(), 1u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 4}, {kP1, 10}}));
}

TEST_F(SinkLoopTest, AnUnavailableAddIsRetriedInOrder) {
  SinkOptions opts;
  opts.batch_rows = 2;
  Start(opts);
  writer_.add_status = Status::Unavailable("ALTER TABLE failed: clickhouse down");
  FeedInsert(kP0, 0, 1);
  FeedInsert(kP0, 1, 2);
  Step();
  EXPECT_TRUE(writer_.buffered.empty());
  EXPECT_TRUE(sink_->Metrics().paused);
  writer_.add_status = Status::Ok();
  while (consumer_->commits.empty()) Step();
  ASSERT_EQ(writer_.flushed.size(), 2u);
  EXPECT_EQ(writer_.flushed[0].lsn, Lsn(1000));
  EXPECT_EQ(writer_.flushed[1].lsn, Lsn(1001));
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 2}}));
}

TEST_F(SinkLoopTest, RevocationFlushesAndCommitsFirst) {
  Start();
  FeedInsert(kP0, 0, 1);
  FeedInsert(kP1, 0, 2);
  Step();
  EXPECT_TRUE(consumer_->commits.empty());
  consumer_->Revoke({kP1});
  ASSERT_EQ(consumer_->commits.size(), 1u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 1}, {kP1, 1}}));
  EXPECT_EQ(writer_.flushed.size(), 2u);
}

TEST_F(SinkLoopTest, RevocationWhileTheTargetIsDownDropsOnlyTheRevokedOffsets) {
  SinkOptions opts;
  opts.batch_rows = 2;
  Start(opts);
  writer_.flush_status = Status::Unavailable("down");
  FeedInsert(kP0, 0, 1);
  FeedInsert(kP1, 0, 2);
  Step();
  consumer_->Revoke({kP1});
  EXPECT_TRUE(consumer_->commits.empty());
  writer_.flush_status = Status::Ok();
  while (consumer_->commits.empty()) Step();
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 1}})) << "kP1 belongs to another member now";
}

TEST_F(SinkLoopTest, RunFlushesCommitsAndClosesOnStop) {
  Start();
  FeedInsert(kP0, 0, 1);
  Step();
  std::atomic<bool> stop{true};
  Status st = sink_->Run(stop);
  EXPECT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(consumer_->commits.size(), 1u);
  EXPECT_EQ(consumer_->commits[0], (Offsets{{kP0, 1}}));
  EXPECT_TRUE(consumer_->closed);
}

TEST_F(SinkLoopTest, ShutdownGivesUpAfterItsTimeoutWithoutCommitting) {
  SinkOptions opts;
  opts.shutdown_timeout = milliseconds(2000);
  Start(opts);
  writer_.flush_status = Status::Unavailable("down");
  FeedInsert(kP0, 0, 1);
  Step();
  Status st = sink_->Shutdown();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(consumer_->commits.empty());
  EXPECT_TRUE(consumer_->closed);
}

// Kafka unreachable while stopping: the rows are written, but neither the commits nor the
// close get an answer. The consumer's waits are capped so that the whole stop keeps to
// shutdown_timeout (uncapped, the commits and the close alone would take 10 s each).
TEST_F(SinkLoopTest, ShutdownKeepsToItsTimeoutWhileTheCoordinatorDoesNotAnswer) {
  SinkOptions opts;
  opts.shutdown_timeout = milliseconds(12000);
  Start(opts);
  FeedInsert(kP0, 0, 1);
  Step();
  consumer_->coordinator_down = true;
  const auto start = clock_.Now();
  Status st = sink_->Shutdown();
  const auto took = clock_.Now() - start;
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_EQ(writer_.written["events"], 1u);  // written, only the commit is missing
  EXPECT_TRUE(consumer_->commits.empty());
  EXPECT_TRUE(consumer_->closed);
  EXPECT_LE(took, milliseconds(12000));
  EXPECT_GE(took, milliseconds(9000));  // the flush's share was used for retries
  ASSERT_TRUE(consumer_->wait_cap.has_value());
  EXPECT_EQ(*consumer_->wait_cap, milliseconds(3000));  // the close's share: a quarter
}

TEST_F(SinkLoopTest, ResetPolicyIsHandedToTheConsumer) {
  SinkOptions opts;
  opts.reset = kafka::ResetPolicy::kTimestamp;
  opts.reset_timestamp_ms = 1234;
  Start(opts);
  EXPECT_EQ(consumer_->reset, kafka::ResetPolicy::kTimestamp);
  EXPECT_EQ(consumer_->reset_ts, 1234);
}

// CockroachDB changefeed fixtures decode into rows handed to the writer.
TEST_F(SinkLoopTest, ChangefeedFixturesBecomeRows) {
  SinkOptions opts;
  opts.batch_rows = 1000;
  opts.flush_interval = milliseconds(1);
  Start(opts);
  int64_t offset = 0;
  int rows = 0;
  for (const char* name : {"insert_wrapped", "updated", "diff", "delete_wrapped", "resolved"}) {
    std::ifstream in(std::string(DEBEZIUM_TESTDATA_DIR) + "/changefeed/" + name + ".json");
    std::stringstream ss;
    ss << in.rdbuf();
    simdjson::dom::parser parser;
    simdjson::padded_string text(ss.str());
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << name;
    std::string_view topic, value, kind;
    ASSERT_EQ(doc["topic"].get(topic), simdjson::SUCCESS);
    ASSERT_EQ(doc["value"].get(value), simdjson::SUCCESS);
    ASSERT_EQ(doc["expect"]["kind"].get(kind), simdjson::SUCCESS);
    std::optional<std::string> key;
    std::string_view k;
    if (doc["key"].get(k) == simdjson::SUCCESS) key = std::string(k);
    consumer_->Feed(Message::Make(std::string(topic), 0, offset++, key, std::string(value)));
    if (kind == "row") ++rows;
  }
  Step();
  clock_.Advance(milliseconds(5));
  Step();
  EXPECT_TRUE(producer_->produced.empty());
  EXPECT_EQ(static_cast<int>(writer_.flushed.size()), rows);
  for (auto& c : writer_.flushed) {
    EXPECT_EQ(c.format, debezium::SourceFormat::kChangefeed);
    EXPECT_FALSE(c.table.empty());
  }
}

// The Kafka hop, live: each polled record's age is its timestamp to the poll, on the wall clock.
TEST_F(SinkLoopTest, RecordAgeIsTheKafkaTimestampToThePoll) {
  Start();
  const int64_t now_ms = clock_.WallMicros() / 1000;
  consumer_->Feed(
      Message::Make(kP0.topic, 0, 0, "{\"id\":1}", DebeziumInsert("events", 1, 1000), now_ms - 4));
  consumer_->Feed(
      Message::Make(kP0.topic, 0, 1, "{\"id\":2}", DebeziumInsert("events", 2, 1001), now_ms - 40));
  consumer_->Feed(Message::Make(kP0.topic, 0, 2, "{\"id\":3}", DebeziumInsert("events", 3, 1002),
                                -1));  // no timestamp: not counted
  Step();
  const Histogram& age = sink_->Metrics().record_age;
  auto bucket_of = [&](double seconds) {
    return std::lower_bound(age.bounds.begin(), age.bounds.end(), seconds) - age.bounds.begin();
  };
  uint64_t total = 0;
  for (uint64_t c : age.counts) total += c;
  EXPECT_EQ(total, 2u);
  EXPECT_EQ(age.counts[bucket_of(0.004)], 1u);
  EXPECT_EQ(age.counts[bucket_of(0.040)], 1u);
  EXPECT_DOUBLE_EQ(age.sum, 0.044);
}

TEST(SinkMetrics, PrometheusText) {
  SinkMetrics m;
  m.rows_by_table = {{"events", 7}};
  m.dlq_messages = 2;
  m.lag = {{{"p.public.events", 3}, 1, 1, 10, 9}};
  m.flush_latency.Add(0.005);   // the bucket le=0.005 includes its bound
  m.flush_latency.Add(11.995);  // above the last bound: only +Inf
  m.record_age.Add(0.004);
  std::string text = RenderPrometheus(m, "splitstream_sink");
  for (const char* line :
       {"splitstream_sink_rows_total{table=\"events\"} 7\n",
        "splitstream_sink_dlq_messages_total 2\n",
        "splitstream_sink_consumer_lag{topic=\"p.public.events\",partition=\"3\"} 9\n",
        "splitstream_sink_flush_seconds_bucket{le=\"0.005\"} 1\n",
        "splitstream_sink_flush_seconds_bucket{le=\"10\"} 1\n",
        "splitstream_sink_flush_seconds_bucket{le=\"+Inf\"} 2\n",
        "splitstream_sink_flush_seconds_sum 12\n", "splitstream_sink_flush_seconds_count 2\n",
        "splitstream_sink_record_age_seconds_bucket{le=\"0.003\"} 0\n",
        "splitstream_sink_record_age_seconds_bucket{le=\"0.005\"} 1\n",
        "splitstream_sink_record_age_seconds_bucket{le=\"+Inf\"} 1\n",
        "splitstream_sink_record_age_seconds_count 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace
}  // namespace splitstream::pipeline::testing

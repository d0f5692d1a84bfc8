// KafkaEmitter + AckTracker against librdkafka's in-process mock cluster with per-request
// produce errors: retriable errors still confirm everything; a non-retriable one stops the
// confirmed position before the failed record; a replay after Restart() confirms again.
#include "splitstream/pipeline/kafka_emitter.h"

#include <gtest/gtest.h>

#include "splitstream/kafka/mock_cluster.h"

namespace splitstream::pipeline {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kTextOid = 25;

class KafkaEmitterMockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = kafka::MockCluster::Create(1);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(*cluster);
    ASSERT_TRUE(cluster_->CreateTopic("mock.public.items", 1).ok());
    table_.id = 1;
    table_.oid = 16384;
    table_.schema.schema = "public";
    table_.schema.table = "items";
    table_.schema.columns = {{"id", kInt8Oid, -1, true}, {"name", kTextOid, -1, false}};
    KafkaEmitterOptions opts;
    opts.brokers = cluster_->bootstraps();
    opts.encoder.server_name = "mock";
    opts.encoder.database = "db";
    opts.linger_ms = 0;
    auto emitter = KafkaEmitter::Create(opts, &tracker_, &clock_);
    ASSERT_TRUE(emitter.ok()) << emitter.status().ToString();
    emitter_ = std::move(*emitter);
  }

  // One insert in its own transaction ending at `lsn`.
  void Insert(int id, uint64_t lsn) {
    std::string id_text = std::to_string(id);
    debezium::Datum row[] = {{debezium::DatumKind::kText, id_text},
                             {debezium::DatumKind::kText, "item"}};
    RowChange change;
    change.table = &table_;
    change.op = debezium::Op::kCreate;
    change.after = row;
    change.source = debezium::SourceInfo{1000000, "false", Lsn(0), Lsn(lsn - 8), 700};
    ASSERT_TRUE(emitter_->Emit(change).ok());
    tracker_.Commit(Lsn(lsn));
  }

  std::unique_ptr<kafka::MockCluster> cluster_;
  FakeClock clock_{1'700'000'000'000'000};
  AckTracker tracker_;
  TableInfo table_;
  std::unique_ptr<KafkaEmitter> emitter_;
};

TEST_F(KafkaEmitterMockTest, RetriableProduceErrorsStillConfirmEverything) {
  Insert(1, 100);
  ASSERT_TRUE(emitter_->Flush(10s).ok());
  EXPECT_EQ(tracker_.Confirmable(), Lsn(100));
  cluster_->PushProduceErrors({6, 7, 6});  // NOT_LEADER, REQUEST_TIMED_OUT, NOT_LEADER
  for (int i = 2; i <= 20; ++i) Insert(i, 100 * i);
  ASSERT_TRUE(emitter_->Flush(30s).ok());
  EXPECT_FALSE(tracker_.failure().has_value()) << tracker_.failure()->ToString();
  EXPECT_EQ(tracker_.InFlight(), 0u);
  EXPECT_EQ(tracker_.Confirmable(), Lsn(2000));
}

TEST_F(KafkaEmitterMockTest, ANonRetriableErrorStopsTheConfirmedPositionUntilReplay) {
  Insert(1, 100);
  ASSERT_TRUE(emitter_->Flush(10s).ok());
  ASSERT_EQ(tracker_.Confirmable(), Lsn(100));
  cluster_->PushProduceErrors({10});  // MESSAGE_TOO_LARGE: not retriable
  Insert(2, 200);
  (void)emitter_->Flush(10s);
  Insert(3, 300);  // delivered, but after the failed one
  ASSERT_TRUE(emitter_->Flush(10s).ok());
  ASSERT_TRUE(tracker_.failure().has_value());
  EXPECT_EQ(tracker_.Confirmable(), Lsn(100)) << "confirmed past an undelivered change";
  EXPECT_FALSE(emitter_->Fatal().has_value());
  // The CDC engine replays from the confirmed position after Restart().
  tracker_.Restart();
  Insert(2, 200);
  Insert(3, 300);
  ASSERT_TRUE(emitter_->Flush(10s).ok());
  EXPECT_FALSE(tracker_.failure().has_value());
  EXPECT_EQ(tracker_.Confirmable(), Lsn(300));
}

}  // namespace
}  // namespace splitstream::pipeline

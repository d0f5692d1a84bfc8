// Against a real Kafka broker: SPLITSTREAM_KAFKA_BROKERS (scripts/stack env) must name it.
// Every test uses topics and groups unique to its process, so runs never see each other.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "reports.h"
#include "splitstream/kafka/kafka.h"

namespace splitstream::kafka {
namespace {

using namespace std::chrono_literals;

std::string Brokers() {
  const char* b = std::getenv("SPLITSTREAM_KAFKA_BROKERS");
  return b ? b : "";
}

// A name prefix unique to this process and moment.
std::string Unique(std::string_view what) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return "kt" + std::to_string(getpid()) + "_" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) + "_" +
         std::string(what);
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using testing::Reports;

class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Brokers().empty())
        << "SPLITSTREAM_KAFKA_BROKERS is not set (run under scripts/test or scripts/stack env)";
  }

  std::unique_ptr<Consumer> NewConsumer(const std::string& group,
                                        std::vector<std::string> subscriptions,
                                        std::string auto_offset_reset = "earliest") {
    ConsumerOptions options;
    options.brokers = Brokers();
    options.group_id = group;
    options.subscriptions = std::move(subscriptions);
    options.auto_offset_reset = std::move(auto_offset_reset);
    auto consumer = Consumer::Create(options);
    EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
    return consumer.ok() ? std::move(consumer).value() : nullptr;
  }

  // A new topic of `partitions` partitions named Unique(what); empty (and the test failed)
  // when it could not be created.
  std::string NewTopic(std::string_view what, int partitions) {
    std::string topic = Unique(what);
    const std::vector<std::string> topics = {topic};
    Status created = CreateTopics(Brokers(), topics, partitions, 1, 10s);
    EXPECT_TRUE(created.ok()) << created.ToString();
    return created.ok() ? topic : std::string();
  }

  // A producer on the test brokers whose delivery reports go to `reports`.
  std::unique_ptr<Producer> NewProducer(Reports& reports) {
    ProducerOptions options;
    options.brokers = Brokers();
    auto producer = Producer::Create(options, reports.Callback());
    EXPECT_TRUE(producer.ok()) << producer.status().ToString();
    return producer.ok() ? std::move(producer).value() : nullptr;
  }

  // Produces messages from..to-1 to `topic`, each with its number as key and value, and
  // waits until all are acknowledged.
  static void ProduceNumbered(Producer& producer, const std::string& topic, int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string key = std::to_string(i);
      ASSERT_TRUE(producer.Produce(topic, key, key, static_cast<uint64_t>(i)).ok());
    }
    ASSERT_TRUE(producer.Flush(30s).ok());
  }

  // Polls until `count` messages arrived or 30 s passed, then for `settle` more to catch
  // anything unexpected.
  static std::vector<Message> PollN(Consumer& consumer, size_t count,
                                    std::chrono::milliseconds settle = 500ms) {
    std::vector<Message> out;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
      auto batch = consumer.Poll(1000, 200ms);
      EXPECT_TRUE(batch.ok()) << batch.status().ToString();
      if (!batch.ok()) return out;
      for (Message& m : *batch) out.push_back(std::move(m));
    }
    auto extra = consumer.Poll(1000, settle);
    if (extra.ok()) {
      for (Message& m : *extra) out.push_back(std::move(m));
    }
    return out;
  }
};

TEST_F(KafkaTest, CreateAndListTopics) {
  const std::vector<std::string> topics = {Unique("admin.a"), Unique("admin.b")};
  ASSERT_TRUE(CreateTopics(Brokers(), topics, 2, 1, 10s).ok());
  // Existing topics are fine.
  Status again = CreateTopics(Brokers(), topics, 2, 1, 10s);
  EXPECT_TRUE(again.ok()) << again.ToString();
  // The broker's metadata can trail the controller's answer by a moment (seen once in CI:
  // both topics missing from a listing right after the creation returned).
  auto listed = ListTopics(Brokers(), 10s);
  auto has_all = [&] {
    for (const std::string& t : topics) {
      if (!std::binary_search(listed->begin(), listed->end(), t)) return false;
    }
    return true;
  };
  for (int i = 0; i < 100 && listed.ok() && !has_all(); ++i) {
    std::this_thread::sleep_for(100ms);
    listed = ListTopics(Brokers(), 10s);
  }
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(std::is_sorted(listed->begin(), listed->end()));
  for (const std::string& t : topics) {
    EXPECT_TRUE(std::binary_search(listed->begin(), listed->end(), t)) << t;
  }
  const std::vector<std::string> bad = {"no spaces allowed"};
  EXPECT_EQ(CreateTopics(Brokers(), bad, 1, 1, 10s).code(), StatusCode::kInvalidArgument);
  const std::vector<std::string> too_replicated = {Unique("admin.rf")};
  EXPECT_FALSE(CreateTopics(Brokers(), too_replicated, 1, 3, 10s).ok());  // one broker only
  EXPECT_EQ(ListTopics("127.0.0.1:1", 1s).status().code(), StatusCode::kUnavailable);
}

TEST_F(KafkaTest, ProduceConsumeByRegexCommitAndResumeAfterRestart) {
  const std::string prefix = Unique("cdc");
  const std::vector<std::string> topics = {prefix + ".public.events", prefix + ".public.users"};
  ASSERT_TRUE(CreateTopics(Brokers(), topics, 3, 1, 10s).ok());

  Reports reports;
  auto producer = NewProducer(reports);
  ASSERT_NE(producer, nullptr);
  constexpr int kFirst = 300;
  const std::vector<Header> headers = {{"source", "splitstream"}, {"lsn", "0/16B3748"}};
  // Message i: key {"id":i} on topic i%2; every seventh a tombstone.
  auto produce = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      std::string key = "{\"id\":" + std::to_string(i) + "}";
      std::string value = "{\"op\":\"c\",\"n\":" + std::to_string(i) + "}";
      std::optional<std::string_view> v;
      if (i % 7 != 6) v = value;
      Status st;
      do {
        st = producer->Produce(topics[i % 2], key, v, static_cast<uint64_t>(i), headers);
        if (st.code() == StatusCode::kUnavailable) std::this_thread::sleep_for(1ms);
      } while (st.code() == StatusCode::kUnavailable);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
  };
  produce(0, kFirst);
  ASSERT_TRUE(producer->Flush(30s).ok());
  std::vector<DeliveryReport> got = reports.Get();
  ASSERT_EQ(got.size(), static_cast<size_t>(kFirst));
  for (const DeliveryReport& r : got) ASSERT_TRUE(r.status.ok()) << r.status.ToString();

  const std::string group = Unique("group");
  const std::string regex = "^" + prefix + "\\.public\\..*";
  auto consumer = NewConsumer(group, {regex});
  ASSERT_NE(consumer, nullptr);
  std::vector<Message> first = PollN(*consumer, kFirst);
  ASSERT_EQ(first.size(), static_cast<size_t>(kFirst));  // no loss, no duplicate
  std::set<int> seen;
  for (const Message& m : first) {
    ASSERT_TRUE(m.key().has_value());
    int id = std::stoi(std::string(m.key()->substr(6)));
    EXPECT_TRUE(seen.insert(id).second) << "duplicate " << id;
    EXPECT_EQ(m.topic(), topics[id % 2]);
    if (id % 7 == 6) {
      EXPECT_FALSE(m.value().has_value()) << id;
    } else {
      ASSERT_TRUE(m.value().has_value());
      EXPECT_EQ(*m.value(), "{\"op\":\"c\",\"n\":" + std::to_string(id) + "}");
    }
    EXPECT_EQ(m.headers(), headers);
    EXPECT_GT(m.timestamp_ms(), NowMs() - 600'000);
  }
  std::vector<TopicPartition> assignment = consumer->Assignment();
  EXPECT_EQ(assignment.size(), 6u);  // 2 topics x 3 partitions, one member

  // Nothing committed yet: lag is everything retained.
  auto lag = consumer->Lag(10s);
  ASSERT_TRUE(lag.ok()) << lag.status().ToString();
  int64_t total_lag = 0;
  for (const PartitionLag& l : *lag) {
    EXPECT_EQ(l.committed, -1);
    EXPECT_EQ(l.position, l.high_watermark);
    total_lag += l.lag;
  }
  EXPECT_EQ(total_lag, kFirst);

  // Commit the first half of every partition's messages.
  std::map<TopicPartition, std::vector<int64_t>> offsets;
  for (const Message& m : first) offsets[m.topic_partition()].push_back(m.offset());
  std::vector<std::pair<TopicPartition, int64_t>> commits;
  int64_t committed_count = 0;
  for (auto& [tp, offs] : offsets) {
    std::sort(offs.begin(), offs.end());
    int64_t half = static_cast<int64_t>(offs.size() / 2);
    commits.push_back({tp, offs[half]});  // next offset to read
    committed_count += half;
  }
  ASSERT_TRUE(consumer->Commit(commits).ok());
  lag = consumer->Lag(10s);
  ASSERT_TRUE(lag.ok());
  total_lag = 0;
  for (const PartitionLag& l : *lag) {
    EXPECT_GE(l.committed, 0);
    EXPECT_EQ(l.lag, l.high_watermark - l.committed);
    total_lag += l.lag;
  }
  EXPECT_EQ(total_lag, kFirst - committed_count);
  ASSERT_TRUE(consumer->Close().ok());
  consumer.reset();

  // New messages while no member runs, then a restarted member resumes after the commits.
  constexpr int kSecond = 100;
  produce(kFirst, kFirst + kSecond);
  ASSERT_TRUE(producer->Flush(30s).ok());
  auto restarted = NewConsumer(group, {regex});
  ASSERT_NE(restarted, nullptr);
  const size_t expect = static_cast<size_t>(kFirst - committed_count + kSecond);
  std::vector<Message> second = PollN(*restarted, expect);
  ASSERT_EQ(second.size(), expect);
  std::map<TopicPartition, int64_t> first_offset;
  for (const Message& m : second) {
    auto [it, inserted] = first_offset.try_emplace(m.topic_partition(), m.offset());
    if (!inserted) it->second = std::min(it->second, m.offset());
  }
  for (const auto& [tp, next] : commits) EXPECT_EQ(first_offset[tp], next) << tp.topic;
  ASSERT_TRUE(restarted->Close().ok());
}

// A new group starts where auto.offset.reset says: the consumer looks up the committed
// offsets when partitions are assigned and starts a partition without one at the beginning
// (earliest, the default: ProduceConsumeByRegexCommitAndResumeAfterRestart) or at the end.
TEST_F(KafkaTest, ANewGroupWithAutoOffsetResetLatestReadsOnlyWhatComesAfterItJoined) {
  const std::string topic = NewTopic("latest", 2);
  ASSERT_FALSE(topic.empty());
  Reports reports;
  auto producer = NewProducer(reports);
  ASSERT_NE(producer, nullptr);
  ProduceNumbered(*producer, topic, 0, 20);

  auto consumer = NewConsumer(Unique("group"), {topic}, "latest");
  ASSERT_NE(consumer, nullptr);
  // Joined, and the end offsets looked up, before anything new is produced.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (consumer->Assignment().size() < 2 && std::chrono::steady_clock::now() < deadline) {
    auto none = consumer->Poll(100, 100ms);
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_TRUE(none->empty());
  }
  ASSERT_EQ(consumer->Assignment().size(), 2u);
  auto none = consumer->Poll(100, 1s);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  ProduceNumbered(*producer, topic, 20, 30);
  std::vector<Message> got = PollN(*consumer, 10);
  std::set<std::string> keys;
  for (const Message& m : got) keys.insert(std::string(m.key().value_or("")));
  std::set<std::string> want;
  for (int i = 20; i < 30; ++i) want.insert(std::to_string(i));
  EXPECT_EQ(got.size(), 10u);
  EXPECT_EQ(keys, want);
  ASSERT_TRUE(consumer->Close().ok());
}

// The partitions of a new group start at concrete offsets, looked up together: one
// ListOffsets request for all of them (not two per partition), and no logical BEGINNING for
// librdkafka to resolve when the fetch starts (libs/kafka README, "Start offsets").
TEST_F(KafkaTest, ANewGroupStartsEveryPartitionAtAConcreteOffsetFromOneLookup) {
  const std::string topic = NewTopic("concrete", 4);
  ASSERT_FALSE(topic.empty());
  Reports reports;
  auto producer = NewProducer(reports);
  ASSERT_NE(producer, nullptr);
  constexpr int kMessages = 40;
  ProduceNumbered(*producer, topic, 0, kMessages);

  size_t got = 0;
  std::string text;
  {
    testing::CapturedLog captured;
    ConsumerOptions options;
    options.brokers = Brokers();
    options.group_id = Unique("group");
    options.subscriptions = {topic};
    options.overrides = {{"debug", "protocol,fetch,consumer"}};
    auto consumer = Consumer::Create(options);
    ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
    got = PollN(**consumer, kMessages).size();
    ASSERT_TRUE((*consumer)->Close().ok());
    text = captured.Text();
  }
  EXPECT_EQ(got, static_cast<size_t>(kMessages));
  size_t list_offsets = 0;
  for (size_t at = text.find("Sent ListOffsetsRequest"); at != std::string::npos;
       at = text.find("Sent ListOffsetsRequest", at + 1)) {
    ++list_offsets;
  }
  EXPECT_EQ(list_offsets, 1u) << text;
  // librdkafka's line: "Partition <topic> [<p>] start fetching at offset <offset>".
  const std::string marker = "] start fetching at offset ";
  std::set<std::string> started;
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
    const size_t open = text.rfind('[', at);
    const std::string partition = text.substr(open + 1, at - open - 1);
    const size_t from = at + marker.size();
    const std::string offset = text.substr(from, text.find_first_of(" \n", from) - from);
    EXPECT_EQ(offset, "0") << "partition " << partition;
    started.insert(partition);
  }
  EXPECT_EQ(started, (std::set<std::string>{"0", "1", "2", "3"})) << text;
}

TEST_F(KafkaTest, ResetOnAssignRewindsToEarliestOrToATimestamp) {
  const std::string topic = NewTopic("reset", 1);
  ASSERT_FALSE(topic.empty());
  const std::vector<std::string> topics = {topic};
  Reports reports;
  auto producer = NewProducer(reports);
  ASSERT_NE(producer, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(producer->Produce(topic, "k", "old", i).ok());
  ASSERT_TRUE(producer->Flush(10s).ok());
  std::this_thread::sleep_for(50ms);
  const int64_t cut = NowMs();
  std::this_thread::sleep_for(50ms);
  for (int i = 10; i < 20; ++i) ASSERT_TRUE(producer->Produce(topic, "k", "new", i).ok());
  ASSERT_TRUE(producer->Flush(10s).ok());

  const std::string group = Unique("resetgroup");
  {
    auto c = NewConsumer(group, topics);
    ASSERT_NE(c, nullptr);
    std::vector<Message> all = PollN(*c, 20);
    ASSERT_EQ(all.size(), 20u);
    std::vector<std::pair<TopicPartition, int64_t>> commit = {{{topic, 0}, 20}};
    ASSERT_TRUE(c->Commit(commit).ok());
    ASSERT_TRUE(c->Close().ok());
  }
  {
    // Without a reset the group resumes at its commit: nothing to read.
    auto c = NewConsumer(group, topics);
    std::vector<Message> none;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (c->Assignment().empty() && std::chrono::steady_clock::now() < deadline) {
      auto batch = c->Poll(10, 100ms);
      ASSERT_TRUE(batch.ok());
      for (Message& m : *batch) none.push_back(std::move(m));
    }
    ASSERT_EQ(c->Assignment().size(), 1u);
    auto batch = c->Poll(10, 1s);
    ASSERT_TRUE(batch.ok());
    EXPECT_TRUE(none.empty() && batch->empty());
    ASSERT_TRUE(c->Close().ok());
  }
  {
    auto c = NewConsumer(group, topics);
    c->SetResetOnAssign(ResetPolicy::kEarliest);
    std::vector<Message> again = PollN(*c, 20);
    ASSERT_EQ(again.size(), 20u);
    EXPECT_EQ(again.front().offset(), 0);
    ASSERT_TRUE(c->Close().ok());
  }
  {
    auto c = NewConsumer(group, topics);
    c->SetResetOnAssign(ResetPolicy::kTimestamp, cut);
    std::vector<Message> recent = PollN(*c, 10);
    ASSERT_EQ(recent.size(), 10u);
    EXPECT_EQ(recent.front().offset(), 10);
    for (const Message& m : recent) EXPECT_EQ(m.value(), "new");
    ASSERT_TRUE(c->Close().ok());
  }
  {
    // Reset on a member that already has its partitions: it seeks.
    auto c = NewConsumer(group, topics);
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (c->Assignment().empty() && std::chrono::steady_clock::now() < deadline) {
      ASSERT_TRUE(c->Poll(10, 100ms).ok());
    }
    ASSERT_EQ(c->Assignment().size(), 1u);
    c->SetResetOnAssign(ResetPolicy::kTimestamp, cut);
    std::vector<Message> recent = PollN(*c, 10);
    ASSERT_EQ(recent.size(), 10u);
    EXPECT_EQ(recent.front().offset(), 10);
    ASSERT_TRUE(c->Close().ok());
  }
}

TEST_F(KafkaTest, CooperativeRebalancingSplitsPartitionsBetweenMembers) {
  const std::string topic = NewTopic("coop", 4);
  ASSERT_FALSE(topic.empty());
  const std::vector<std::string> topics = {topic};
  ConsumerOptions options;
  options.brokers = Brokers();
  options.group_id = Unique("coopgroup");
  options.subscriptions = topics;
  options.overrides["partition.assignment.strategy"] = "cooperative-sticky";
  auto a = Consumer::Create(options);
  ASSERT_TRUE(a.ok());
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((*a)->Assignment().size() < 4 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE((*a)->Poll(10, 100ms).ok());
  }
  ASSERT_EQ((*a)->Assignment().size(), 4u);
  auto b = Consumer::Create(options);
  ASSERT_TRUE(b.ok());
  deadline = std::chrono::steady_clock::now() + 60s;
  while (((*a)->Assignment().size() != 2 || (*b)->Assignment().size() != 2) &&
         std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE((*a)->Poll(10, 50ms).ok());
    ASSERT_TRUE((*b)->Poll(10, 50ms).ok());
  }
  EXPECT_EQ((*a)->Assignment().size(), 2u);
  EXPECT_EQ((*b)->Assignment().size(), 2u);
  ASSERT_TRUE((*b)->Close().ok());
  ASSERT_TRUE((*a)->Close().ok());
}

}  // namespace
}  // namespace splitstream::kafka

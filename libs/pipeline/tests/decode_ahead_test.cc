// ChangeTarget with decode-ahead (src/decode_ahead.h): what the sink's Drain does (announce,
// Add in order, settle) gives the same rows and errors, in the same order, as decoding each
// message on Add; announced messages are not read after SettlePrepared (ASan would report it).
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <vector>

#include "decode_ahead.h"
#include "sink_fakes.h"
#include "splitstream/pipeline/sink.h"

namespace splitstream::pipeline::testing {
namespace {

// Every 7th message is malformed JSON, every 11th a tombstone, the rest inserts.
std::deque<Message> Messages(int n, int64_t first_offset = 0) {
  std::deque<Message> out;
  for (int i = 0; i < n; ++i) {
    const int64_t offset = first_offset + i;
    std::optional<std::string> value = DebeziumInsert("events", offset, 1000 + offset);
    if (i % 7 == 3) value = "{\"op\":";
    if (i % 11 == 5) value.reset();
    out.push_back(Message::Make("p.public.events", i % 3, offset, "{\"id\":1}", value));
  }
  return out;
}

std::vector<const Message*> Pointers(const std::deque<Message>& ms, size_t from, size_t to) {
  std::vector<const Message*> out;
  for (size_t i = from; i < to && i < ms.size(); ++i) out.push_back(&ms[i]);
  return out;
}

struct Outcome {
  std::vector<std::string> statuses;
  std::vector<Lsn> rows;
};

// Adds every message in order, announcing `ahead` at a time as the sink's Drain does (0: no
// announcements), settling every `settle_every` messages.
Outcome AddAll(bool decode_ahead, const std::deque<Message>& ms, size_t ahead,
               size_t settle_every) {
  FakeWriter writer;
  ChangeTarget target(&writer, decode_ahead);
  Outcome out;
  size_t announced = 0;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (ahead > 0 && announced < ahead) {
      auto next = Pointers(ms, i + announced, i + announced + ahead);
      announced += target.Prepare(next);
    }
    out.statuses.push_back(target.Add(ms[i]).ToString());
    if (announced > 0) --announced;
    if (settle_every > 0 && i % settle_every == settle_every - 1) target.SettlePrepared();
  }
  target.SettlePrepared();
  for (const auto& c : writer.buffered) out.rows.push_back(c.lsn);
  return out;
}

TEST(DecodeAheadTest, GivesTheRowsAndErrorsOfDecodingOnAdd) {
  const std::deque<Message> ms = Messages(5000);
  const Outcome want = AddAll(false, ms, 0, 0);
  ASSERT_EQ(want.statuses.size(), 5000u);
  ASSERT_GT(want.rows.size(), 3000u);
  int errors = 0;
  for (const auto& s : want.statuses) errors += s.find("decode: ") != std::string::npos;
  ASSERT_GT(errors, 500) << "the poison messages are rejected";
  for (size_t ahead : {1u, 31u, 512u, 4096u}) {
    for (size_t settle : {0u, 1u, 100u}) {
      const Outcome got = AddAll(true, ms, ahead, settle);
      EXPECT_EQ(got.statuses, want.statuses) << "ahead " << ahead << ", settle " << settle;
      EXPECT_EQ(got.rows, want.rows) << "ahead " << ahead << ", settle " << settle;
    }
  }
}

TEST(DecodeAheadTest, TakesNoMoreThanItsCapacity) {
  const std::deque<Message> ms = Messages(DecodeAhead::kCapacity + 10);
  FakeWriter writer;
  ChangeTarget target(&writer);
  auto all = Pointers(ms, 0, ms.size());
  EXPECT_EQ(target.Prepare(all), DecodeAhead::kCapacity);
  EXPECT_EQ(target.Prepare(all), 0u) << "the ring is full until messages are added";
  ASSERT_TRUE(target.Add(ms[0]).ok());
  EXPECT_EQ(target.Prepare(std::span(all).subspan(DecodeAhead::kCapacity)), 1u);
  target.SettlePrepared();
  for (size_t i = 1; i <= DecodeAhead::kCapacity; ++i) (void)target.Add(ms[i]);
  std::deque<Message> first = Messages(DecodeAhead::kCapacity + 1);
  EXPECT_EQ(writer.buffered.size(), AddAll(false, first, 0, 0).rows.size());
}

TEST(DecodeAheadTest, SettledMessagesAreNotReadAgainAndAnotherMessageDiscardsThePrepared) {
  FakeWriter writer;
  ChangeTarget target(&writer);
  auto ms = std::make_unique<std::deque<Message>>(Messages(300));
  ASSERT_EQ(target.Prepare(Pointers(*ms, 0, 300)), 300u);
  target.SettlePrepared();
  // The sink may now drop its messages (a revocation): the prepared results own their data.
  std::deque<Message> again = Messages(300);
  ms.reset();
  ASSERT_TRUE(target.Add(again[0]).ok());
  ASSERT_EQ(writer.buffered.size(), 1u);
  EXPECT_EQ(writer.buffered[0].lsn, Lsn(1000));
  // Messages 1..99 were dropped: message 100 is not the next announced one.
  ASSERT_TRUE(target.Add(again[100]).ok());
  ASSERT_EQ(writer.buffered.size(), 2u);
  EXPECT_EQ(writer.buffered[1].lsn, Lsn(1100));
  // Nothing announced is left: message 1 is decoded on Add.
  ASSERT_TRUE(target.Add(again[1]).ok());
  EXPECT_EQ(writer.buffered[2].lsn, Lsn(1001));
}

TEST(DecodeAheadTest, AMessageTheWriterCannotTakeYetIsOfferedAgain) {
  FakeWriter writer;
  ChangeTarget target(&writer);
  const std::deque<Message> ms = Messages(3);
  ASSERT_EQ(target.Prepare(Pointers(ms, 0, 3)), 3u);
  writer.add_status = Status::Unavailable("schema change needs ClickHouse");
  EXPECT_EQ(target.Add(ms[0]).code(), StatusCode::kUnavailable);
  target.SettlePrepared();
  writer.add_status = Status::Ok();
  ASSERT_TRUE(target.Add(ms[0]).ok());
  ASSERT_TRUE(target.Add(ms[1]).ok());
  ASSERT_EQ(writer.buffered.size(), 2u);
  EXPECT_EQ(writer.buffered[0].lsn, Lsn(1000));
  EXPECT_EQ(writer.buffered[1].lsn, Lsn(1001));
}

}  // namespace
}  // namespace splitstream::pipeline::testing

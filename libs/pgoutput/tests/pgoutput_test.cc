#include "splitstream/pgoutput/pgoutput.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "golden.h"

// Defined in libs/assignment/tests/allocation_counter.cc, which replaces operator new.
long AllocationCount();

namespace splitstream::pgoutput {
namespace {

using testing::GoldenFile;
using testing::HexDecode;
using testing::ReadGoldenFile;
using testing::Render;

const GoldenFile& Golden() {
  static const GoldenFile file =
      ReadGoldenFile(std::string(SPLITSTREAM_PGOUTPUT_TESTDATA) + "/pgoutput_v1.test");
  return file;
}

// A heap copy of exactly `bytes`, so that AddressSanitizer reports a read past its end.
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view bytes)
      : data_(new char[bytes.size() == 0 ? 1 : bytes.size()]), size_(bytes.size()) {
    if (size_ > 0) std::memcpy(data_.get(), bytes.data(), size_);
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

// Only for inputs that must fail: views into the buffer die with it.
Status DecodeExact(std::string_view bytes, Message* out) {
  ExactBuffer buffer(bytes);
  return Decode(buffer.view(), out);
}

TEST(GoldenTest, FileCoversEveryMessageType) {
  std::string types;
  for (const auto& s : Golden().scenarios) {
    for (const auto& m : s.messages) types += m.bytes[0];
  }
  for (char c : std::string("BCORYIUDTM")) {
    EXPECT_NE(types.find(c), std::string::npos) << "no golden message of type " << c;
  }
  EXPECT_GE(Golden().scenarios.size(), 12u);
}

TEST(GoldenTest, MessagesDecodeToTheCapturedFields) {
  Message message;
  int count = 0;
  for (const auto& scenario : Golden().scenarios) {
    for (const auto& golden : scenario.messages) {
      SCOPED_TRACE(scenario.name + " line " + std::to_string(golden.line));
      ExactBuffer buffer(golden.bytes);  // outlives the views in `message`
      Status st = Decode(buffer.view(), &message);
      ASSERT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(Render(message), golden.expect);
      ++count;
    }
  }
  EXPECT_EQ(count, 55);
}

// Begin and Commit of one transaction agree with each other and with the capture's clock.
TEST(GoldenTest, TransactionsAreConsistent) {
  const int64_t captured = Golden().captured_unix_us;
  int transactions = 0;
  for (const auto& scenario : Golden().scenarios) {
    SCOPED_TRACE(scenario.name);
    Message first, last;
    ASSERT_TRUE(Decode(scenario.messages.front().bytes, &first).ok());
    ASSERT_TRUE(Decode(scenario.messages.back().bytes, &last).ok());
    if (!std::holds_alternative<Begin>(first)) continue;  // a non-transactional message
    ++transactions;
    const auto& begin = std::get<Begin>(first);
    ASSERT_TRUE(std::holds_alternative<Commit>(last));
    const auto& commit = std::get<Commit>(last);
    EXPECT_EQ(begin.final_lsn, commit.commit_lsn);
    EXPECT_LT(commit.commit_lsn, commit.end_lsn);
    EXPECT_EQ(begin.commit_time_us, commit.commit_time_us);
    // Committed during the capture, which started at `captured` and took under a minute.
    EXPECT_GT(begin.commit_time_us, captured);
    EXPECT_LT(begin.commit_time_us, captured + 60'000'000);
  }
  EXPECT_EQ(transactions, 11);
}

TEST(GoldenTest, EveryPrefixIsAnError) {
  Message message;
  for (const auto& scenario : Golden().scenarios) {
    for (const auto& golden : scenario.messages) {
      for (size_t len = 0; len < golden.bytes.size(); ++len) {
        Status st = DecodeExact(std::string_view(golden.bytes).substr(0, len), &message);
        ASSERT_FALSE(st.ok()) << scenario.name << " line " << golden.line << " prefix " << len;
        ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
      }
    }
  }
}

TEST(GoldenTest, TrailingBytesAreAnError) {
  Message message;
  for (const auto& scenario : Golden().scenarios) {
    for (const auto& golden : scenario.messages) {
      ExactBuffer buffer(golden.bytes + '\0');
      Status st = Decode(buffer.view(), &message);
      EXPECT_FALSE(st.ok()) << scenario.name << " line " << golden.line;
      EXPECT_NE(st.message().find("1 trailing bytes"), std::string::npos) << st.message();
    }
  }
}

std::string GoldenOfType(char type) {
  for (const auto& s : Golden().scenarios) {
    for (const auto& m : s.messages) {
      if (m.bytes[0] == type) return m.bytes;
    }
  }
  return {};
}

TEST(DecodeTest, ErrorsNameTheMessageTypeAndOffset) {
  Message message;
  // 'I', relation oid (4), 'N', then only the first byte of the column count.
  Status st = Decode(GoldenOfType('I').substr(0, 7), &message);
  EXPECT_EQ(st.message(), "pgoutput Insert message truncated at byte 6 (column count)");
  st = Decode(GoldenOfType('B').substr(0, 5), &message);
  EXPECT_EQ(st.message(), "pgoutput Begin message truncated at byte 1 (final_lsn)");
  st = Decode(std::string("U\0\0\0\1X", 6), &message);
  EXPECT_EQ(st.message(), "pgoutput Update message malformed at byte 5: expected tuple tag 'N'");
  st = Decode(std::string("D\0\0\0\1N\0\0", 8), &message);
  EXPECT_EQ(st.message(),
            "pgoutput Delete message malformed at byte 5: expected tuple tag 'K' or 'O'");
  st = Decode(std::string("I\0\0\0\1N\0\1x", 9), &message);
  EXPECT_EQ(st.message(), "pgoutput Insert message malformed at byte 8: unknown column kind 0x78");
  st = Decode(std::string("I\0\0\0\1N\0\1t\xff\xff\xff\xff", 13), &message);
  EXPECT_EQ(st.message(), "pgoutput Insert message malformed at byte 9: negative value length");
  st = Decode(std::string("I\0\0\0\1N\xff\xff", 8), &message);
  EXPECT_EQ(st.message(),
            "pgoutput Insert message malformed at byte 6: 65535 columns but 0 "
            "bytes left");
  st = Decode(std::string("T\x7f\xff\xff\xff\0", 6), &message);
  EXPECT_EQ(st.message(),
            "pgoutput Truncate message malformed at byte 1: 2147483647 relations but 0 bytes left");
  st = Decode("", &message);
  EXPECT_EQ(st.message(), "empty pgoutput message");
}

TEST(DecodeTest, RejectsUnknownAndLaterProtocolMessages) {
  Message message;
  Status st = Decode("Z", &message);
  EXPECT_EQ(st.message(), "unknown pgoutput message type 0x5a at byte 0");
  for (char type : std::string("SEcAbPKrp")) {
    st = Decode(std::string(1, type) + std::string(20, '\0'), &message);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("protocol version 2 or 3"), std::string::npos) << st.message();
  }
}

TEST(DecodeTest, BinaryValuesAndEmptyText) {
  // Insert into relation 7: a binary value 00 ff, an empty text and a null.
  const std::string bytes("I\0\0\0\7N\0\3b\0\0\0\2\0\xfft\0\0\0\0n", 21);
  Message message;
  ASSERT_TRUE(Decode(bytes, &message).ok());
  EXPECT_EQ(Render(message), "I rel=7 new=b:00ff|t:|n");
  const auto& insert = std::get<Insert>(message);
  EXPECT_EQ(insert.new_tuple[0].data.data(), bytes.data() + 13);  // a view, not a copy
}

TEST(DecodeTest, ValuesAreViewsIntoTheInput) {
  const std::string bytes = GoldenOfType('I');
  Message message;
  ASSERT_TRUE(Decode(bytes, &message).ok());
  for (const Value& v : std::get<Insert>(message).new_tuple) {
    if (v.kind != ValueKind::kText) continue;
    EXPECT_GE(v.data.data(), bytes.data());
    EXPECT_LE(v.data.data() + v.data.size(), bytes.data() + bytes.size());
  }
}

TEST(DecodeTest, WarmDecoderDoesNotAllocate) {
  // One golden transaction of each shape, decoded in a loop into one Message.
  std::vector<std::string> stream;
  for (const auto& s : Golden().scenarios) {
    for (const auto& m : s.messages) stream.push_back(m.bytes);
  }
  Message message;
  for (const auto& bytes : stream) ASSERT_TRUE(Decode(bytes, &message).ok());  // warm up
  const long before = AllocationCount();
  for (int round = 0; round < 3; ++round) {
    for (const auto& bytes : stream) {
      if (!Decode(bytes, &message).ok()) FAIL();
    }
  }
  EXPECT_EQ(AllocationCount() - before, 0);
}

TEST(DecodeTest, SameTypeReusesTheVector) {
  Message message;
  ASSERT_TRUE(Decode(GoldenOfType('I'), &message).ok());
  const Value* data = std::get<Insert>(message).new_tuple.data();
  ASSERT_TRUE(Decode(GoldenOfType('I'), &message).ok());
  EXPECT_EQ(std::get<Insert>(message).new_tuple.data(), data);
}

TEST(DecodeTest, MessageTypeNames) {
  Message message;
  std::string names;
  for (char c : std::string("BCORYIUDTM")) {
    ASSERT_TRUE(Decode(GoldenOfType(c), &message).ok());
    names += std::string(MessageTypeName(message)) + " ";
  }
  EXPECT_EQ(names, "Begin Commit Origin Relation Type Insert Update Delete Truncate Message ");
}

// ---------------------------------------------------------------------------------------------
// Relation cache.

Relation DecodeRelation(const std::string& bytes) {
  Message message;
  EXPECT_TRUE(Decode(bytes, &message).ok());
  return std::get<Relation>(message);
}

TEST(RelationCacheTest, KeepsOwnedCopiesAndVersions) {
  RelationCache cache;
  std::string bytes = GoldenOfType('R');
  const Relation relation = DecodeRelation(bytes);
  const RelationInfo& info = cache.Apply(relation);
  EXPECT_EQ(info.version, 1u);
  EXPECT_EQ(cache.Find(relation.oid), &info);
  EXPECT_EQ(cache.Find(relation.oid + 1), nullptr);

  // The same schema again (every new session re-sends it): same version.
  EXPECT_EQ(&cache.Apply(DecodeRelation(bytes)), &info);
  EXPECT_EQ(info.version, 1u);

  // A changed column type (ALTER TABLE): a new version, updated in place.
  std::string changed = bytes;
  const size_t type_at = changed.size() - 8;  // the last column's type oid
  changed[type_at + 3] = static_cast<char>(changed[type_at + 3] + 1);
  const Relation altered = DecodeRelation(changed);
  EXPECT_EQ(&cache.Apply(altered), &info);
  EXPECT_EQ(info.version, 2u);
  EXPECT_EQ(info.columns.back().type_oid, altered.columns.back().type_oid);

  // Owned: the cache outlives the bytes the message pointed into.
  const std::string name(relation.name);
  bytes.assign(bytes.size(), 'x');
  changed.assign(changed.size(), 'x');
  EXPECT_EQ(info.name, name);
  EXPECT_EQ(info.columns.size(), relation.columns.size());
  EXPECT_EQ(cache.size(), 1u);
}

TEST(RelationCacheTest, HoldsEveryGoldenRelation) {
  RelationCache cache;
  Message message;
  for (const auto& s : Golden().scenarios) {
    for (const auto& m : s.messages) {
      ASSERT_TRUE(Decode(m.bytes, &message).ok());
      if (auto* r = std::get_if<Relation>(&message)) {
        const RelationInfo& info = cache.Apply(*r);
        EXPECT_EQ(info.version, 1u) << info.name;  // the schema never changed in the capture
        EXPECT_EQ(info.ns, "public");
      }
      if (auto* i = std::get_if<Insert>(&message)) {
        const RelationInfo* info = cache.Find(i->relation_oid);
        ASSERT_NE(info, nullptr);
        EXPECT_EQ(info->columns.size(), i->new_tuple.size());
      }
    }
  }
  EXPECT_EQ(cache.size(), 3u);
}

// ---------------------------------------------------------------------------------------------
// Stream framing. Expected bytes are written out by hand from the protocol documentation.

TEST(StreamTest, DecodesXLogData) {
  const std::string copy_data = HexDecode(
                                    "77"                 // 'w'
                                    "0000001600000001"   // wal_start 16/1
                                    "0000001600000100"   // wal_end 16/100
                                    "0000000000000002")  // send time: 2 µs after 2000-01-01
                                + "Bpayload";
  auto result = DecodeStreamMessage(copy_data);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const auto& x = std::get<XLogData>(*result);
  EXPECT_EQ(LsnToString(x.wal_start), "16/1");
  EXPECT_EQ(LsnToString(x.wal_end), "16/100");
  EXPECT_EQ(x.send_time_us, 946684800000002);
  EXPECT_EQ(x.payload, "Bpayload");
  EXPECT_EQ(x.payload.data(), copy_data.data() + 25);
}

TEST(StreamTest, DecodesKeepalive) {
  auto result =
      DecodeStreamMessage(HexDecode("6b"
                                    "00000000ABCDEF01"
                                    "FFFFFFFFFFFFFFFF"  // -1 µs: 1999-12-31
                                    "01"));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const auto& k = std::get<Keepalive>(*result);
  EXPECT_EQ(LsnToString(k.wal_end), "0/ABCDEF01");
  EXPECT_EQ(k.send_time_us, 946684799999999);
  EXPECT_TRUE(k.reply_requested);
  result = DecodeStreamMessage(HexDecode("6b0000000000000001000000000000000000"));
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(std::get<Keepalive>(*result).reply_requested);
}

TEST(StreamTest, EveryPrefixOfTheHeadersIsAnError) {
  const std::string keepalive = HexDecode("6b00000000ABCDEF01000000000000000001");
  const std::string xlog = HexDecode("770000001600000001000000160000010000000000000002");
  for (const std::string& full : {keepalive, xlog}) {
    for (size_t len = 0; len < full.size(); ++len) {
      ExactBuffer buffer(std::string_view(full).substr(0, len));
      auto result = DecodeStreamMessage(buffer.view());
      EXPECT_FALSE(result.ok()) << len;
    }
  }
  ExactBuffer empty_payload(xlog + std::string(1, '\0'));
  auto result = DecodeStreamMessage(std::string_view(empty_payload.view()).substr(0, 25));
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(std::get<XLogData>(*result).payload.empty());
  EXPECT_EQ(DecodeStreamMessage(keepalive + "x").status().message(),
            "pgoutput Keepalive message malformed at byte 18: 1 trailing bytes");
  EXPECT_EQ(DecodeStreamMessage("r").status().message(),
            "unknown replication CopyData message type 0x72 at byte 0 (expected 'w' or 'k')");
}

TEST(StreamTest, EncodesStandbyStatusByteExact) {
  const std::string encoded = EncodeStandbyStatus(Lsn(0x16B374D848), Lsn(0x16B374D000), Lsn(0x1),
                                                  kPostgresEpochUnixUs + 258,
                                                  /*reply_requested=*/true);
  EXPECT_EQ(encoded.size(), kStandbyStatusSize);
  EXPECT_EQ(testing::HexEncode(encoded),
            "72"
            "00000016b374d848"
            "00000016b374d000"
            "0000000000000001"
            "0000000000000102"
            "01");
  EXPECT_EQ(testing::HexEncode(EncodeStandbyStatus(Lsn(0), Lsn(0), Lsn(0), 0, false)),
            "72" + std::string(48, '0') + "fffca2fec4c82000" + "00");  // -946684800 s in µs
}

TEST(StreamTest, TimestampConversionSaturates) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(PgTimestampToUnixUs(0), kPostgresEpochUnixUs);
  EXPECT_EQ(PgTimestampToUnixUs(max), max);
  EXPECT_EQ(PgTimestampToUnixUs(min), min + kPostgresEpochUnixUs);
  EXPECT_EQ(UnixUsToPgTimestamp(kPostgresEpochUnixUs), 0);
  EXPECT_EQ(UnixUsToPgTimestamp(min), min);
  EXPECT_EQ(UnixUsToPgTimestamp(max), max - kPostgresEpochUnixUs);
}

}  // namespace
}  // namespace splitstream::pgoutput

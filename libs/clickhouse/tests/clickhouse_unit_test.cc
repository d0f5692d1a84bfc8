// Pure parts of libs/clickhouse: RowBinary bytes (written, and read back in chunks), error
// bodies, quoting, TabSeparated.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "splitstream/clickhouse/client.h"

namespace splitstream::clickhouse {
namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out += static_cast<char>(b);
  return out;
}

// ---------------------------------------------------------------------------------------
// RowBinaryWriter

// RowBinaryReader and RowBinaryRows

// Rows of (UInt64 id, String name, Nullable(Float64) value) as a SELECT would return them.
struct Row {
  uint64_t id = 0;
  std::string name;
  std::optional<double> value;
  bool operator==(const Row&) const = default;
};

std::string Encode(const std::vector<Row>& rows) {
  RowBinaryWriter w;
  for (const Row& r : rows) {
    w.UInt64(r.id);
    w.String(r.name);
    w.NullMarker(!r.value);
    if (r.value) w.Float64(*r.value);
  }
  return w.buffer();
}

// Reads every value of a row before keeping it, as RowBinaryRows requires.
RowBinaryRows RowsInto(std::vector<Row>* out) {
  return RowBinaryRows([out](RowBinaryReader& r) {
    Row row;
    std::string_view name;
    bool is_null = false;
    if (!r.UInt64(&row.id) || !r.String(&name) || !r.NullMarker(&is_null)) return false;
    double v = 0;
    if (!is_null && !r.Float64(&v)) return false;
    row.name = std::string(name);
    if (!is_null) row.value = v;
    out->push_back(std::move(row));
    return true;
  });
}

std::vector<Row> SampleRows() {
  std::vector<Row> rows;
  for (uint64_t i = 0; i < 40; ++i) {
    // Names of 0 to 300 bytes: lengths of one and two varint bytes.
    rows.push_back({i * 1000003, std::string(i * 8 % 301, static_cast<char>('a' + i % 26)),
                    i % 3 == 0 ? std::nullopt : std::optional<double>(i * 0.5 - 7)});
  }
  return rows;
}

TEST(RowBinaryRowsTest, EveryCutBetweenTwoChunksGivesTheSameRows) {
  const std::vector<Row> rows = SampleRows();
  const std::string bytes = Encode(rows);
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    std::vector<Row> got;
    RowBinaryRows reader = RowsInto(&got);
    ASSERT_TRUE(reader.Feed(std::string_view(bytes).substr(0, cut)).ok()) << cut;
    ASSERT_TRUE(reader.Feed(std::string_view(bytes).substr(cut)).ok()) << cut;
    ASSERT_TRUE(reader.Finish().ok()) << cut;
    ASSERT_EQ(got, rows) << "cut at byte " << cut;
    EXPECT_EQ(reader.rows(), rows.size());
  }
}

TEST(RowBinaryRowsTest, OneByteAtATime) {
  const std::vector<Row> rows = SampleRows();
  const std::string bytes = Encode(rows);
  std::vector<Row> got;
  RowBinaryRows reader = RowsInto(&got);
  for (char c : bytes) ASSERT_TRUE(reader.Feed(std::string_view(&c, 1)).ok());
  ASSERT_TRUE(reader.Finish().ok());
  EXPECT_EQ(got, rows);
}

TEST(RowBinaryRowsTest, EveryPrefixEndsInsideARowOrAtItsEnd) {
  const std::vector<Row> rows = SampleRows();
  const std::string bytes = Encode(rows);
  std::vector<size_t> ends;  // byte offsets where rows end
  for (size_t i = 1; i <= rows.size(); ++i) {
    ends.push_back(Encode(std::vector<Row>(rows.begin(), rows.begin() + i)).size());
  }
  for (size_t n = 0; n <= bytes.size(); ++n) {
    std::vector<Row> got;
    RowBinaryRows reader = RowsInto(&got);
    ASSERT_TRUE(reader.Feed(std::string_view(bytes).substr(0, n)).ok());
    size_t complete = std::upper_bound(ends.begin(), ends.end(), n) - ends.begin();
    EXPECT_EQ(got.size(), complete) << n;
    Status finish = reader.Finish();
    bool at_row_end = n == 0 || (complete > 0 && ends[complete - 1] == n);
    EXPECT_EQ(finish.ok(), at_row_end) << n;
    if (!finish.ok()) {
      EXPECT_EQ(finish.code(), StatusCode::kInvalidArgument);
      EXPECT_NE(finish.message().find("ended inside row " + std::to_string(complete + 1)),
                std::string::npos)
          << finish.message();
    }
  }
}

TEST(RowBinaryRowsTest, MalformedBytesAreAnErrorNamingTheRow) {
  std::string bytes = Encode({{1, "a", 2.0}});
  bytes += Encode({{2, "b", std::nullopt}});
  bytes[bytes.size() - 1] = 7;  // the second row's NULL marker
  std::vector<Row> got;
  RowBinaryRows reader = RowsInto(&got);
  Status st = reader.Feed(bytes);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("row 2"), std::string::npos) << st.message();
  EXPECT_EQ(got.size(), 1u);

  std::string varint(11, '\x80');  // a length that never ends
  RowBinaryReader r(varint);
  uint64_t v = 0;
  EXPECT_FALSE(r.VarUInt(&v));
  EXPECT_TRUE(r.malformed());
  EXPECT_EQ(r.position(), 0u);
}

TEST(RowBinaryReaderTest, ReadsNeverPassTheEnd) {
  RowBinaryWriter w;
  w.Int64(-5);
  w.String("hello");
  const std::string bytes = w.buffer();
  for (size_t n = 0; n < bytes.size(); ++n) {
    RowBinaryReader r(std::string_view(bytes).substr(0, n));
    int64_t i = 0;
    std::string_view s;
    bool ok = r.Int64(&i) && r.String(&s);
    EXPECT_FALSE(ok) << n;
    EXPECT_FALSE(r.malformed()) << n;
    EXPECT_LE(r.position(), 8u) << n;  // the cut String is not consumed
  }
  RowBinaryReader r(bytes);
  int64_t i = 0;
  std::string_view s;
  ASSERT_TRUE(r.Int64(&i) && r.String(&s));
  EXPECT_EQ(i, -5);
  EXPECT_EQ(s, "hello");
  EXPECT_TRUE(r.at_end());
}

TEST(RowBinaryWriterTest, FixedWidthIntegersAreLittleEndian) {
  RowBinaryWriter w;
  w.UInt8(0xab);
  w.UInt16(0x0102);
  w.UInt32(0x01020304);
  w.UInt64(0x0102030405060708ull);
  EXPECT_EQ(w.buffer(), Bytes({0xab, 0x02, 0x01, 0x04, 0x03, 0x02, 0x01, 0x08, 0x07, 0x06, 0x05,
                               0x04, 0x03, 0x02, 0x01}));
  w.Clear();
  w.Int8(-1);
  w.Int16(-2);
  w.Int32(-3);
  w.Int64(std::numeric_limits<int64_t>::min());
  EXPECT_EQ(w.buffer(),
            Bytes({0xff, 0xfe, 0xff, 0xfd, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x80}));
}

TEST(RowBinaryWriterTest, FloatsAreIeee754) {
  RowBinaryWriter w;
  w.Float32(1.0f);
  w.Float64(-2.5);
  EXPECT_EQ(w.buffer(), Bytes({0, 0, 0x80, 0x3f, 0, 0, 0, 0, 0, 0, 0x04, 0xc0}));
  w.Clear();
  w.Float64(std::nan(""));
  EXPECT_EQ(w.size(), 8u);
}

TEST(RowBinaryWriterTest, StringsCarryAVarintLength) {
  RowBinaryWriter w;
  w.String("");
  w.String("ab");
  EXPECT_EQ(w.buffer(), Bytes({0, 2, 'a', 'b'}));
  w.Clear();
  std::string long_value(300, 'x');
  w.String(long_value);
  ASSERT_EQ(w.size(), 302u);
  EXPECT_EQ(w.buffer().substr(0, 2), Bytes({0xac, 0x02}));  // 300 = 0b10'0101100
  w.Clear();
  w.String(std::string_view("a\0b", 3));
  EXPECT_EQ(w.buffer(), Bytes({3, 'a', 0, 'b'}));
}

TEST(RowBinaryWriterTest, VarintBoundaries) {
  struct Case {
    uint64_t value;
    std::string bytes;
  };
  const Case cases[] = {
      {0, Bytes({0})},
      {127, Bytes({0x7f})},
      {128, Bytes({0x80, 0x01})},
      {16383, Bytes({0xff, 0x7f})},
      {16384, Bytes({0x80, 0x80, 0x01})},
      {std::numeric_limits<uint64_t>::max(),
       Bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})},
  };
  for (const Case& c : cases) {
    RowBinaryWriter w;
    w.ArraySize(c.value);
    EXPECT_EQ(w.buffer(), c.bytes) << c.value;
  }
}

TEST(RowBinaryWriterTest, DatesNullableArraysDecimalsUuid) {
  RowBinaryWriter w;
  w.Date(19000);           // 0x4A38
  w.DateTime(1700000000);  // 0x6553F100
  w.NullMarker(true);      // NULL: no value follows
  w.NullMarker(false);
  w.Int32(7);
  w.ArraySize(2);
  w.String("a");
  w.String("b");
  w.Decimal64(-12345);  // Decimal64(S) unscaled
  w.Uuid(0x0123456789abcdefull, 0xfedcba9876543210ull);
  w.FixedString("ab", 4);
  w.FixedString("abcdef", 3);
  w.Bool(true);
  std::string expected =
      Bytes({0x38, 0x4a, 0x00, 0xf1, 0x53, 0x65, 1,    0,    7,    0,    0,    0,   2,
             1,    'a',  1,    'b',  0xc7, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  expected += Bytes({0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01});
  expected += Bytes({0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe});
  expected += Bytes({'a', 'b', 0, 0, 'a', 'b', 'c', 1});
  EXPECT_EQ(w.buffer(), expected);
}

TEST(RowBinaryWriterTest, ClearKeepsCapacity) {
  RowBinaryWriter w;
  for (int i = 0; i < 1000; ++i) w.UInt64(i);
  size_t capacity = w.buffer().capacity();
  w.Clear();
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.buffer().capacity(), capacity);
}

// ---------------------------------------------------------------------------------------
// Errors

TEST(ErrorTest, ParsesClickHouse1816Body) {
  Status st = ErrorFromResponse(
      404,
      "Code: 60, e.displayText() = DB::Exception: Table experiments.nope doesn't exist., "
      "e.what() = DB::Exception\n");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(ClickHouseErrorCode(st), kUnknownTable);
  EXPECT_EQ(st.message(),
            "ClickHouse error 60 (UNKNOWN_TABLE): Table experiments.nope doesn't exist.");
}

TEST(ErrorTest, ParsesCurrentReleaseBody) {
  Status st = ErrorFromResponse(
      400,
      "Code: 62. DB::Exception: Syntax error: failed at position 1 ('SELEC'): SELEC 1. "
      "Expected one of: Query. (SYNTAX_ERROR) (version 24.3.1.2672 (official build))\n",
      "62");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClickHouseErrorCode(st), kSyntaxError);
  EXPECT_EQ(st.message(),
            "ClickHouse error 62 (SYNTAX_ERROR): Syntax error: failed at position 1 ('SELEC'): "
            "SELEC 1. Expected one of: Query. (SYNTAX_ERROR)");
}

// Texts of ClickHouse 26.9 (chdb 4.4.0), the second one rethrown with its frame repeated.
TEST(ErrorTest, ParsesRecentReleaseSamples) {
  Status table = ErrorFromResponse(
      404,
      "Code: 60. DB::Exception: Unknown table expression identifier 'd.nope'. Maybe you meant "
      "system.one? In scope SELECT * FROM d.nope. (UNKNOWN_TABLE) (version 26.9.2.1)\n");
  EXPECT_EQ(table.code(), StatusCode::kNotFound);
  EXPECT_EQ(table.message(),
            "ClickHouse error 60 (UNKNOWN_TABLE): Unknown table expression identifier 'd.nope'. "
            "Maybe you meant system.one? In scope SELECT * FROM d.nope. (UNKNOWN_TABLE)");
  Status setting = ErrorFromResponse(
      404,
      "Code: 115. DB::Exception: Code: 115. DB::Exception: Unknown setting 'no_such_setting'. "
      "(UNKNOWN_SETTING) (version 26.9.2.1). (UNKNOWN_SETTING)");
  EXPECT_EQ(setting.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(setting.message(),
            "ClickHouse error 115 (UNKNOWN_SETTING): Unknown setting 'no_such_setting'. "
            "(UNKNOWN_SETTING)");
}

TEST(ErrorTest, MultiLineMessagesStayOnOneLineAndStackTracesAreDropped) {
  Status st = ErrorFromResponse(
      500,
      "Code: 252, e.displayText() = DB::Exception: Too many parts (300).\nMerges are "
      "processing significantly slower than inserts., e.what() = DB::Exception\n");
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(ClickHouseErrorCode(st), kTooManyParts);
  EXPECT_EQ(st.message().find('\n'), std::string::npos);
  EXPECT_NE(st.message().find("Merges are processing"), std::string::npos);

  Status traced = ErrorFromResponse(
      500, "Code: 241. DB::Exception: Memory limit exceeded. Stack trace:\n0. abc\n1. def\n");
  EXPECT_EQ(traced.code(), StatusCode::kUnavailable);
  EXPECT_EQ(traced.message(),
            "ClickHouse error 241 (MEMORY_LIMIT_EXCEEDED): Memory limit exceeded.");
}

TEST(ErrorTest, HeaderCodeWinsAndUnknownCodesAreInternal) {
  Status st = ErrorFromResponse(500, "Code: 9999. DB::Exception: something new", "9999");
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(ClickHouseErrorCode(st), 9999);
  EXPECT_EQ(st.message(), "ClickHouse error 9999: something new");
  Status header_only = ErrorFromResponse(500, "", "159");
  EXPECT_EQ(header_only.code(), StatusCode::kUnavailable);
  EXPECT_EQ(ClickHouseErrorCode(header_only), kTimeoutExceeded);
}

TEST(ErrorTest, BodiesWithoutAClickHouseError) {
  EXPECT_EQ(ErrorFromResponse(502, "<html>Bad gateway</html>").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrorFromResponse(503, "").code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrorFromResponse(401, "").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorFromResponse(403, "").code(), StatusCode::kPermissionDenied);
  Status other = ErrorFromResponse(418, "teapot\x01");
  EXPECT_EQ(other.code(), StatusCode::kInternal);
  EXPECT_EQ(ClickHouseErrorCode(other), 0);
  EXPECT_EQ(other.message(), "ClickHouse answered HTTP 418: teapot?");
}

TEST(ErrorTest, CodeMappingAndContext) {
  EXPECT_EQ(StatusCodeForClickHouseError(kUnknownDatabase), StatusCode::kNotFound);
  EXPECT_EQ(StatusCodeForClickHouseError(kNoSuchColumnInTable), StatusCode::kNotFound);
  EXPECT_EQ(StatusCodeForClickHouseError(kUnknownIdentifier), StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForClickHouseError(kTableAlreadyExists), StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusCodeForClickHouseError(kTooManySimultaneousQueries), StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForClickHouseError(516), StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusCodeForClickHouseError(164), StatusCode::kPermissionDenied);
  EXPECT_EQ(ClickHouseErrorName(kUnknownTable), "UNKNOWN_TABLE");
  EXPECT_EQ(ClickHouseErrorName(123456), "");
  Status st = ErrorFromResponse(404,
                                "Code: 81, e.displayText() = DB::Exception: Database x "
                                "doesn't exist, e.what() = DB::Exception");
  EXPECT_EQ(ClickHouseErrorCode(st.WithContext("migrate")), kUnknownDatabase);
  EXPECT_EQ(ClickHouseErrorCode(Status::Ok()), 0);
  EXPECT_EQ(ClickHouseErrorCode(Status::Unavailable("connection refused")), 0);
}

TEST(ErrorTest, EveryPrefixOfAnErrorBodyIsHandled) {
  const std::string body =
      "Code: 60, e.displayText() = DB::Exception: Table a.b doesn't exist, e.what() = x\n";
  for (size_t n = 0; n <= body.size(); ++n) {
    Status st = ErrorFromResponse(404, body.substr(0, n));
    EXPECT_FALSE(st.ok());
    EXPECT_LE(st.message().size(), 1100u);
  }
}

// ---------------------------------------------------------------------------------------
// Quoting

TEST(QuoteTest, Identifiers) {
  EXPECT_EQ(QuoteIdentifier("events"), "`events`");
  EXPECT_EQ(QuoteIdentifier("a`b"), "`a\\`b`");
  EXPECT_EQ(QuoteIdentifier("a\\`; DROP TABLE x; --"), "`a\\\\\\`; DROP TABLE x; --`");
  EXPECT_EQ(QuoteIdentifier(std::string_view("n\n\0", 3)), "`n\\x0A\\x00`");
  EXPECT_EQ(QuoteIdentifier(""), "``");
}

TEST(QuoteTest, Strings) {
  EXPECT_EQ(QuoteString("abc"), "'abc'");
  EXPECT_EQ(QuoteString("it's"), "'it\\'s'");
  EXPECT_EQ(QuoteString("\\'); DROP TABLE t; --"), "'\\\\\\'); DROP TABLE t; --'");
  EXPECT_EQ(QuoteString("tab\there\x7f"), "'tab\\x09here\\x7F'");
  EXPECT_EQ(QuoteString("ünïcode `x`"), "'ünïcode `x`'");
}

// A quoted literal ends exactly at its last character: no unescaped quote before it.
TEST(QuoteTest, NoUnescapedQuoteInside) {
  std::string nasty;
  for (int c = 0; c < 256; ++c) nasty += static_cast<char>(c);
  for (const std::string& quoted : {QuoteString(nasty), QuoteIdentifier(nasty)}) {
    char q = quoted.front();
    ASSERT_EQ(quoted.back(), q);
    for (size_t i = 1; i + 1 < quoted.size(); ++i) {
      if (quoted[i] == '\\') {
        ++i;  // the escaped character
        continue;
      }
      ASSERT_NE(quoted[i], q) << "unescaped quote at " << i;
      ASSERT_GE(static_cast<unsigned char>(quoted[i]), 0x20) << "raw control byte at " << i;
    }
  }
}

TEST(QuoteTest, PlainNames) {
  EXPECT_TRUE(IsPlainName("RowBinary"));
  EXPECT_TRUE(IsPlainName("max_threads"));
  EXPECT_TRUE(IsPlainName("_x1"));
  EXPECT_FALSE(IsPlainName(""));
  EXPECT_FALSE(IsPlainName("1x"));
  EXPECT_FALSE(IsPlainName("a b"));
  EXPECT_FALSE(IsPlainName("a&b=c"));
  EXPECT_FALSE(IsPlainName("RowBinary; DROP"));
}

// ---------------------------------------------------------------------------------------
// TabSeparated

TEST(TabSeparatedTest, RowsFieldsAndEscapes) {
  auto rows = ParseTabSeparated("1\ta\\tb\\nc\n2\t\\\\x\\'\\0\\N\n\\N\t\n");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0], (NullableRow{"1", "a\tb\nc"}));
  EXPECT_EQ((*rows)[1], (NullableRow{"2", std::string("\\x'\0N", 5)}));
  EXPECT_EQ((*rows)[2], (NullableRow{std::nullopt, ""}));
}

TEST(TabSeparatedTest, EmptyBodiesLinesAndMissingFinalNewline) {
  auto none = ParseTabSeparated("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto empty_field = ParseTabSeparated("\n");
  ASSERT_TRUE(empty_field.ok());
  EXPECT_EQ(*empty_field, (std::vector<NullableRow>{{""}}));
  auto unterminated = ParseTabSeparated("a\tb");
  ASSERT_TRUE(unterminated.ok());
  EXPECT_EQ(*unterminated, (std::vector<NullableRow>{{"a", "b"}}));
  auto null_last = ParseTabSeparated("a\t\\N");
  ASSERT_TRUE(null_last.ok());
  EXPECT_EQ(*null_last, (std::vector<NullableRow>{{"a", std::nullopt}}));
}

TEST(TabSeparatedTest, HexAndUnknownEscapes) {
  auto rows = ParseTabSeparated("\\x41\\x7a\\q\\e\n");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0][0], "Azq\x1b");
  EXPECT_EQ(ParseTabSeparated("a\\").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTabSeparated("\\x4").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTabSeparated("\\xZZ\n").status().code(), StatusCode::kInvalidArgument);
}

// Every prefix of a valid body parses or fails cleanly; a prefix cut at a line end gives
// exactly the complete rows before it.
TEST(TabSeparatedTest, EveryPrefix) {
  const std::string body = "1\ta\\tb\\x41\t\\N\n22\t\\\\\t\\N\n\n333\tx\ty\n";
  auto full = ParseTabSeparated(body);
  ASSERT_TRUE(full.ok());
  ASSERT_EQ(full->size(), 4u);
  size_t complete = 0;
  for (size_t n = 0; n <= body.size(); ++n) {
    auto rows = ParseTabSeparated(std::string_view(body).substr(0, n));
    if (n > 0 && body[n - 1] == '\n') {
      ++complete;
      ASSERT_TRUE(rows.ok()) << n;
      ASSERT_EQ(rows->size(), complete) << n;
      for (size_t r = 0; r < complete; ++r) EXPECT_EQ((*rows)[r], (*full)[r]) << n;
    } else if (rows.ok()) {
      EXPECT_LE(rows->size(), complete + 1) << n;
    }
  }
}

TEST(ClientTest, CreateRejectsBadOptions) {
  ClientOptions bad_url;
  bad_url.url = "ftp://user:secret@host";
  auto c = Client::Create(bad_url);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message().find("secret"), std::string::npos);

  ClientOptions header_injection;
  header_injection.user = "default\r\nX-Evil: 1";
  EXPECT_EQ(Client::Create(header_injection).status().code(), StatusCode::kInvalidArgument);

  ClientOptions level;
  level.compression_level = 42;
  EXPECT_EQ(Client::Create(level).status().code(), StatusCode::kInvalidArgument);
}

TEST(ClientTest, InsertRejectsBadFormatAndSettingNamesBeforeSending) {
  ClientOptions options;
  options.url = "http://127.0.0.1:1";  // nothing listens; validation fails first
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  std::vector<std::string> columns = {"a"};
  Status bad_format = (*client)->Insert("t", columns, "RowBinary SETTINGS x=1", "");
  EXPECT_EQ(bad_format.code(), StatusCode::kInvalidArgument);
  Status bad_setting = (*client)->Execute("SELECT 1", {{"max_threads&x", "1"}});
  EXPECT_EQ(bad_setting.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*client)->stats().requests, 0);
}

}  // namespace
}  // namespace splitstream::clickhouse

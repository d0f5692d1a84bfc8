// SortRows: RowBinary rows in ClickHouse's ORDER BY order, equal keys in input order.
#include "row_order.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "splitstream/clickhouse/row_binary.h"

namespace splitstream::pipeline {
namespace {

using clickhouse::RowBinaryWriter;
using Kind = RowColumn::Kind;

constexpr RowColumn kString{Kind::kString, 0, false};
constexpr RowColumn kInt64{Kind::kSigned, 8, false};
constexpr RowColumn kInt32{Kind::kSigned, 4, false};
constexpr RowColumn kUInt64{Kind::kUnsigned, 8, false};
constexpr RowColumn kUInt32{Kind::kUnsigned, 4, false};
constexpr RowColumn kFloat64{Kind::kFloat, 8, false};
constexpr RowColumn kFloat32{Kind::kFloat, 4, false};
constexpr RowColumn kNullableFloat64{Kind::kFloat, 8, true};
constexpr RowColumn kNullableString{Kind::kString, 0, true};

// Rows of (key, tag): the tag (a UInt32 after the key) tells the rows apart.
template <typename Write>
std::vector<std::string> TaggedRows(size_t n, Write write_key) {
  std::vector<std::string> rows;
  for (size_t i = 0; i < n; ++i) {
    RowBinaryWriter w;
    write_key(i, w);
    w.UInt32(static_cast<uint32_t>(i));
    rows.push_back(w.buffer());
  }
  return rows;
}

std::string Join(const std::vector<std::string>& rows, const std::vector<size_t>& order) {
  std::string out;
  for (size_t i : order) out += rows[i];
  return out;
}

std::vector<size_t> Identity(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Sorts Join(rows, identity) with `layout` and expects Join(rows, want).
void ExpectOrder(const RowLayout& layout, const std::vector<std::string>& rows,
                 const std::vector<size_t>& want) {
  std::string buf = Join(rows, Identity(rows.size()));
  std::string spare;
  ASSERT_TRUE(SortRows(layout, rows.size(), buf, spare));
  EXPECT_EQ(buf, Join(rows, want));
}

TEST(SortRowsTest, StringsCompareBytesThenTheShorterFirst) {
  const std::vector<std::string> keys = {
      "b",       std::string("ab\0", 3), "abc", "ab", "\xff", "z", "", "prefix__b", "prefix__a",
      "prefix__"};
  auto rows = TaggedRows(keys.size(), [&](size_t i, RowBinaryWriter& w) { w.String(keys[i]); });
  // "" < "ab" < "ab\0" < "abc" < "b" < "prefix__" < "prefix__a" < "prefix__b" < "z" < "\xff"
  ExpectOrder({{kString, kUInt32}, {0}}, rows, {6, 3, 1, 2, 0, 9, 8, 7, 5, 4});
}

TEST(SortRowsTest, SignedAndUnsignedIntegers) {
  const std::vector<int64_t> s = {5, -1, std::numeric_limits<int64_t>::min(), 0,
                                  std::numeric_limits<int64_t>::max()};
  auto signed_rows = TaggedRows(s.size(), [&](size_t i, RowBinaryWriter& w) { w.Int64(s[i]); });
  ExpectOrder({{kInt64, kUInt32}, {0}}, signed_rows, {2, 1, 3, 0, 4});

  const std::vector<int32_t> s32 = {7, -7, 0};
  auto rows32 = TaggedRows(s32.size(), [&](size_t i, RowBinaryWriter& w) { w.Int32(s32[i]); });
  ExpectOrder({{kInt32, kUInt32}, {0}}, rows32, {1, 2, 0});

  // Unsigned: 2^63 and more come after small values (as a signed compare would not have it).
  const std::vector<uint64_t> u = {uint64_t{1} << 63, 3, std::numeric_limits<uint64_t>::max(), 0};
  auto unsigned_rows = TaggedRows(u.size(), [&](size_t i, RowBinaryWriter& w) { w.UInt64(u[i]); });
  ExpectOrder({{kUInt64, kUInt32}, {0}}, unsigned_rows, {3, 1, 0, 2});

  // DateTime is a UInt32: 2^31 and more after small values.
  const std::vector<uint32_t> dt = {0x80000000u, 1795169472u, 1u};
  auto dt_rows = TaggedRows(dt.size(), [&](size_t i, RowBinaryWriter& w) { w.DateTime(dt[i]); });
  ExpectOrder({{kUInt32, kUInt32}, {0}}, dt_rows, {2, 1, 0});
}

TEST(SortRowsTest, FloatsNumericallyWithNegativeZeroEqualToZeroAndNanLast) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v = {nan, 1.0, 0.0, -1.5, inf, -0.0, -inf, -nan, 2.5e-300};
  auto rows = TaggedRows(v.size(), [&](size_t i, RowBinaryWriter& w) { w.Float64(v[i]); });
  // -inf, -1.5, then 0.0 and -0.0 in input order, 2.5e-300, 1, inf, then both NaNs in input
  // order.
  ExpectOrder({{kFloat64, kUInt32}, {0}}, rows, {6, 3, 2, 5, 8, 1, 4, 0, 7});

  const std::vector<float> f = {1.5f, -2.0f, 0.25f};
  auto rows32 = TaggedRows(f.size(), [&](size_t i, RowBinaryWriter& w) { w.Float32(f[i]); });
  ExpectOrder({{kFloat32, kUInt32}, {0}}, rows32, {1, 2, 0});
}

TEST(SortRowsTest, EqualKeysKeepTheirInputOrder) {
  // (String, Int64) key with duplicates; the key is not at the start of the row, and a
  // Nullable column sits between its parts.
  struct Row {
    std::string s;
    int64_t n;
    bool null_value;
  };
  const std::vector<Row> in = {{"b", 1, false}, {"a", 2, true},  {"b", 1, true},
                               {"a", 1, false}, {"b", 1, false}, {"a", 2, false}};
  std::vector<std::string> rows;
  for (size_t i = 0; i < in.size(); ++i) {
    RowBinaryWriter w;
    w.UInt32(static_cast<uint32_t>(i));  // tag, first
    w.String(in[i].s);
    w.NullMarker(in[i].null_value);
    if (!in[i].null_value) w.Float64(0.5);
    w.Int64(in[i].n);
    rows.push_back(w.buffer());
  }
  const RowLayout layout{{kUInt32, kString, kNullableFloat64, kInt64}, {1, 3}};
  ExpectOrder(layout, rows, {3, 1, 5, 0, 2, 4});
}

TEST(SortRowsTest, NumberFirstThenString) {
  // assignments: ORDER BY (experiment_id, user_id), many rows of the same experiment.
  const std::vector<std::pair<int64_t, std::string>> in = {
      {2, "u1"}, {1, "user-000000009"}, {1, "user-000000001"}, {2, "u0"}, {1, "user-000000001"}};
  auto rows = TaggedRows(in.size(), [&](size_t i, RowBinaryWriter& w) {
    w.Int64(in[i].first);
    w.String(in[i].second);
  });
  ExpectOrder({{kInt64, kString, kUInt32}, {0, 1}}, rows, {2, 4, 1, 3, 0});
}

TEST(SortRowsTest, UnknownOrderKeepsTheRows) {
  auto rows = TaggedRows(3, [](size_t i, RowBinaryWriter& w) { w.Int64(3 - int64_t(i)); });
  const std::string in = Join(rows, {0, 1, 2});
  std::string buf = in, spare;
  // No key: an expression (toDate(ts)) or a type the writer does not handle.
  EXPECT_FALSE(SortRows({{kInt64, kUInt32}, {}}, 3, buf, spare));
  EXPECT_EQ(buf, in);
  // A nullable key column.
  EXPECT_FALSE(SortRows({{{Kind::kSigned, 8, true}, kUInt32}, {0}}, 3, buf, spare));
  EXPECT_EQ(buf, in);
  // A key index past the columns, and a bad width.
  EXPECT_FALSE(SortRows({{kInt64, kUInt32}, {2}}, 3, buf, spare));
  EXPECT_FALSE(SortRows({{{Kind::kSigned, 3, false}, kUInt32}, {0}}, 3, buf, spare));
  EXPECT_EQ(buf, in);
}

TEST(SortRowsTest, BytesThatAreNotTheRowsKeepTheRows) {
  auto rows =
      TaggedRows(3, [](size_t i, RowBinaryWriter& w) { w.String(std::string(1, 'c' - i)); });
  const std::string in = Join(rows, {0, 1, 2});
  const RowLayout layout{{kString, kUInt32}, {0}};
  std::string spare;
  for (size_t count : {size_t{2}, size_t{4}}) {  // fewer or more rows than the bytes hold
    std::string buf = in;
    EXPECT_FALSE(SortRows(layout, count, buf, spare)) << count;
    EXPECT_EQ(buf, in);
  }
  for (size_t cut = 1; cut < in.size(); ++cut) {  // every truncation
    std::string buf = in.substr(0, in.size() - cut);
    EXPECT_FALSE(SortRows(layout, 3, buf, spare)) << cut;
    EXPECT_EQ(buf, in.substr(0, in.size() - cut));
  }
  // A string length past the end, and a null marker that is neither 0 nor 1.
  RowBinaryWriter w;
  w.VarUInt(100);
  w.String("x");
  std::string buf = w.buffer();
  EXPECT_FALSE(SortRows({{kString}, {0}}, 1, buf, spare));
  buf = std::string("\x02", 1) + "\x01x";
  EXPECT_FALSE(SortRows({{kNullableString, kString}, {1}}, 1, buf, spare));
}

TEST(SortRowsTest, EmptyBatchOneRowAndSortedRowsAreLeftAlone) {
  const RowLayout layout{{kString, kUInt32}, {0}};
  std::string buf, spare = "untouched";
  EXPECT_TRUE(SortRows(layout, 0, buf, spare));
  EXPECT_EQ(buf, "");
  auto rows =
      TaggedRows(3, [](size_t i, RowBinaryWriter& w) { w.String(std::string(1, 'a' + i)); });
  buf = rows[2];
  EXPECT_TRUE(SortRows(layout, 1, buf, spare));
  EXPECT_EQ(buf, rows[2]);
  buf = Join(rows, {0, 1, 2});
  EXPECT_TRUE(SortRows(layout, 3, buf, spare));
  EXPECT_EQ(buf, Join(rows, {0, 1, 2}));
  EXPECT_EQ(spare, "untouched") << "rows already in order are not copied";
}

// Random rows of the events shape against a reference: decode every key, std::stable_sort.
TEST(SortRowsTest, MatchesAStableSortOfTheDecodedKeys) {
  std::mt19937_64 rng(42);
  const RowLayout layout{{kString, kInt64, kNullableString, kFloat64, kUInt32}, {0, 3, 1}};
  for (size_t n : {size_t{2}, size_t{17}, size_t{1000}}) {
    std::vector<std::string> rows;
    std::vector<std::tuple<std::string, double, int64_t>> keys;
    for (size_t i = 0; i < n; ++i) {
      // Few distinct values, so that ties on every part of the key happen.
      std::string s = (rng() % 2 ? "same-long-prefix-" : "") + std::to_string(rng() % 5);
      if (rng() % 7 == 0) s.push_back('\0');
      const int64_t v = static_cast<int64_t>(rng() % 5) - 2;
      const double d = rng() % 9 == 0 ? -0.0 : static_cast<double>(rng() % 3) - 1;
      RowBinaryWriter w;
      w.String(s);
      w.Int64(v);
      w.NullMarker(rng() % 2 == 0);
      if (w.buffer().back() == 0) w.String(std::string(rng() % 20, 'x'));
      w.Float64(d);
      w.UInt32(static_cast<uint32_t>(i));
      rows.push_back(w.buffer());
      keys.emplace_back(s, d == 0 ? 0.0 : d, v);
    }
    std::vector<size_t> want = Identity(n);
    std::stable_sort(want.begin(), want.end(),
                     [&](size_t a, size_t b) { return keys[a] < keys[b]; });
    ExpectOrder(layout, rows, want);
  }
}

TEST(SortRowsTest, TheSpareIsReused) {
  const RowLayout layout{{kInt64, kUInt32}, {0}};
  auto rows = TaggedRows(100, [](size_t i, RowBinaryWriter& w) { w.Int64(-int64_t(i)); });
  std::vector<size_t> reversed = Identity(100);
  std::reverse(reversed.begin(), reversed.end());
  std::string spare;
  std::string a = Join(rows, Identity(100));
  ASSERT_TRUE(SortRows(layout, 100, a, spare));
  EXPECT_EQ(a, Join(rows, reversed));
  const size_t capacity = spare.capacity();
  EXPECT_GE(capacity, a.size()) << "the spare now holds the input's buffer";
  std::string b = Join(rows, Identity(100));
  ASSERT_TRUE(SortRows(layout, 100, b, spare));
  EXPECT_EQ(b, Join(rows, reversed));
}

}  // namespace
}  // namespace splitstream::pipeline

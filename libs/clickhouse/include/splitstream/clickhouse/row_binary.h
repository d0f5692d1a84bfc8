// RowBinary encoding: the fastest input format of ClickHouse's HTTP interface (18.16 and
// current releases). Rows are written value by value in the table's column order (or the
// order of the column list of the INSERT); there are no row or column separators.
//
// Wire format (all integers little-endian, fixed width unless stated):
//   UInt8/16/32/64, Int8/16/32/64     1/2/4/8 bytes, two's complement for signed
//   Float32/Float64                   IEEE 754, 4/8 bytes
//   String                            LEB128 varint byte length, then the bytes
//   FixedString(N)                    exactly N bytes (shorter values padded with NUL)
//   Date                              UInt16 days since 1970-01-01
//   DateTime                          UInt32 seconds since the epoch (UTC)
//   Decimal32/64(S)                   Int32/Int64 unscaled value (value * 10^S)
//   UUID                              two UInt64: the high half first, then the low half
//   Enum8/Enum16                      Int8/Int16 value
//   Nullable(T)                       UInt8 1 = NULL (nothing follows) or 0, then T
//   Array(T)                          LEB128 varint element count, then the elements
//   LowCardinality(T)                 as T
//
// RowBinaryWriter appends to an internal buffer that Clear() empties without releasing its
// capacity, so one writer serves every batch. It does not know the schema: writing the
// wrong type or order is not detected here; ClickHouse rejects or misreads the batch.
// Not thread-safe.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace splitstream::clickhouse {

static_assert(std::endian::native == std::endian::little,
              "RowBinaryWriter copies integers in host order, which must be little-endian");

class RowBinaryWriter {
 public:
  void UInt8(uint8_t v) { buffer_.push_back(static_cast<char>(v)); }
  void UInt16(uint16_t v) { Raw(v); }
  void UInt32(uint32_t v) { Raw(v); }
  void UInt64(uint64_t v) { Raw(v); }
  void Int8(int8_t v) { buffer_.push_back(static_cast<char>(v)); }
  void Int16(int16_t v) { Raw(v); }
  void Int32(int32_t v) { Raw(v); }
  void Int64(int64_t v) { Raw(v); }
  void Float32(float v) { Raw(v); }
  void Float64(double v) { Raw(v); }
  void Bool(bool v) { UInt8(v ? 1 : 0); }  // UInt8 column (18.16 has no Bool type)

  // String: varint length, then the bytes (any bytes; ClickHouse strings are not UTF-8
  // checked).
  void String(std::string_view v) {
    VarUInt(v.size());
    buffer_.append(v.data(), v.size());
  }
  // FixedString(n): `v` truncated or NUL-padded to exactly n bytes.
  void FixedString(std::string_view v, size_t n) {
    size_t copy = v.size() < n ? v.size() : n;
    buffer_.append(v.data(), copy);
    buffer_.append(n - copy, '\0');
  }

  void Date(uint16_t days_since_epoch) { Raw(days_since_epoch); }
  void DateTime(uint32_t unix_seconds) { Raw(unix_seconds); }
  void Decimal32(int32_t unscaled) { Raw(unscaled); }
  void Decimal64(int64_t unscaled) { Raw(unscaled); }
  // UUID from its two 64-bit halves: for 01234567-89ab-cdef-0123-456789abcdef, high is
  // 0x0123456789abcdef and low is 0x0123456789abcdef.
  void Uuid(uint64_t high, uint64_t low) {
    Raw(high);
    Raw(low);
  }

  // Nullable(T): call before the value; when is_null is true, write no value after it.
  void NullMarker(bool is_null) { UInt8(is_null ? 1 : 0); }
  // Array(T): the element count, followed by that many values of T.
  void ArraySize(uint64_t n) { VarUInt(n); }

  // LEB128 unsigned varint, as used for String lengths and Array sizes.
  void VarUInt(uint64_t v) {
    char bytes[10];
    size_t n = 0;
    while (v >= 0x80) {
      bytes[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    bytes[n++] = static_cast<char>(v);
    buffer_.append(bytes, n);
  }

  // The encoded rows. Callers may move from it or pass it to Client::Insert.
  std::string& buffer() { return buffer_; }
  const std::string& buffer() const { return buffer_; }
  // Empties the buffer, keeping its capacity.
  void Clear() { buffer_.clear(); }
  size_t size() const { return buffer_.size(); }
  void Reserve(size_t bytes) { buffer_.reserve(bytes); }

 private:
  template <typename T>
  void Raw(T v) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    buffer_.append(bytes, sizeof(T));
  }

  std::string buffer_;
};

}  // namespace splitstream::clickhouse

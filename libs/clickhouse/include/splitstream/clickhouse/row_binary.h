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
//
// RowBinaryReader reads the same values forward through a view and never past its end, and
// RowBinaryRows cuts a RowBinary answer that arrives in chunks (Client::QueryStream) into
// rows, carrying a row that a chunk boundary cut over to the next chunk. Neither knows the
// schema either: the caller reads each row's values in the order its SELECT names them.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "splitstream/core/result.h"

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

// Reads RowBinary values from `data`. A read that would pass the end returns false and leaves
// the position unchanged; so does a varint longer than 10 bytes, which also sets malformed().
class RowBinaryReader {
 public:
  explicit RowBinaryReader(std::string_view data) : data_(data) {}

  bool UInt8(uint8_t* v) { return Raw(v); }
  bool UInt16(uint16_t* v) { return Raw(v); }
  bool UInt32(uint32_t* v) { return Raw(v); }
  bool UInt64(uint64_t* v) { return Raw(v); }
  bool Int8(int8_t* v) { return Raw(v); }
  bool Int16(int16_t* v) { return Raw(v); }
  bool Int32(int32_t* v) { return Raw(v); }
  bool Int64(int64_t* v) { return Raw(v); }
  bool Float32(float* v) { return Raw(v); }
  bool Float64(double* v) { return Raw(v); }
  // The bytes of a String, a view into the data (valid as long as the data is).
  bool String(std::string_view* v) {
    size_t start = pos_;
    uint64_t n = 0;
    if (!VarUInt(&n)) return false;
    if (n > data_.size() - pos_) {
      pos_ = start;
      return false;
    }
    *v = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  // Nullable(T): true when the marker says NULL (no value follows); read T after false.
  bool NullMarker(bool* is_null) {
    uint8_t m = 0;
    if (!UInt8(&m)) return false;
    if (m > 1) {
      --pos_;
      malformed_ = true;
      return false;
    }
    *is_null = m == 1;
    return true;
  }
  bool VarUInt(uint64_t* v) {
    uint64_t out = 0;
    for (size_t i = 0; i < 10; ++i) {
      if (pos_ + i >= data_.size()) return false;
      auto byte = static_cast<uint8_t>(data_[pos_ + i]);
      out |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
      if ((byte & 0x80) == 0) {
        pos_ += i + 1;
        *v = out;
        return true;
      }
    }
    malformed_ = true;
    return false;
  }

  size_t position() const { return pos_; }
  bool at_end() const { return pos_ == data_.size(); }
  bool malformed() const { return malformed_; }

 private:
  template <typename T>
  bool Raw(T* v) {
    if (data_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  std::string_view data_;
  size_t pos_ = 0;
  bool malformed_ = false;
};

// Cuts a chunked RowBinary stream into rows. `read_row` reads one row's values and returns
// false when one of its reads did (the row is incomplete): it must read every value before
// it acts on any, since an incomplete row is read again, whole, once more bytes have come.
// Errors: InvalidArgument from Feed for malformed bytes (a bad varint or NULL marker), and
// from Finish when the stream ended inside a row; a non-OK status of `read_row`'s caller is
// the caller's own affair (Feed returns only the decoding's).
class RowBinaryRows {
 public:
  using ReadRow = std::function<bool(RowBinaryReader&)>;
  explicit RowBinaryRows(ReadRow read_row) : read_row_(std::move(read_row)) {}

  Status Feed(std::string_view chunk);
  // After the last chunk: InvalidArgument when bytes of an incomplete row are left.
  Status Finish() const;
  uint64_t rows() const { return rows_; }

 private:
  // Reads the complete rows of `data`; returns how many bytes they took.
  Result<size_t> ReadRows(std::string_view data);

  ReadRow read_row_;
  std::string carry_;  // the start of a row cut by the end of the previous chunk
  uint64_t rows_ = 0;
};

}  // namespace splitstream::clickhouse

#include "row_order.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string_view>

namespace splitstream::pipeline {
namespace {

using Kind = RowColumn::Kind;

// One row of the batch: an order-preserving code of its first key value (the whole value for
// numbers, the first 8 bytes big-endian and zero-padded for strings), and where it lies.
// Sorting 16-byte entries instead of the rows keeps the sort cheap; ties go to CompareFrom.
struct Entry {
  uint64_t prefix;
  uint32_t start;
  uint32_t size;
};

bool ValidWidth(const RowColumn& c) {
  switch (c.kind) {
    case Kind::kString:
      return true;
    case Kind::kFloat:
      return c.width == 4 || c.width == 8;
    case Kind::kSigned:
    case Kind::kUnsigned:
      return c.width == 1 || c.width == 2 || c.width == 4 || c.width == 8;
  }
  return false;
}

// A LEB128 varint at p; nullptr when it runs past `end` or over 10 bytes.
const char* ReadVarUInt(const char* p, const char* end, uint64_t* v) {
  uint64_t out = 0;
  for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
    const auto byte = static_cast<uint8_t>(*p++);
    out |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *v = out;
      return p;
    }
  }
  return nullptr;
}

// Past one value of `c` at p (its null marker included); nullptr when it does not fit.
const char* Skip(const RowColumn& c, const char* p, const char* end) {
  if (c.nullable) {
    if (p == end) return nullptr;
    const char marker = *p++;
    if (marker == 1) return p;  // NULL: no value follows
    if (marker != 0) return nullptr;
  }
  if (c.kind == Kind::kString) {
    uint64_t n = 0;
    p = ReadVarUInt(p, end, &n);
    if (p == nullptr || n > static_cast<uint64_t>(end - p)) return nullptr;
    return p + n;
  }
  if (static_cast<size_t>(end - p) < c.width) return nullptr;
  return p + c.width;
}

// A number's value as an unsigned code in the same order (ClickHouse's: -0 equals 0, NaN
// after every number).
uint64_t NumberCode(const RowColumn& c, const char* p) {
  uint64_t raw = 0;
  std::memcpy(&raw, p, c.width);  // little-endian (row_binary.h asserts it)
  const unsigned unused_bits = 64 - 8 * unsigned{c.width};
  switch (c.kind) {
    case Kind::kUnsigned:
      return raw;
    case Kind::kSigned: {
      const int64_t v = static_cast<int64_t>(raw << unused_bits) >> unused_bits;
      return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63);
    }
    case Kind::kFloat: {
      double d = 0;
      if (c.width == 4) {
        float f = 0;
        std::memcpy(&f, p, 4);
        d = f;
      } else {
        std::memcpy(&d, p, 8);
      }
      if (std::isnan(d)) return std::numeric_limits<uint64_t>::max();
      if (d == 0) d = 0;  // -0 → +0
      uint64_t bits = 0;
      std::memcpy(&bits, &d, 8);
      return (bits >> 63) != 0 ? ~bits : bits | (uint64_t{1} << 63);
    }
    case Kind::kString:
      break;
  }
  return 0;
}

std::string_view StringAt(const char* p, const char* end) {
  uint64_t n = 0;
  p = ReadVarUInt(p, end, &n);
  return {p, static_cast<size_t>(n)};
}

uint64_t StringPrefix(std::string_view s) {
  unsigned char bytes[8] = {};
  std::memcpy(bytes, s.data(), std::min<size_t>(s.size(), 8));
  uint64_t v = 0;
  for (unsigned char b : bytes) v = (v << 8) | b;
  return v;
}

// Compares the key values of two already validated rows.
class KeyComparer {
 public:
  KeyComparer(const RowLayout& layout, const std::string& rows)
      : layout_(layout), base_(rows.data()), end_(rows.data() + rows.size()) {
    last_ = *std::max_element(layout.key.begin(), layout.key.end());
    a_.resize(last_ + 1);
    b_.resize(last_ + 1);
    // A number's prefix is its whole value: equal prefixes leave the second key part on.
    from_ = layout.columns[layout.key[0]].kind == Kind::kString ? 0 : 1;
  }

  bool operator()(const Entry& x, const Entry& y) {
    if (x.prefix != y.prefix) return x.prefix < y.prefix;
    if (from_ < layout_.key.size()) {
      const int c = CompareFrom(base_ + x.start, base_ + y.start);
      if (c != 0) return c < 0;
    }
    return x.start < y.start;  // equal keys: input order
  }

 private:
  void Positions(const char* p, std::vector<const char*>& out) const {
    for (size_t i = 0; i <= last_; ++i) {
      out[i] = p;
      if (i < last_) p = Skip(layout_.columns[i], p, end_);
    }
  }

  int CompareFrom(const char* row_a, const char* row_b) {
    Positions(row_a, a_);
    Positions(row_b, b_);
    for (size_t k = from_; k < layout_.key.size(); ++k) {
      const size_t i = layout_.key[k];
      const RowColumn& c = layout_.columns[i];
      if (c.kind == Kind::kString) {
        const std::string_view sa = StringAt(a_[i], end_), sb = StringAt(b_[i], end_);
        const int m = std::memcmp(sa.data(), sb.data(), std::min(sa.size(), sb.size()));
        if (m != 0) return m;
        if (sa.size() != sb.size()) return sa.size() < sb.size() ? -1 : 1;
      } else {
        const uint64_t va = NumberCode(c, a_[i]), vb = NumberCode(c, b_[i]);
        if (va != vb) return va < vb ? -1 : 1;
      }
    }
    return 0;
  }

  const RowLayout& layout_;
  const char* base_;
  const char* end_;
  size_t last_ = 0;
  size_t from_ = 0;
  std::vector<const char*> a_, b_;  // value positions of the rows being compared
};

bool UsableKey(const RowLayout& layout) {
  if (layout.key.empty()) return false;
  for (const RowColumn& c : layout.columns) {
    if (!ValidWidth(c)) return false;
  }
  for (size_t i : layout.key) {
    if (i >= layout.columns.size() || layout.columns[i].nullable) return false;
  }
  return true;
}

}  // namespace

bool SortRows(const RowLayout& layout, size_t count, std::string& rows, std::string& spare) {
  if (!UsableKey(layout) || rows.size() > std::numeric_limits<uint32_t>::max()) return false;
  const char* const base = rows.data();
  const char* const end = base + rows.size();
  const size_t first = layout.key[0];
  const RowColumn& first_col = layout.columns[first];
  std::vector<Entry> entries;
  entries.reserve(count);
  const char* p = base;
  for (size_t r = 0; r < count; ++r) {
    const char* const row = p;
    uint64_t prefix = 0;
    for (size_t i = 0; i < layout.columns.size(); ++i) {
      const char* next = Skip(layout.columns[i], p, end);
      if (next == nullptr) return false;
      if (i == first) {
        prefix = first_col.kind == Kind::kString ? StringPrefix(StringAt(p, end))
                                                 : NumberCode(first_col, p);
      }
      p = next;
    }
    entries.push_back({prefix, static_cast<uint32_t>(row - base), static_cast<uint32_t>(p - row)});
  }
  if (p != end) return false;

  KeyComparer less(layout, rows);
  if (std::is_sorted(entries.begin(), entries.end(), std::ref(less))) return true;
  // `less` is a total order (input position breaks ties), so std::sort is stable here.
  std::sort(entries.begin(), entries.end(), std::ref(less));
  spare.clear();
  spare.reserve(rows.size());
  for (const Entry& e : entries) spare.append(base + e.start, e.size);
  rows.swap(spare);
  return true;
}

}  // namespace splitstream::pipeline

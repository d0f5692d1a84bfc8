// SortRows: puts a batch of RowBinary rows (libs/clickhouse/row_binary.h) in its table's
// ORDER BY order before the INSERT. Pure: no I/O.
//
// Why: ClickHouse sorts every inserted block by the table's sorting key unless the block is
// already sorted (MergeTreeDataWriter checks first), and for random keys such as the events'
// event_id that sort dominates its insert cost (libs/pipeline/README.md, "Rows in key
// order"). Sorting on our side is cheaper: one pass records each row's place and a compact
// key, then an index of 16-byte entries is sorted and the rows are copied once in that order.
//
// Order, as ClickHouse compares (ascending): String by bytes (memcmp, then the shorter
// first), Int* signed, UInt*/Date/DateTime unsigned, Float32/Float64 numerically with -0 equal
// to 0 and NaN after every number (NaNs equal). Rows with equal keys keep their input order,
// so the rows a ReplacingMergeTree keeps are the same as without the sort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace splitstream::pipeline {

// One column of a RowBinary row: how to step over its value and how values compare.
struct RowColumn {
  enum class Kind { kSigned, kUnsigned, kFloat, kString };
  Kind kind = Kind::kString;
  uint8_t width = 0;  // bytes of a fixed-width value (1, 2, 4 or 8; 4 or 8 for kFloat)
  bool nullable = false;
};

// The columns of every row, in order, and the ORDER BY key as indexes into `columns`. An
// empty key means the order is unknown (an expression, or a type not listed above): the rows
// stay as they are.
struct RowLayout {
  std::vector<RowColumn> columns;
  std::vector<size_t> key;
};

// Reorders `rows`, `count` rows laid out as `layout`, into key order. `spare` is a buffer to
// copy into: on return it holds the other buffer (contents unspecified, capacity kept), so
// passing the same spare again reuses its memory. Returns false, with `rows` unchanged, when
// the layout has no usable key (empty, a nullable or out-of-range key column) or the bytes
// are not exactly `count` rows of `layout`; true otherwise (also when the rows were already
// in order, which copies nothing).
bool SortRows(const RowLayout& layout, size_t count, std::string& rows, std::string& spare);

}  // namespace splitstream::pipeline

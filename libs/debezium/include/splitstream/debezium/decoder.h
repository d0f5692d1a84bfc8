// Decoder: reads one Kafka message of a change stream into a neutral ChangeRecord for the
// ClickHouse sink. Two formats:
//   - Debezium envelopes, with or without the JSON converter's {"schema","payload"} wrapper
//     (what Encoder writes, and what the real Debezium PostgreSQL connector writes);
//   - CockroachDB changefeed JSON (format=json, wrapped envelope, with the `updated`, `diff`,
//     `key_in_value` and `resolved` options; the `enriched` envelope's payload is accepted too).
// The wire formats are described in libs/debezium/README.md.
//
// Errors: malformed input is InvalidArgument with the path of the offending field in the
// message, e.g. "value.source.lsn: expected integer". No input, however truncated, crashes.
//
// Thread safety: thread-compatible; use one Decoder per thread (it owns a reusable parser).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "splitstream/core/lsn.h"
#include "splitstream/core/result.h"
#include "splitstream/debezium/encoder.h"

namespace splitstream::debezium {

// kJson: a JSON object or array, kept as its (minified) text in `s`.
enum class FieldKind : uint8_t { kNull, kBool, kInt, kDouble, kString, kJson };

struct Field {
  std::string name;
  FieldKind kind = FieldKind::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;  // kString and kJson
};

struct RowImage {
  std::vector<Field> fields;
  // The field called `name`, or nullptr.
  const Field* Find(std::string_view name) const;
};

enum class SourceFormat { kDebezium, kChangefeed };

struct ChangeRecord {
  enum class Kind { kRow, kTombstone, kTruncate, kResolved, kMessage } kind = Kind::kRow;
  SourceFormat format = SourceFormat::kDebezium;
  // For kRow: r c u d. A changefeed row is 'd' when after is null; with the `diff` option 'c'
  // when before is null and 'u' otherwise; without `diff` the previous state is unknown and the
  // row is 'u' (an upsert).
  Op op = Op::kCreate;
  std::string schema, table;  // from the source block (Debezium) or the topic name (changefeed)
  // Changefeed keys are JSON arrays: their fields are named by position "0", "1", ...
  std::optional<RowImage> key, before, after;
  Lsn lsn;         // Debezium source.lsn; 0 when absent
  Lsn commit_lsn;  // Debezium source.sequence[0] when present; 0 otherwise
  int64_t source_ts_ms = 0;
  std::string snapshot;
  uint32_t tx_id = 0;  // Debezium source.txId; 0 when absent
  // Changefeed: the `resolved` (kResolved) or `updated` HLC timestamp "wall.logical", and its
  // parts (wall clock nanoseconds, logical counter).
  std::string resolved;
  int64_t hlc_wall_ns = 0;
  int32_t hlc_logical = 0;
  // Connect schema of `after` when the message carried one (schema-enabled): field name ->
  // the schema's logical name when it has one ("io.debezium.time.MicroTimestamp"), else its
  // Connect type ("int64", "string", ...).
  std::vector<std::pair<std::string, std::string>> after_schema;
};

// Which messages get their Kafka key decoded into ChangeRecord::key.
enum class KeyDecoding : uint8_t {
  // Every message with a key (default): a malformed key is an error on any message.
  kAlways,
  // Unless the record has an `after` image: the key is decoded only for records without one
  // (deletes, tombstones, logical messages) and for deletes (op d) whatever they carry. The
  // sink's ClickHouse writer reads the key only for a delete without `before`, and the key is
  // a second JSON document to parse. For a record with `after` (not a delete), `key` stays
  // empty and the Kafka key (and a changefeed's `key_in_value` key) is neither parsed nor
  // validated: a malformed key on such a message is no error.
  kUnlessAfter,
};

struct DecoderOptions {
  KeyDecoding key = KeyDecoding::kAlways;
};

class Decoder {
 public:
  explicit Decoder(DecoderOptions options = {});
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // `value` nullopt is a tombstone (Debezium writes one after each delete); schema and table
  // then come from the topic "<prefix>.<schema>.<table>".
  Result<ChangeRecord> DecodeDebezium(std::string_view topic, std::optional<std::string_view> key,
                                      std::optional<std::string_view> value);
  // Schema is the second-to-last dotted part of the topic when there is one (full_table_name
  // topics "db.schema.table"), table the last part.
  Result<ChangeRecord> DecodeChangefeed(std::string_view topic, std::optional<std::string_view> key,
                                        std::optional<std::string_view> value);
  // Guesses the format from the JSON shape: a `source` block naming a `connector` is Debezium,
  // anything else (after/resolved/updated) a changefeed; a null value is a Debezium tombstone.
  Result<ChangeRecord> Decode(std::string_view topic, std::optional<std::string_view> key,
                              std::optional<std::string_view> value);
  // Decode into *out, reusing its strings and row images (and the decoder's spare storage):
  // decoding a stream of messages into one record allocates next to nothing once the record
  // has held the largest of them. Same result and errors as Decode; after an error *out is
  // unspecified (but valid).
  Status DecodeInto(std::string_view topic, std::optional<std::string_view> key,
                    std::optional<std::string_view> value, ChangeRecord* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitstream::debezium

// Encoder: turns a decoded PostgreSQL change (column values in PostgreSQL's text output format)
// into the exact JSON the Debezium PostgreSQL connector writes through Kafka Connect's JSON
// converter: `schemas.enable=false` by default, `{"schema", "payload"}` when
// EncoderOptions::schemas_enable is set. Pure: no I/O.
//
// Layout written (Debezium 3.x order, checked against a captured Debezium 3.1.3 message):
//   value: {"before", "after", "source", "transaction", "op", "ts_ms", "ts_us", "ts_ns"}
//   source: {"version", "connector", "name", "ts_ms", "snapshot", "db", "sequence", "ts_us",
//            "ts_ns", "schema", "table", "txId", "lsn", "xmin"}
// The type mapping and every deviation from Debezium are listed in libs/debezium/README.md.
//
// Errors: a value that cannot be converted (malformed numeric text, a date that does not parse,
// a row whose width differs from the table's) is InvalidArgument naming schema.table.column.
// Output strings are cleared first; on error their content is unspecified.
//
// Thread safety: Encoder and TableEncoding are immutable after construction; every const method
// may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "splitstream/core/lsn.h"
#include "splitstream/core/status.h"

namespace splitstream::debezium {

// Debezium's default `unavailable.value.placeholder` for unchanged TOASTed values.
inline constexpr std::string_view kUnavailableValuePlaceholder = "__debezium_unavailable_value";

enum class DatumKind : uint8_t { kNull, kUnchangedToast, kText };

// One column value as pgoutput delivers it; `text` is PostgreSQL's text output format and is
// only read for kText. The view must stay valid for the duration of the Encode call.
struct Datum {
  DatumKind kind;
  std::string_view text;
};

struct Column {
  std::string name;
  uint32_t type_oid;
  int32_t type_modifier;  // atttypmod; -1 when none
  bool key;               // part of the primary key (replica identity)
  // Only affects the Connect schema ("optional"); key columns are always required. pgoutput
  // does not say whether a column is NOT NULL, so the default is optional.
  bool not_null = false;
};

struct TableSchema {
  std::string schema;
  std::string table;
  std::vector<Column> columns;
  // User-defined types seen in pgoutput Type messages: oid -> name. They (enums in practice)
  // encode as strings with the io.debezium.data.Enum schema; types neither builtin nor listed
  // here encode as plain strings (Debezium drops such columns unless include.unknown.datatypes).
  std::unordered_map<uint32_t, std::string> custom_types;
};

enum class DecimalMode { kPrecise, kString, kDouble };

struct EncoderOptions {
  std::string server_name = "dbserver1";  // topic.prefix, source.name
  std::string database;                   // source.db
  DecimalMode decimal_mode = DecimalMode::kPrecise;
  bool schemas_enable = false;
  // source.version: the Debezium release whose output format this encoder reproduces.
  std::string version = "3.1.3.Final";
};

enum class Op : char {
  kRead = 'r',
  kCreate = 'c',
  kUpdate = 'u',
  kDelete = 'd',
  kTruncate = 't',
  kMessage = 'm'
};

struct SourceInfo {
  int64_t commit_time_us;     // source.ts_ms/ts_us/ts_ns
  std::string_view snapshot;  // "false", "true", "first", "last", ...; empty means "false"
  Lsn last_commit_lsn;        // sequence[0]; Lsn(0) -> null
  Lsn lsn;                    // source.lsn and sequence[1]; Lsn(0) -> null
  uint32_t tx_id;             // 0 -> null
};

// The envelope's `transaction` block, written only when transaction metadata is on
// (provide.transaction.metadata=true): id "txid:lsn", positions counted from 1.
struct TransactionInfo {
  uint32_t tx_id;
  Lsn lsn;  // printed as a decimal number in the id, as Debezium does
  int64_t total_order;
  int64_t data_collection_order;
};

// Per-table state prepared once: one column encoder chosen by type oid and typmod, escaped
// field names, and (schema-enabled) the Connect schemas of key and envelope.
class TableEncoding {
 public:
  ~TableEncoding();
  TableEncoding(const TableEncoding&) = delete;
  TableEncoding& operator=(const TableEncoding&) = delete;

  const TableSchema& schema() const { return schema_; }
  const std::string& topic() const { return topic_; }
  bool has_key() const { return has_key_; }

 private:
  friend class Encoder;
  struct Impl;
  TableEncoding(TableSchema schema, std::string topic);

  TableSchema schema_;
  std::string topic_;
  bool has_key_ = false;
  std::unique_ptr<Impl> impl_;
};

// A librdkafka subscription ("^" then a regular expression) matching every table topic an
// Encoder with `server_name` names in `schema` (Encoder::Topic: server_name.schema.table), and
// nothing else: the names' regex characters are escaped.
std::string TableTopicsPattern(std::string_view server_name, std::string_view schema);

class Encoder {
 public:
  explicit Encoder(EncoderOptions options);

  const EncoderOptions& options() const { return options_; }

  std::shared_ptr<const TableEncoding> Prepare(TableSchema schema) const;
  std::string Topic(const TableEncoding& table) const;  // prefix.schema.table

  // Key: JSON object of the key columns of `row`; returns false (the Kafka key is null, *out
  // empty) when the table has no key columns. `row` has one Datum per column of the table; a
  // row of another width yields an empty key object. Appends to *out (cleared first).
  bool EncodeKey(const TableEncoding& table, std::span<const Datum> row, std::string* out) const;

  // Value envelope. `before`/`after` empty means JSON null. processed_time_ns is the top-level
  // ts_ms/ts_us/ts_ns. `transaction` null writes "transaction":null. Op kTruncate is
  // EncodeTruncate's job and kMessage is not supported here (InvalidArgument).
  Status EncodeValue(const TableEncoding& table, Op op, std::span<const Datum> before,
                     std::span<const Datum> after, const SourceInfo& source,
                     int64_t processed_time_ns, std::string* out,
                     const TransactionInfo* transaction = nullptr) const;
  // EncodeKey of the record's key row (`after`, or `before` when `after` is empty) and
  // EncodeValue in one pass: the key's column values are copied from the value's row image
  // instead of being converted twice. The same bytes as the two calls; *has_key is
  // EncodeKey's result. On error (the value's), both outputs are unspecified.
  Status EncodeKeyAndValue(const TableEncoding& table, Op op, std::span<const Datum> before,
                           std::span<const Datum> after, const SourceInfo& source,
                           int64_t processed_time_ns, std::string* key, bool* has_key,
                           std::string* value, const TransactionInfo* transaction = nullptr) const;
  // op "t", before/after null; the Kafka key of a truncate event is null.
  Status EncodeTruncate(const TableEncoding& table, const SourceInfo& source,
                        int64_t processed_time_ns, std::string* out,
                        const TransactionInfo* transaction = nullptr) const;

  std::string HeartbeatTopic() const;                     // __debezium-heartbeat.<prefix>
  std::string EncodeHeartbeatKey() const;                 // {"serverName":"<prefix>"}
  std::string EncodeHeartbeatValue(int64_t ts_ms) const;  // {"ts_ms":<ts_ms>}

  std::string TransactionTopic() const;                             // <prefix>.transaction
  std::string EncodeTransactionKey(uint32_t tx_id, Lsn lsn) const;  // {"id":"txid:lsn"}
  std::string EncodeTransactionBegin(uint32_t tx_id, Lsn lsn, int64_t ts_ms) const;
  // per_table_counts: ("schema.table", events of the transaction in that table).
  std::string EncodeTransactionEnd(
      uint32_t tx_id, Lsn lsn, int64_t ts_ms, int64_t event_count,
      std::span<const std::pair<std::string, int64_t>> per_table_counts) const;

 private:
  // Where the key columns' values of one row image landed in the output: [begin, end) offsets.
  struct KeySpans {
    static constexpr size_t kMax = 8;
    std::pair<size_t, size_t> spans[kMax];
    size_t count = 0;
  };
  Status EncodeEnvelope(const TableEncoding& table, Op op, std::span<const Datum> before,
                        std::span<const Datum> after, const SourceInfo& source,
                        int64_t processed_time_ns, std::string* out,
                        const TransactionInfo* transaction, KeySpans* before_keys = nullptr,
                        KeySpans* after_keys = nullptr) const;
  void AppendSource(const TableEncoding& table, const SourceInfo& source, std::string* out) const;
  Status AppendRow(const TableEncoding& table, std::span<const Datum> row, std::string* out,
                   KeySpans* keys = nullptr) const;

  EncoderOptions options_;
  std::string escaped_server_name_;  // JSON string literal, quotes included
  std::string escaped_database_;
  std::string escaped_version_;
};

}  // namespace splitstream::debezium

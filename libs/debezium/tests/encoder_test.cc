#include "splitstream/debezium/encoder.h"

#include <gtest/gtest.h>
#include <regex.h>
#include <simdjson.h>

#include <string>
#include <vector>

#include "splitstream/debezium/decoder.h"
#include "test_util.h"

namespace splitstream::debezium {
namespace {

using testing::JsonDiff;
using testing::JsonDiffText;
using testing::ReadTestdata;

Datum T(std::string_view s) { return {DatumKind::kText, s}; }
Datum Null() { return {DatumKind::kNull, {}}; }
Datum Toast() { return {DatumKind::kUnchangedToast, {}}; }

TableSchema EventsSchema() {
  return {"public",
          "events",
          {{"event_id", 2950, -1, true},
           {"experiment_id", 20, -1, false},
           {"variant_id", 20, -1, false},
           {"user_id", 25, -1, false},
           {"event_type", 25, -1, false},
           {"value", 701, -1, false},
           {"properties", 3802, -1, false},
           {"ts", 1184, -1, false}},
          {}};
}

const std::vector<Datum> kEventRow = {T("0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69"),
                                      T("7"),
                                      T("12"),
                                      T("u-42"),
                                      T("purchase"),
                                      T("19.99"),
                                      T("{\"sku\": \"A-1\"}"),
                                      T("2026-11-20 10:11:12.345678+00")};

// A delete's old row under REPLICA IDENTITY DEFAULT: the key, every other column null.
std::vector<Datum> EventKeyOnly() {
  std::vector<Datum> row(kEventRow.size(), Null());
  row[0] = kEventRow[0];
  return row;
}

SourceInfo EventSource() { return {1795169472345678, "false", Lsn(24023119), Lsn(24023128), 555}; }

EncoderOptions Options(bool schemas = false) {
  EncoderOptions o;
  o.database = "splitstream";
  o.schemas_enable = schemas;
  return o;
}

TEST(EncoderTest, EventsCreateEnvelopeIsByteExact) {
  Encoder enc(Options());
  auto table = enc.Prepare(EventsSchema());
  std::string out;
  ASSERT_TRUE(
      enc.EncodeValue(*table, Op::kCreate, {}, kEventRow, EventSource(), 1795169472400001002, &out)
          .ok());
  EXPECT_EQ(
      out, R"({"before":null,"after":{"event_id":"0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69",)"
           R"("experiment_id":7,"variant_id":12,"user_id":"u-42","event_type":"purchase",)"
           R"("value":19.99,"properties":"{\"sku\": \"A-1\"}","ts":"2026-11-20T10:11:12.345678Z"},)"
           R"("source":{"version":"3.1.3.Final","connector":"postgresql","name":"dbserver1",)"
           R"("ts_ms":1795169472345,"snapshot":"false","db":"splitstream",)"
           R"("sequence":"[\"24023119\",\"24023128\"]","ts_us":1795169472345678,)"
           R"("ts_ns":1795169472345678000,"schema":"public","table":"events","txId":555,)"
           R"("lsn":24023128,"xmin":null},"transaction":null,"op":"c","ts_ms":1795169472400,)"
           R"("ts_us":1795169472400001,"ts_ns":1795169472400001002})");
  EXPECT_EQ(enc.Topic(*table), "dbserver1.public.events");
}

// The sink subscribes with this pattern: librdkafka takes a subscription that starts with '^'
// as a POSIX extended regular expression (anchored by that '^').
TEST(EncoderTest, TableTopicsPatternMatchesTheTableTopicsAndNothingElse) {
  EXPECT_EQ(TableTopicsPattern("dbserver1", "public"), R"(^dbserver1\.public\..*)");
  EncoderOptions o = Options();
  o.server_name = "shop.eu+1";
  Encoder enc(o);
  auto table = enc.Prepare(EventsSchema());
  regex_t re;
  ASSERT_EQ(
      regcomp(&re, TableTopicsPattern(o.server_name, "public").c_str(), REG_EXTENDED | REG_NOSUB),
      0);
  auto matches = [&re](const std::string& topic) {
    return regexec(&re, topic.c_str(), 0, nullptr, 0) == 0;
  };
  EXPECT_TRUE(matches(enc.Topic(*table))) << enc.Topic(*table);
  for (const std::string& other :
       {enc.TransactionTopic(), enc.HeartbeatTopic(), std::string("shopXeu+1.public.events"),
        std::string("shop.euu1.public.events"), std::string("shop.eu+1.publicX.events"),
        std::string("x.shop.eu+1.public.events"), std::string("shop.eu+1.other.events")}) {
    EXPECT_FALSE(matches(other)) << other;
  }
  regfree(&re);
}

TEST(EncoderTest, KeyHoldsKeyColumnsOnly) {
  Encoder enc(Options());
  auto table = enc.Prepare(EventsSchema());
  std::string key;
  ASSERT_TRUE(enc.EncodeKey(*table, kEventRow, &key));
  EXPECT_EQ(key, R"({"event_id":"0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69"})");

  TableSchema keyless = EventsSchema();
  for (Column& c : keyless.columns) c.key = false;
  auto t2 = enc.Prepare(keyless);
  EXPECT_FALSE(t2->has_key());
  EXPECT_FALSE(enc.EncodeKey(*t2, kEventRow, &key));
  EXPECT_TRUE(key.empty());
}

TEST(EncoderTest, SchemaEnabledKeyAndValue) {
  Encoder enc(Options(true));
  auto table = enc.Prepare(EventsSchema());
  std::string key, value;
  ASSERT_TRUE(enc.EncodeKey(*table, kEventRow, &key));
  EXPECT_EQ(
      JsonDiffText(key, R"({"schema":{"type":"struct","fields":[{"type":"string","optional":false,)"
                        R"("name":"io.debezium.data.Uuid","version":1,"field":"event_id"}],)"
                        R"("optional":false,"name":"dbserver1.public.events.Key"},)"
                        R"("payload":{"event_id":"0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69"}})"),
      "");
  ASSERT_TRUE(enc.EncodeValue(*table, Op::kCreate, {}, kEventRow, EventSource(), 1, &value).ok());
  simdjson::dom::parser p;
  simdjson::dom::element doc = p.parse(value);
  EXPECT_EQ(std::string_view(doc["schema"]["name"]), "dbserver1.public.events.Envelope");
  EXPECT_EQ(int64_t(doc["schema"]["version"]), 2);
  simdjson::dom::array fields = doc["schema"]["fields"];
  std::vector<std::string> names;
  for (auto f : fields) names.emplace_back(std::string_view(f["field"]));
  EXPECT_EQ(names, (std::vector<std::string>{"before", "after", "source", "transaction", "op",
                                             "ts_ms", "ts_us", "ts_ns"}));
  EXPECT_EQ(std::string_view(doc["payload"]["after"]["user_id"]), "u-42");
}

TEST(EncoderTest, TypeMappingTable) {
  std::string data = ReadTestdata("types.json");
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(data);
  int n = 0;
  for (simdjson::dom::element c : simdjson::dom::array(root["cases"])) {
    for (bool schemas : {false, true}) {
      EncoderOptions o = Options(schemas);
      std::string_view mode;
      if (c["mode"].get(mode) == simdjson::SUCCESS) {
        o.decimal_mode = mode == "string" ? DecimalMode::kString : DecimalMode::kDouble;
      }
      TableSchema s{"public",
                    "t",
                    {{"c", uint32_t(int64_t(c["oid"])), int32_t(int64_t(c["typmod"])), false}},
                    {}};
      std::string_view custom;
      if (c["custom"].get(custom) == simdjson::SUCCESS)
        s.custom_types[s.columns[0].type_oid] = custom;
      Encoder enc(o);
      auto table = enc.Prepare(s);
      std::string_view text = c["text"];
      std::vector<Datum> row = {T(text)};
      std::string out;
      Status st = enc.EncodeValue(*table, Op::kCreate, {}, row, EventSource(), 0, &out);
      ASSERT_TRUE(st.ok()) << text << ": " << st.ToString();
      simdjson::dom::parser op;
      simdjson::dom::element doc;
      ASSERT_EQ(op.parse(out).get(doc), simdjson::SUCCESS) << out;
      simdjson::dom::element payload = schemas ? doc["payload"] : doc;
      std::string diff = JsonDiff(payload["after"]["c"].value(), c["json"].value());
      EXPECT_EQ(diff, "") << "oid " << int64_t(c["oid"]) << " text '" << text << "' -> " << out;
      std::string_view raw;
      if (!schemas && c["raw"].get(raw) == simdjson::SUCCESS) {
        std::string needle = "\"after\":{\"c\":" + std::string(raw) + "}";
        EXPECT_NE(out.find(needle), std::string::npos) << out << " lacks " << needle;
      }
      if (schemas) {
        simdjson::dom::element field = doc["schema"]["fields"].at(1)["fields"].at(0);
        std::string_view name, want = c["schema"];
        if (field["name"].get(name) != simdjson::SUCCESS) name = std::string_view(field["type"]);
        EXPECT_EQ(name, want) << text;
        std::string_view scale;
        if (c["scale"].get(scale) == simdjson::SUCCESS) {
          EXPECT_EQ(std::string_view(field["parameters"]["scale"]), scale);
        }
        EXPECT_TRUE(bool(field["optional"]));
      }
      ++n;
    }
  }
  EXPECT_GT(n, 150);
}

TEST(EncoderTest, InvalidValuesNameTheColumn) {
  std::string data = ReadTestdata("types.json");
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(data);
  for (simdjson::dom::element c : simdjson::dom::array(root["invalid"])) {
    TableSchema s{"public",
                  "t",
                  {{"c", uint32_t(int64_t(c["oid"])), int32_t(int64_t(c["typmod"])), false}},
                  {}};
    Encoder enc(Options());
    auto table = enc.Prepare(s);
    std::string_view text = c["text"];
    std::vector<Datum> row = {T(text)};
    std::string out;
    Status st = enc.EncodeValue(*table, Op::kCreate, {}, row, EventSource(), 0, &out);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << "accepted '" << text << "': " << out;
    EXPECT_EQ(st.field(), "public.t.c");
    EXPECT_NE(st.message().find("public.t.c"), std::string::npos) << st.message();
  }
}

TEST(EncoderTest, RowWidthMismatchIsInvalid) {
  Encoder enc(Options());
  auto table = enc.Prepare(EventsSchema());
  std::vector<Datum> short_row = {T("x")};
  std::string out;
  EXPECT_EQ(enc.EncodeValue(*table, Op::kCreate, {}, short_row, EventSource(), 0, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(enc.EncodeValue(*table, Op::kMessage, {}, kEventRow, EventSource(), 0, &out).code(),
            StatusCode::kInvalidArgument);
}

TEST(EncoderTest, UnchangedToastPlaceholder) {
  TableSchema s{"public",
                "t",
                {{"id", 23, -1, true},
                 {"body", 25, -1, false},
                 {"blob", 17, -1, false},
                 {"tags", 1009, -1, false}},
                {}};
  Encoder enc(Options());
  auto table = enc.Prepare(s);
  std::vector<Datum> row = {T("1"), Toast(), Toast(), Toast()};
  std::string out;
  ASSERT_TRUE(enc.EncodeValue(*table, Op::kUpdate, {}, row, EventSource(), 0, &out).ok());
  EXPECT_NE(out.find(R"("after":{"id":1,"body":"__debezium_unavailable_value",)"
                     R"("blob":"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==",)"
                     R"("tags":["__debezium_unavailable_value"]})"),
            std::string::npos)
      << out;
}

TEST(EncoderTest, DeleteWithKeyOnlyBeforeAndNulls) {
  Encoder enc(Options());
  auto table = enc.Prepare(EventsSchema());
  const std::vector<Datum> before = EventKeyOnly();
  SourceInfo src{1000, "", Lsn(0), Lsn(0), 0};
  std::string out;
  ASSERT_TRUE(enc.EncodeValue(*table, Op::kDelete, before, {}, src, 5'000'000, &out).ok());
  EXPECT_NE(
      out.find(
          R"("before":{"event_id":"0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69","experiment_id":null,)"),
      std::string::npos);
  EXPECT_NE(out.find(R"("after":null,)"), std::string::npos);
  EXPECT_NE(out.find(R"("ts_ms":1,"snapshot":"false",)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("sequence":"[null,null]")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("txId":null,"lsn":null,"xmin":null})"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("op":"d","ts_ms":5,"ts_us":5000,"ts_ns":5000000})"), std::string::npos);
}

TEST(EncoderTest, TruncateEnvelope) {
  Encoder enc(Options());
  auto table = enc.Prepare(EventsSchema());
  std::string out;
  ASSERT_TRUE(enc.EncodeTruncate(*table, EventSource(), 7'000'000, &out).ok());
  EXPECT_TRUE(out.starts_with(R"({"before":null,"after":null,"source":{)")) << out;
  EXPECT_TRUE(
      out.ends_with(R"("transaction":null,"op":"t","ts_ms":7,"ts_us":7000,"ts_ns":7000000})"))
      << out;
}

TEST(EncoderTest, TransactionBlockHeartbeatAndTransactionTopic) {
  Encoder enc(Options());
  auto table = enc.Prepare(EventsSchema());
  TransactionInfo tx{571, Lsn(53195832), 1, 1};
  std::string out;
  ASSERT_TRUE(
      enc.EncodeValue(*table, Op::kCreate, {}, kEventRow, EventSource(), 0, &out, &tx).ok());
  EXPECT_NE(
      out.find(
          R"("transaction":{"id":"571:53195832","total_order":1,"data_collection_order":1},"op":"c")"),
      std::string::npos)
      << out;
  EXPECT_EQ(enc.HeartbeatTopic(), "__debezium-heartbeat.dbserver1");
  EXPECT_EQ(enc.EncodeHeartbeatKey(), R"({"serverName":"dbserver1"})");
  EXPECT_EQ(enc.EncodeHeartbeatValue(1559033904863), R"({"ts_ms":1559033904863})");
  EXPECT_EQ(enc.TransactionTopic(), "dbserver1.transaction");
  EXPECT_EQ(enc.EncodeTransactionKey(571, Lsn(53195832)), R"({"id":"571:53195832"})");
  EXPECT_EQ(enc.EncodeTransactionBegin(571, Lsn(53195832), 1486500577125),
            R"({"status":"BEGIN","id":"571:53195832","event_count":null,)"
            R"("data_collections":null,"ts_ms":1486500577125})");
  std::vector<std::pair<std::string, int64_t>> counts = {{"s1.a", 1}, {"s2.a", 1}};
  EXPECT_EQ(
      enc.EncodeTransactionEnd(571, Lsn(53195832), 1486500577691, 2, counts),
      R"({"status":"END","id":"571:53195832","event_count":2,"data_collections":[)"
      R"({"data_collection":"s1.a","event_count":1},{"data_collection":"s2.a","event_count":1}],)"
      R"("ts_ms":1486500577691})");
  Encoder with_schema(Options(true));
  EXPECT_EQ(JsonDiffText(
                with_schema.EncodeHeartbeatValue(5),
                R"({"schema":{"type":"struct","fields":[{"type":"int64","optional":false,)"
                R"("field":"ts_ms"}],"optional":false,"name":)"
                R"("io.debezium.connector.common.Heartbeat","version":1},"payload":{"ts_ms":5}})"),
            "");
  simdjson::dom::parser p;
  simdjson::dom::element end = p.parse(with_schema.EncodeTransactionEnd(1, Lsn(2), 3, 4, counts));
  EXPECT_EQ(std::string_view(end["schema"]["name"]),
            "io.debezium.connector.common.TransactionMetadataValue");
  EXPECT_EQ(int64_t(end["payload"]["event_count"]), 4);
}

// Golden: a real Debezium 3.1.3 message (tests/testdata/golden/README.md).
TEST(EncoderTest, GoldenCustomersUpdateDebezium313) {
  EncoderOptions o;
  o.database = "postgres";
  o.schemas_enable = true;
  Encoder enc(o);
  TableSchema s{"inventory",
                "customers",
                {{"id", 23, -1, true},
                 {"first_name", 1043, 259, false, true},
                 {"last_name", 1043, 259, false, true},
                 {"email", 1043, 259, false, true}},
                {}};
  auto table = enc.Prepare(s);
  std::vector<Datum> before = {T("1006"), T("Liam"), T("Han"), T("liam2@example.com")};
  std::vector<Datum> after = {T("1006"), T("Liam"), T("Han"), T("liam3@example.com")};
  SourceInfo src{1766925059528750, "false", Lsn(34389280), Lsn(34389336), 779};
  std::string out;
  ASSERT_TRUE(
      enc.EncodeValue(*table, Op::kUpdate, before, after, src, 1766925059873428925, &out).ok());
  std::string golden = ReadTestdata("golden/customers_update_3.1.3.json");
  // Debezium's schema carries the serial column's default (from the catalog); ours cannot.
  for (size_t at; (at = golden.find(R"("default":0,)")) != std::string::npos;) golden.erase(at, 12);
  EXPECT_EQ(JsonDiffText(out, golden), "");
  while (!golden.empty() && (golden.back() == '\n')) golden.pop_back();
  EXPECT_EQ(out, golden);  // byte-exact too: same member order and number formats
}

TEST(EncoderTest, GoldenFlightsSnapshotDebezium300) {
  EncoderOptions o;
  o.server_name = "admin_flights";
  o.database = "booking_db";
  o.version = "3.0.0.Final";
  Encoder enc(o);
  TableSchema s{"public",
                "flights",
                {{"id", 2950, -1, true},
                 {"boarding_at", 1184, -1, false},
                 {"capacity", 21, -1, false},
                 {"created_at", 1184, -1, false},
                 {"destination", 1043, -1, false},
                 {"landing_at", 1184, -1, false},
                 {"origin", 1043, -1, false},
                 {"updated_at", 1184, -1, false}},
                {}};
  auto table = enc.Prepare(s);
  std::vector<Datum> row = {T("855ac320-1067-4d99-b4f1-6d46c64c514f"),
                            T("2025-07-16 18:10:13.467+00"),
                            T("2"),
                            Null(),
                            T("Nossa"),
                            T("2025-07-19 15:10:13.467-03"),
                            T("Minha casa"),
                            T("2025-07-30 18:36:58.596117+00")};
  SourceInfo src{1753908214454091, "true", Lsn(0), Lsn(26834688), 777};
  std::string out;
  ASSERT_TRUE(enc.EncodeValue(*table, Op::kRead, {}, row, src, 1753908214565935173, &out).ok());
  std::string golden = ReadTestdata("golden/flights_read_3.0.0.json");
  EXPECT_EQ(JsonDiffText(out, golden), "");
}

// EncodeKeyAndValue shares the key columns' bytes with the value: it must write exactly what
// EncodeKey (of after, or before for a delete) and EncodeValue write, for every shape of
// change, with and without schemas.
TEST(EncoderTest, KeyAndValueInOnePassMatchSeparateCalls) {
  TableSchema two_keys{"public",
                       "assignments",
                       {{"experiment_id", 20, -1, true},
                        {"user_id", 25, -1, true},
                        {"variant_id", 20, -1, false},
                        {"assigned_at", 1184, 3, false}},
                       {}};
  TableSchema no_key{"public", "log", {{"line", 25, -1, false}}, {}};
  const std::vector<Datum> assignment = {T("3"), T("u\"7\""), T("9"),
                                         T("2026-11-20 10:11:12.5+00")};
  const std::vector<Datum> assignment_new = {T("4"), T("u8"), Null(), Toast()};
  const std::vector<Datum> key_only = {T("3"), T("u\"7\""), Null(), Null()};
  const std::vector<Datum> toast_key = {Toast(), T("u9"), T("1"), T("infinity")};
  const std::vector<Datum> events_key_only = EventKeyOnly();
  const std::vector<Datum> log_row = {T("hello")};
  struct Case {
    const TableSchema* schema;
    Op op;
    std::vector<Datum> before, after;
  };
  const TableSchema events = EventsSchema();
  const std::vector<Case> cases = {
      {&events, Op::kCreate, {}, kEventRow},
      {&events, Op::kRead, {}, kEventRow},
      {&events, Op::kUpdate, kEventRow, kEventRow},
      {&events, Op::kDelete, events_key_only, {}},
      {&events, Op::kCreate, {}, {}},
      {&two_keys, Op::kCreate, {}, assignment},
      {&two_keys, Op::kUpdate, assignment, assignment_new},
      {&two_keys, Op::kUpdate, {}, assignment_new},
      {&two_keys, Op::kDelete, key_only, {}},
      {&two_keys, Op::kUpdate, {}, toast_key},
      {&no_key, Op::kCreate, {}, log_row},
      {&no_key, Op::kDelete, log_row, {}},
  };
  for (bool schemas : {false, true}) {
    Encoder enc(Options(schemas));
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      auto table = enc.Prepare(*c.schema);
      std::string key, value, one_key = "stale", one_value = "stale";
      const bool has_key = enc.EncodeKey(*table, c.after.empty() ? c.before : c.after, &key);
      ASSERT_TRUE(enc.EncodeValue(*table, c.op, c.before, c.after, EventSource(), 77, &value).ok());
      bool one_has_key = !has_key;
      ASSERT_TRUE(enc.EncodeKeyAndValue(*table, c.op, c.before, c.after, EventSource(), 77,
                                        &one_key, &one_has_key, &one_value)
                      .ok());
      EXPECT_EQ(one_has_key, has_key) << "case " << i;
      if (has_key) {
        EXPECT_EQ(one_key, key) << "case " << i << " schemas " << schemas;
      }
      EXPECT_EQ(one_value, value) << "case " << i << " schemas " << schemas;
    }
  }
  // The value's error is reported.
  Encoder enc(Options());
  auto table = enc.Prepare(EventsSchema());
  std::vector<Datum> bad = kEventRow;
  bad[1] = T("seven");
  std::string key, value;
  bool has_key = false;
  EXPECT_EQ(
      enc.EncodeKeyAndValue(*table, Op::kCreate, {}, bad, EventSource(), 0, &key, &has_key, &value)
          .code(),
      StatusCode::kInvalidArgument);
}

// Round trip: what the encoder writes, the decoder reads back to the same values.
TEST(EncoderTest, RoundTripThroughDecoder) {
  for (bool schemas : {false, true}) {
    Encoder enc(Options(schemas));
    auto table = enc.Prepare(EventsSchema());
    std::string key, value;
    ASSERT_TRUE(enc.EncodeKey(*table, kEventRow, &key));
    ASSERT_TRUE(
        enc.EncodeValue(*table, Op::kUpdate, kEventRow, kEventRow, EventSource(), 9, &value).ok());
    Decoder dec;
    auto rec = dec.Decode(enc.Topic(*table), key, value);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ(rec->format, SourceFormat::kDebezium);
    EXPECT_EQ(rec->kind, ChangeRecord::Kind::kRow);
    EXPECT_EQ(rec->op, Op::kUpdate);
    EXPECT_EQ(rec->schema, "public");
    EXPECT_EQ(rec->table, "events");
    EXPECT_EQ(rec->lsn, Lsn(24023128));
    EXPECT_EQ(rec->commit_lsn, Lsn(24023119));
    EXPECT_EQ(rec->source_ts_ms, 1795169472345);
    EXPECT_EQ(rec->tx_id, 555u);
    EXPECT_EQ(rec->snapshot, "false");
    ASSERT_TRUE(rec->after && rec->before && rec->key);
    const RowImage& a = *rec->after;
    ASSERT_EQ(a.fields.size(), 8u);
    EXPECT_EQ(a.Find("event_id")->s, "0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69");
    EXPECT_EQ(a.Find("experiment_id")->i, 7);
    EXPECT_EQ(a.Find("variant_id")->i, 12);
    EXPECT_EQ(a.Find("user_id")->s, "u-42");
    EXPECT_EQ(a.Find("value")->kind, FieldKind::kDouble);
    EXPECT_EQ(a.Find("value")->d, 19.99);
    EXPECT_EQ(a.Find("properties")->s, "{\"sku\": \"A-1\"}");
    EXPECT_EQ(a.Find("ts")->s, "2026-11-20T10:11:12.345678Z");
    EXPECT_EQ(rec->key->fields.size(), 1u);
    EXPECT_EQ(rec->key->fields[0].s, "0b6f6e1c-9d0a-4c43-8a1e-1f2d3c4b5a69");
    if (schemas) {
      ASSERT_EQ(rec->after_schema.size(), 8u);
      EXPECT_EQ(rec->after_schema[7],
                (std::pair<std::string, std::string>{"ts", "io.debezium.time.ZonedTimestamp"}));
      EXPECT_EQ(rec->after_schema[1],
                (std::pair<std::string, std::string>{"experiment_id", "int64"}));
    } else {
      EXPECT_TRUE(rec->after_schema.empty());
    }
  }
}

// Every type case encodes, decodes, and comes back as the expected value.
TEST(EncoderTest, RoundTripEveryTypeCase) {
  std::string data = ReadTestdata("types.json");
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(data);
  Decoder dec;
  for (simdjson::dom::element c : simdjson::dom::array(root["cases"])) {
    EncoderOptions o = Options();
    std::string_view mode;
    if (c["mode"].get(mode) == simdjson::SUCCESS) {
      o.decimal_mode = mode == "string" ? DecimalMode::kString : DecimalMode::kDouble;
    }
    Encoder enc(o);
    TableSchema s{"public",
                  "t",
                  {{"k", 23, -1, true},
                   {"c", uint32_t(int64_t(c["oid"])), int32_t(int64_t(c["typmod"])), false}},
                  {}};
    std::string_view custom;
    if (c["custom"].get(custom) == simdjson::SUCCESS)
      s.custom_types[s.columns[1].type_oid] = custom;
    auto table = enc.Prepare(s);
    std::vector<Datum> row = {T("1"), T(std::string_view(c["text"]))};
    std::string key, value;
    enc.EncodeKey(*table, row, &key);
    ASSERT_TRUE(enc.EncodeValue(*table, Op::kCreate, {}, row, EventSource(), 0, &value).ok());
    auto rec = dec.Decode("dbserver1.public.t", key, value);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    const Field* f = rec->after->Find("c");
    ASSERT_NE(f, nullptr);
    simdjson::dom::element want = c["json"];
    switch (want.type()) {
      case simdjson::dom::element_type::INT64:
        EXPECT_EQ(f->i, int64_t(want));
        break;
      case simdjson::dom::element_type::UINT64:
        EXPECT_EQ(f->d, double(uint64_t(want)));
        break;
      case simdjson::dom::element_type::DOUBLE:
        EXPECT_EQ(f->d, double(want));
        break;
      case simdjson::dom::element_type::STRING:
        EXPECT_EQ(f->s, std::string_view(want));
        break;
      case simdjson::dom::element_type::BOOL:
        EXPECT_EQ(f->b, bool(want));
        break;
      default:
        EXPECT_EQ(JsonDiffText(f->s, simdjson::minify(want)), "") << f->s;
        break;
    }
  }
}

}  // namespace
}  // namespace splitstream::debezium

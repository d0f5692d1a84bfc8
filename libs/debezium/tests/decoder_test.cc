#include "splitstream/debezium/decoder.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <string>
#include <vector>

#include "test_util.h"

namespace splitstream::debezium {
namespace {

using testing::JsonDiffText;
using testing::ReadTestdata;

constexpr std::string_view kEnvelope =
    R"({"before":null,"after":{"id":1,"name":"x","score":1.5,"tags":["a"],"meta":{"k":true},"gone":null},)"
    R"("source":{"version":"3.1.3.Final","connector":"postgresql","name":"dbserver1","ts_ms":1559033904863,)"
    R"("snapshot":"false","db":"postgres","sequence":"[\"24023119\",\"24023128\"]","ts_us":1559033904863123,)"
    R"("ts_ns":1559033904863123000,"schema":"public","table":"customers","txId":555,"lsn":24023128,"xmin":null},)"
    R"("transaction":null,"op":"c","ts_ms":1559033904863,"ts_us":1559033904863841,"ts_ns":1559033904863841257})";

TEST(DecoderTest, DebeziumCreate) {
  Decoder dec;
  auto rec = dec.DecodeDebezium("dbserver1.public.customers", R"({"id":1})", kEnvelope);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->kind, ChangeRecord::Kind::kRow);
  EXPECT_EQ(rec->op, Op::kCreate);
  EXPECT_EQ(rec->schema, "public");
  EXPECT_EQ(rec->table, "customers");
  EXPECT_EQ(rec->lsn, Lsn(24023128));
  EXPECT_EQ(rec->commit_lsn, Lsn(24023119));
  EXPECT_EQ(rec->source_ts_ms, 1559033904863);
  EXPECT_FALSE(rec->before.has_value());
  const RowImage& a = *rec->after;
  EXPECT_EQ(a.Find("id")->kind, FieldKind::kInt);
  EXPECT_EQ(a.Find("name")->kind, FieldKind::kString);
  EXPECT_EQ(a.Find("score")->d, 1.5);
  EXPECT_EQ(a.Find("tags")->kind, FieldKind::kJson);
  EXPECT_EQ(a.Find("tags")->s, R"(["a"])");
  EXPECT_EQ(a.Find("meta")->s, R"({"k":true})");
  EXPECT_EQ(a.Find("gone")->kind, FieldKind::kNull);
  EXPECT_EQ(rec->key->Find("id")->i, 1);
}

TEST(DecoderTest, TombstoneTakesTableFromTopic) {
  Decoder dec;
  auto rec = dec.Decode("my.prefix.public.events", R"({"event_id":"e1"})", std::nullopt);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->kind, ChangeRecord::Kind::kTombstone);
  EXPECT_EQ(rec->schema, "public");
  EXPECT_EQ(rec->table, "events");
  EXPECT_EQ(rec->key->Find("event_id")->s, "e1");
  EXPECT_FALSE(dec.Decode("events", R"({"a":1})", std::nullopt).ok());
  EXPECT_FALSE(dec.DecodeChangefeed("t", "[1]", std::nullopt).ok());
}

TEST(DecoderTest, TruncateAndMessage) {
  Decoder dec;
  std::string v(kEnvelope);
  v.replace(v.find(R"("op":"c")"), 8, R"("op":"t")");
  auto rec = dec.Decode("dbserver1.public.customers", std::nullopt, v);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->kind, ChangeRecord::Kind::kTruncate);
  auto msg = dec.Decode(
      "dbserver1.message", std::nullopt,
      R"({"source":{"connector":"postgresql","schema":"","table":"","lsn":4},"op":"m","message":{"prefix":"foo","content":"Ymfy"}})");
  ASSERT_TRUE(msg.ok()) << msg.status().ToString();
  EXPECT_EQ(msg->kind, ChangeRecord::Kind::kMessage);
}

TEST(DecoderTest, MalformedFieldsNameTheirPath) {
  Decoder dec;
  struct Case {
    std::string from, to, message;
  };
  std::vector<Case> cases = {
      {R"("lsn":24023128)", R"("lsn":"x")", "value.source.lsn: expected integer"},
      {R"("op":"c")", R"("op":"z")", "value.op: unknown operation 'z'"},
      {R"("op":"c",)", "", "value.op: missing"},
      {R"("schema":"public",)", "", "value.source.schema: missing"},
      {R"("ts_ms":1559033904863,)", R"("ts_ms":1.5,)", "value.source.ts_ms: expected integer"},
      {R"("txId":555)", R"("txId":-1)", "value.source.txId: out of range"},
      {R"("sequence":"[\"24023119\",\"24023128\"]")", R"("sequence":"[1,2]")",
       "value.source.sequence: expected a JSON array of two LSN strings"},
      {R"("after":{"id":1,)", R"("after":[{"id":1,)", "value.after: expected object or null"},
      {R"("snapshot":"false")", R"("snapshot":3)", "value.source.snapshot: expected string"},
  };
  for (const Case& c : cases) {
    std::string v(kEnvelope);
    size_t at = v.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    v.replace(at, c.from.size(), c.to);
    if (c.to.starts_with(R"("after":[)")) v.replace(v.find(R"(},"source")"), 2, "}],");
    auto rec = dec.DecodeDebezium("dbserver1.public.customers", std::nullopt, v);
    ASSERT_FALSE(rec.ok()) << v;
    EXPECT_EQ(rec.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(rec.status().message(), c.message) << v;
  }
  auto bad_key = dec.DecodeDebezium("dbserver1.public.customers", "[1]", kEnvelope);
  EXPECT_EQ(bad_key.status().message(), "key: expected object or null");
  auto schema_wrapped = dec.DecodeDebezium(
      "t", std::nullopt,
      R"({"schema":{},"payload":{"op":"c","source":{"connector":"postgresql","schema":"s","table":"t","lsn":true}}})");
  EXPECT_EQ(schema_wrapped.status().message(), "value.payload.source.lsn: expected integer");
  EXPECT_EQ(dec.DecodeChangefeed("t", "[1]", R"({"after":{},"updated":"12"})").status().message(),
            "value.updated: expected \"<wall nanos>.<logical>\"");
  EXPECT_EQ(dec.DecodeChangefeed("t", "{}", R"({"after":{}})").status().message(),
            "key: expected array");
  EXPECT_EQ(dec.DecodeChangefeed("t", "[1]", R"({"before":{}})").status().message(),
            "value.after: missing");
}

TEST(DecoderTest, KeyUnlessAfterSkipsTheKeyOfRowsWithAnAfterImage) {
  Decoder lazy({.key = KeyDecoding::kUnlessAfter});
  Decoder eager;
  ChangeRecord rec;
  // An insert: the key is neither decoded nor validated.
  ASSERT_TRUE(lazy.DecodeInto("dbserver1.public.customers", R"({"id":1})", kEnvelope, &rec).ok());
  EXPECT_EQ(rec.after->Find("id")->i, 1);
  EXPECT_FALSE(rec.key.has_value());
  EXPECT_TRUE(lazy.DecodeInto("dbserver1.public.customers", "not json", kEnvelope, &rec).ok());
  EXPECT_FALSE(rec.key.has_value());
  EXPECT_TRUE(eager.Decode("dbserver1.public.customers", "not json", kEnvelope)
                  .status()
                  .message()
                  .starts_with("key: malformed JSON"));
  // A delete (no after) still gets its key, into the same reused record, and a bad one is
  // still an error.
  std::string del(kEnvelope);
  del.replace(del.find(R"("op":"c")"), 8, R"("op":"d")");
  del.replace(0, del.find(R"(,"source")"), R"({"before":{"id":7},"after":null)");
  ASSERT_TRUE(lazy.DecodeInto("dbserver1.public.customers", R"({"id":7})", del, &rec).ok());
  EXPECT_EQ(rec.op, Op::kDelete);
  EXPECT_FALSE(rec.after.has_value());
  ASSERT_TRUE(rec.key.has_value());
  EXPECT_EQ(rec.key->Find("id")->i, 7);
  EXPECT_EQ(lazy.Decode("dbserver1.public.customers", "[1]", del).status().message(),
            "key: expected object or null");
  // A delete that (unlike Debezium's) carries an `after` image still gets its key.
  std::string odd(kEnvelope);
  odd.replace(odd.find(R"("op":"c")"), 8, R"("op":"d")");
  auto odd_rec = lazy.Decode("dbserver1.public.customers", R"({"id":1})", odd);
  ASSERT_TRUE(odd_rec.ok()) << odd_rec.status().ToString();
  ASSERT_TRUE(odd_rec->key.has_value());
  EXPECT_EQ(odd_rec->key->Find("id")->i, 1);
  // Tombstones, and then an insert again: the key from before does not linger.
  auto tomb = lazy.Decode("dbserver1.public.customers", R"({"id":7})", std::nullopt);
  ASSERT_TRUE(tomb.ok());
  EXPECT_EQ(tomb->key->Find("id")->i, 7);
  ASSERT_TRUE(lazy.DecodeInto("dbserver1.public.customers", R"({"id":1})", kEnvelope, &rec).ok());
  EXPECT_FALSE(rec.key.has_value());
  // Changefeed: a row with `after` skips both the Kafka key and key_in_value; a delete keeps
  // the Kafka key.
  auto upsert = lazy.DecodeChangefeed("db.public.t", "[1]",
                                      R"({"after":{"id":1},"key":[1],"updated":"10.0"})");
  ASSERT_TRUE(upsert.ok()) << upsert.status().ToString();
  EXPECT_FALSE(upsert->key.has_value());
  EXPECT_TRUE(eager.DecodeChangefeed("db.public.t", "[1]", R"({"after":{"id":1}})")->key);
  auto gone = lazy.DecodeChangefeed("db.public.t", "[5]", R"({"after":null,"updated":"10.0"})");
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone->op, Op::kDelete);
  ASSERT_TRUE(gone->key.has_value());
  EXPECT_EQ(gone->key->Find("0")->i, 5);
}

// The decoder reads the envelope's members in one pass: where a member is duplicated the
// first one counts (as simdjson's at_key), and members in any order are found.
TEST(DecoderTest, EnvelopeMembersInAnyOrderFirstDuplicateWins) {
  Decoder dec;
  auto rec = dec.Decode(
      "p.public.t", std::nullopt,
      R"({"op":"u","op":"d","after":{"id":2},"source":{"lsn":5,"table":"t","schema":"public",)"
      R"("lsn":6,"connector":"postgresql","txId":3},"before":{"id":1},"after":{"id":3}})");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->op, Op::kUpdate);
  EXPECT_EQ(rec->lsn, Lsn(5));
  EXPECT_EQ(rec->tx_id, 3u);
  EXPECT_EQ(rec->after->Find("id")->i, 2);
  EXPECT_EQ(rec->before->Find("id")->i, 1);
  auto wrapped = dec.Decode(
      "p.public.t", std::nullopt,
      R"({"payload":{"source":{"connector":"postgresql","schema":"public","table":"t","lsn":1},)"
      R"("op":"c","after":{"x":1}},"schema":{}})");
  ASSERT_TRUE(wrapped.ok()) << wrapped.status().ToString();
  EXPECT_EQ(wrapped->after->Find("x")->i, 1);
}

struct Fixture {
  std::string name, topic, value;
  std::optional<std::string> key;
  std::string expect;  // JSON text
};

std::vector<Fixture> ChangefeedFixtures() {
  std::vector<Fixture> out;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(DEBEZIUM_TESTDATA_DIR) + "/changefeed")) {
    std::string text = ReadTestdata("changefeed/" + entry.path().filename().string());
    simdjson::dom::parser p;
    simdjson::dom::element doc = p.parse(text);
    Fixture f;
    f.name = entry.path().filename().string();
    f.topic = std::string(std::string_view(doc["topic"]));
    f.value = std::string(std::string_view(doc["value"]));
    std::string_view key;
    if (doc["key"].get(key) == simdjson::SUCCESS) f.key = std::string(key);
    f.expect = simdjson::minify(doc["expect"]);
    std::string_view url = doc["url"];
    EXPECT_TRUE(url.starts_with("https://www.cockroachlabs.com/docs/")) << f.name;
    out.push_back(std::move(f));
  }
  EXPECT_GE(out.size(), 8u);
  return out;
}

std::string RowJson(const RowImage& row) {
  std::string s = "{";
  for (const Field& f : row.fields) {
    if (s.size() > 1) s += ",";
    s += "\"" + f.name + "\":";
    switch (f.kind) {
      case FieldKind::kNull:
        s += "null";
        break;
      case FieldKind::kBool:
        s += f.b ? "true" : "false";
        break;
      case FieldKind::kInt:
        s += std::to_string(f.i);
        break;
      case FieldKind::kDouble: {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.17g", f.d);
        s += buf;
        break;
      }
      case FieldKind::kString:
        s += "\"" + f.s + "\"";
        break;
      case FieldKind::kJson:
        s += f.s;
        break;
    }
  }
  return s + "}";
}

TEST(DecoderTest, ChangefeedDocumentedExamples) {
  Decoder dec;
  for (const Fixture& f : ChangefeedFixtures()) {
    SCOPED_TRACE(f.name);
    for (bool guess : {false, true}) {
      auto rec = guess ? dec.Decode(f.topic, f.key, f.value)
                       : dec.DecodeChangefeed(f.topic, f.key, f.value);
      ASSERT_TRUE(rec.ok()) << rec.status().ToString();
      EXPECT_EQ(rec->format, SourceFormat::kChangefeed);
      simdjson::dom::parser p;
      simdjson::dom::element e = p.parse(f.expect);
      std::string_view kind = e["kind"];
      EXPECT_EQ(rec->kind,
                kind == "resolved" ? ChangeRecord::Kind::kResolved : ChangeRecord::Kind::kRow);
      std::string_view s;
      int64_t i;
      if (e["op"].get(s) == simdjson::SUCCESS) {
        EXPECT_EQ(static_cast<char>(rec->op), s[0]);
      }
      if (e["table"].get(s) == simdjson::SUCCESS) {
        EXPECT_EQ(rec->table, s);
      }
      if (e["schema"].get(s) == simdjson::SUCCESS) {
        EXPECT_EQ(rec->schema, s);
      }
      if (e["resolved"].get(s) == simdjson::SUCCESS) {
        EXPECT_EQ(rec->resolved, s);
      }
      if (e["hlc_wall_ns"].get(i) == simdjson::SUCCESS) {
        EXPECT_EQ(rec->hlc_wall_ns, i);
      }
      if (e["hlc_logical"].get(i) == simdjson::SUCCESS) {
        EXPECT_EQ(rec->hlc_logical, i);
      }
      if (e["source_ts_ms"].get(i) == simdjson::SUCCESS) {
        EXPECT_EQ(rec->source_ts_ms, i);
      }
      simdjson::dom::element x;
      for (auto [name, image] : {std::pair{"after", &rec->after}, std::pair{"before", &rec->before},
                                 std::pair{"key", &rec->key}}) {
        if (e[name].get(x) != simdjson::SUCCESS) continue;
        if (x.type() == simdjson::dom::element_type::NULL_VALUE) {
          EXPECT_FALSE(image->has_value()) << name;
        } else {
          ASSERT_TRUE(image->has_value()) << name;
          EXPECT_EQ(JsonDiffText(RowJson(**image), simdjson::minify(x)), "")
              << name << " " << RowJson(**image);
        }
      }
    }
  }
}

// Every proper prefix of a valid message is an error, never a crash (run under ASan/UBSan).
TEST(DecoderTest, EveryPrefixIsAnError) {
  std::vector<std::pair<std::string, std::optional<std::string>>> messages = {
      {std::string(kEnvelope), R"({"id":1})"},
      {ReadTestdata("golden/customers_update_3.1.3.json"), R"({"id":1006})"},
      {ReadTestdata("golden/flights_read_3.0.0.json"), std::nullopt},
  };
  for (const Fixture& f : ChangefeedFixtures()) messages.emplace_back(f.value, f.key);
  Decoder dec;
  for (const auto& [value, key] : messages) {
    std::string v = value;
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    ASSERT_TRUE(dec.Decode("dbserver1.public.t", key, v).ok()) << v;
    for (size_t n = 0; n < v.size(); ++n) {
      std::string prefix = v.substr(0, n);  // own allocation: ASan sees reads past the end
      EXPECT_FALSE(dec.Decode("dbserver1.public.t", key, prefix).ok()) << prefix;
      EXPECT_FALSE(dec.DecodeDebezium("dbserver1.public.t", key, prefix).ok());
      EXPECT_FALSE(dec.DecodeChangefeed("dbserver1.public.t", key, prefix).ok());
    }
    if (key) {
      for (size_t n = 0; n < key->size(); ++n) {
        std::string prefix = key->substr(0, n);
        EXPECT_FALSE(dec.Decode("dbserver1.public.t", prefix, v).ok()) << prefix;
      }
    }
  }
}

TEST(DecoderTest, GuessesDebeziumOnlyFromASourceWithConnector) {
  Decoder dec;
  auto rec =
      dec.Decode("x.t", "[1]", R"({"after":{"id":1},"source":{"cluster_name":"c"},"op":"c"})");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(rec->format, SourceFormat::kChangefeed);
  EXPECT_EQ(rec->op, Op::kCreate);
  EXPECT_EQ(rec->schema, "x");
  EXPECT_EQ(rec->table, "t");
}

}  // namespace
}  // namespace splitstream::debezium

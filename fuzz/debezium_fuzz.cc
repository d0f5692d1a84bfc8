// Fuzzes libs/debezium. The first byte picks what the rest of the input is:
//   0-2: a Kafka message for Decoder::DecodeDebezium / DecodeChangefeed / Decode, the key and the
//        value separated by the first NUL (no NUL: null key; a lone trailing NUL: null value);
//   3:   PostgreSQL text output of the column type picked by the second byte, encoded by
//        Encoder::EncodeValue (plain and schema-enabled). An accepted value must yield JSON that
//        the decoder reads back.
// Nothing may crash, read out of bounds or hit undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/debezium/decoder.h"
#include "splitstream/debezium/encoder.h"

namespace sd = splitstream::debezium;

namespace {

struct TypeCase {
  uint32_t oid;
  int32_t typmod;
};
constexpr TypeCase kTypes[] = {
    {21, -1},   {23, -1},       {20, -1},       {26, -1},   {700, -1},  {701, -1},  {16, -1},
    {1700, -1}, {1700, 655366}, {1700, 327684}, {25, -1},   {3802, -1}, {2950, -1}, {1184, -1},
    {1184, 3},  {1184, 0},      {1114, -1},     {1114, 3},  {1082, -1}, {1083, -1}, {1083, 3},
    {1266, -1}, {1186, -1},     {17, -1},       {1007, -1}, {1009, -1}, {1022, -1}, {1000, -1},
    {1231, -1}, {1231, 655366}, {1016, -1},     {2951, -1}, {1185, -1}, {1187, -1}, {99999, -1},
};

void FuzzEncoder(uint8_t selector, std::string_view text) {
  const TypeCase& t = kTypes[selector % (sizeof(kTypes) / sizeof(kTypes[0]))];
  static sd::Decoder decoder;
  for (int variant = 0; variant < 3; ++variant) {
    sd::EncoderOptions options;
    options.schemas_enable = variant == 1;
    options.decimal_mode = variant == 2 ? sd::DecimalMode::kString : sd::DecimalMode::kPrecise;
    sd::Encoder encoder(options);
    auto table =
        encoder.Prepare({"public", "t", {{"k", 23, -1, true}, {"c", t.oid, t.typmod, false}}, {}});
    std::vector<sd::Datum> row = {{sd::DatumKind::kText, "1"}, {sd::DatumKind::kText, text}};
    std::string key, value;
    encoder.EncodeKey(*table, row, &key);
    sd::SourceInfo source{1, "false", splitstream::Lsn(1), splitstream::Lsn(2), 3};
    if (!encoder.EncodeValue(*table, sd::Op::kCreate, {}, row, source, 4, &value).ok()) continue;
    auto rec = decoder.Decode("dbserver1.public.t", key, value);
    if (!rec.ok() || !rec->after || rec->after->fields.size() != 2) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0] % 4;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (mode == 3) {
    if (rest.empty()) return 0;
    FuzzEncoder(static_cast<uint8_t>(rest[0]), rest.substr(1));
    return 0;
  }
  std::optional<std::string_view> key, value = rest;
  if (size_t nul = rest.find('\0'); nul != std::string_view::npos) {
    key = rest.substr(0, nul);
    value = rest.substr(nul + 1);
    if (value->empty()) value.reset();
  }
  // Copies: the decoder must not read past the bytes it is given.
  std::optional<std::string> key_copy, value_copy;
  if (key) key_copy.emplace(*key);
  if (value) value_copy.emplace(*value);
  std::optional<std::string_view> k, v;
  if (key_copy) k = *key_copy;
  if (value_copy) v = *value_copy;
  static sd::Decoder decoder;
  switch (mode) {
    case 0:
      (void)decoder.DecodeDebezium("dbserver1.public.t", k, v);
      break;
    case 1:
      (void)decoder.DecodeChangefeed("db.public.t", k, v);
      break;
    default:
      (void)decoder.Decode("dbserver1.public.t", k, v);
      break;
  }
  return 0;
}

// Lsn: a PostgreSQL write-ahead-log position (XLogRecPtr), printed as "16/B374D848".
// A strong type so that an LSN is never confused with a Kafka offset or a row count.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "splitstream/core/named_type.h"

namespace splitstream {

using Lsn = NamedType<uint64_t, struct LsnTag>;

// "16/B374D848": the high and low 32 bits in upper-case hexadecimal, as PostgreSQL prints.
std::string LsnToString(Lsn lsn);

// Parses PostgreSQL's text form; nullopt when `text` is not "<hex>/<hex>" with each part at
// most 8 digits.
std::optional<Lsn> ParseLsn(std::string_view text);

}  // namespace splitstream

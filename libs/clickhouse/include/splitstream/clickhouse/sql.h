// Building ClickHouse SQL at run time and reading its TabSeparated output. Pure functions,
// thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/core/result.h"

namespace splitstream::clickhouse {

// `name` as one backquoted identifier: `a``b` style is not used; backquote and backslash are
// backslash-escaped and control characters written as escapes, which 18.16 and current
// releases both read back to the same name. Quote each part of a qualified name separately:
// QuoteIdentifier(db) + "." + QuoteIdentifier(table).
std::string QuoteIdentifier(std::string_view name);

// `value` as a single-quoted string literal: quote and backslash are backslash-escaped and
// control bytes (including NUL) written as \xHH, so any byte string round-trips and nothing
// after it is read as SQL.
std::string QuoteString(std::string_view value);

// True when `name` is a plain format or setting name ([A-Za-z_][A-Za-z0-9_]*), safe to splice
// into SQL or a URL without quoting.
bool IsPlainName(std::string_view name);

// One row of TabSeparated output; std::nullopt is SQL NULL (\N).
using NullableRow = std::vector<std::optional<std::string>>;

// Splits ClickHouse's TabSeparated output into rows and fields and undoes its escapes
// (\t \n \r \b \f \0 \\ \' \" \a \v \e \xHH; an unknown \c stands for c, as ClickHouse reads
// it). A field that is exactly \N is NULL. Every line ends with \n; a final line without it
// is accepted. An empty body is zero rows. InvalidArgument on a dangling backslash or a bad
// \x escape.
Result<std::vector<NullableRow>> ParseTabSeparated(std::string_view body);

}  // namespace splitstream::clickhouse

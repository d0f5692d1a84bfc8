#include "splitstream/clickhouse/sql.h"

namespace splitstream::clickhouse {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

// Appends `value` with `quote` and backslash escaped; every byte below 0x20 and DEL become
// \xHH so the literal stays on one line and NUL cannot end it early in any reader.
void AppendEscaped(std::string& out, std::string_view value, char quote) {
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string QuoteIdentifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out += '`';
  AppendEscaped(out, name, '`');
  out += '`';
  return out;
}

std::string QuoteString(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out += '\'';
  AppendEscaped(out, value, '\'');
  out += '\'';
  return out;
}

bool IsPlainName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

Result<std::vector<NullableRow>> ParseTabSeparated(std::string_view body) {
  std::vector<NullableRow> rows;
  NullableRow row;
  std::string field;
  bool field_is_null_marker = false;  // the field so far is exactly the escape \N
  size_t i = 0;
  auto end_field = [&] {
    if (field_is_null_marker) {
      row.emplace_back(std::nullopt);
    } else {
      row.emplace_back(std::move(field));
    }
    field.clear();
    field_is_null_marker = false;
  };
  while (i < body.size()) {
    char c = body[i];
    if (c == '\t') {
      end_field();
      ++i;
    } else if (c == '\n') {
      end_field();
      rows.push_back(std::move(row));
      row.clear();
      ++i;
    } else if (c == '\\') {
      if (i + 1 >= body.size()) {
        return Status::InvalidArgument("TabSeparated: backslash at the end of the body");
      }
      char e = body[i + 1];
      i += 2;
      bool was_empty = field.empty() && !field_is_null_marker;
      field_is_null_marker = false;
      switch (e) {
        case 't':
          field += '\t';
          break;
        case 'n':
          field += '\n';
          break;
        case 'r':
          field += '\r';
          break;
        case 'b':
          field += '\b';
          break;
        case 'f':
          field += '\f';
          break;
        case '0':
          field += '\0';
          break;
        case 'a':
          field += '\a';
          break;
        case 'v':
          field += '\v';
          break;
        case 'e':
          field += '\x1b';
          break;
        case 'x': {
          if (i + 2 > body.size() || HexValue(body[i]) < 0 || HexValue(body[i + 1]) < 0) {
            return Status::InvalidArgument("TabSeparated: bad \\x escape");
          }
          field += static_cast<char>(HexValue(body[i]) * 16 + HexValue(body[i + 1]));
          i += 2;
          break;
        }
        case 'N':
          // \N alone is NULL; \N inside a longer field is the letter N.
          if (was_empty && (i == body.size() || body[i] == '\t' || body[i] == '\n')) {
            field_is_null_marker = true;
          } else {
            field += 'N';
          }
          break;
        default:
          field += e;
          break;  // \\ \' \" and any other escaped character
      }
    } else {
      field_is_null_marker = false;
      field += c;
      ++i;
    }
  }
  // A last line without its newline.
  if (!field.empty() || field_is_null_marker || !row.empty()) {
    end_field();
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace splitstream::clickhouse

#include "splitstream/core/strings.h"

#include <algorithm>
#include <cctype>

namespace splitstream {

std::string SanitizeForMessage(std::string_view input, size_t max_len) {
  std::string out;
  out.reserve(std::min(input.size(), max_len) + 3);
  for (char c : input) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the longer length so timing does not reveal a prefix match; the length
  // difference itself is folded into the result.
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0 && n > 0;
}

std::string RedactSecrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  auto lower_at = [&](size_t pos, std::string_view word) {
    if (pos + word.size() > text.size()) return false;
    for (size_t k = 0; k < word.size(); ++k) {
      if (std::tolower(static_cast<unsigned char>(text[pos + k])) != word[k]) return false;
    }
    return true;
  };
  while (i < text.size()) {
    if (lower_at(i, "password")) {
      // conninfo: password = value | password='quoted value'
      size_t j = i + 8;
      while (j < text.size() && text[j] == ' ') ++j;
      if (j < text.size() && text[j] == '=') {
        ++j;
        while (j < text.size() && text[j] == ' ') ++j;
        out.append(text.substr(i, j - i));
        out += "***";
        if (j < text.size() && text[j] == '\'') {
          ++j;
          while (j < text.size() && text[j] != '\'') j += text[j] == '\\' ? 2 : 1;
          i = std::min(j + 1, text.size());
        } else {
          while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
          i = j;
        }
        continue;
      }
    }
    if (text.compare(i, 3, "://") == 0) {
      // URL userinfo: scheme://user:secret@host
      size_t at = text.find('@', i + 3);
      size_t end = text.find_first_of("/ \t\n", i + 3);
      size_t colon = text.find(':', i + 3);
      if (at != std::string_view::npos && (end == std::string_view::npos || at < end) &&
          colon < at) {
        out.append(text.substr(i, colon + 1 - i));
        out += "***@";
        i = at + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

}  // namespace splitstream

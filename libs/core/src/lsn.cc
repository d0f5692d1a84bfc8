#include "splitstream/core/lsn.h"

#include <fmt/format.h>

#include <charconv>

namespace splitstream {

std::string LsnToString(Lsn lsn) {
  return fmt::format("{:X}/{:X}", lsn.value() >> 32, lsn.value() & 0xFFFFFFFFu);
}

std::optional<Lsn> ParseLsn(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto parse_half = [](std::string_view part) -> std::optional<uint64_t> {
    if (part.empty() || part.size() > 8) return std::nullopt;
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v, 16);
    if (ec != std::errc() || ptr != part.data() + part.size()) return std::nullopt;
    return v;
  };
  auto hi = parse_half(text.substr(0, slash));
  auto lo = parse_half(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return Lsn((*hi << 32) | *lo);
}

}  // namespace splitstream

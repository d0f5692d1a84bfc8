#include "text_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace splitstream::debezium::internal {
namespace {

using namespace std::string_view_literals;

constexpr char kHexUpper[] = "0123456789ABCDEF";
constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

// Jackson's escape for each ASCII byte: 0 none, a letter for the short form, 'u' for \u00XX.
constexpr auto kEscapes = [] {
  struct Table {
    char c[128];
  } t{};
  for (int i = 0; i < 0x20; ++i) t.c[i] = 'u';
  t.c[int{'\b'}] = 'b';
  t.c[int{'\t'}] = 't';
  t.c[int{'\n'}] = 'n';
  t.c[int{'\f'}] = 'f';
  t.c[int{'\r'}] = 'r';
  t.c[int{'"'}] = '"';
  t.c[int{'\\'}] = '\\';
  return t;
}();

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendBase64Group(std::string* out, const uint8_t* b, size_t n) {
  char q[4];
  uint32_t v = uint32_t{b[0]} << 16 | (n > 1 ? uint32_t{b[1]} << 8 : 0) | (n > 2 ? b[2] : 0);
  q[0] = kBase64[(v >> 18) & 63];
  q[1] = kBase64[(v >> 12) & 63];
  q[2] = n > 1 ? kBase64[(v >> 6) & 63] : '=';
  q[3] = n > 2 ? kBase64[v & 63] : '=';
  out->append(q, 4);
}

// Shortest round-trip digits of `v` (finite, non-zero) in the form Java's toString uses.
template <typename T>
void AppendJavaFloating(std::string* out, T v) {
  if (v == 0) {
    out->append(std::signbit(v) ? "-0.0" : "0.0");
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  if (std::string_view(buf, r.ptr - buf).find('.') == std::string_view::npos) {
    // One significant digit: Java (JDK 19+ Double.toString spec) picks the closest decimal of
    // two digits instead ("4.9E-324" for Double.MIN_VALUE, "1.0E23").
    r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific, 1);
  }
  std::string_view s(buf, r.ptr - buf);
  bool negative = s[0] == '-';
  if (negative) s.remove_prefix(1);
  size_t e_pos = s.find('e');
  std::string_view mantissa = s.substr(0, e_pos);
  int exponent = 0;
  std::string_view exp_text = s.substr(e_pos + 1);
  if (exp_text[0] == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  char digits[32];
  size_t n = 0;
  for (char c : mantissa) {
    if (c != '.') digits[n++] = c;
  }
  while (n > 1 && digits[n - 1] == '0') --n;  // "5.0e-01" from the two-digit pass is 0.5
  if (negative) out->push_back('-');
  if (exponent >= -3 && exponent < 7) {
    if (exponent >= 0) {
      size_t int_len = static_cast<size_t>(exponent) + 1;
      for (size_t i = 0; i < int_len; ++i) out->push_back(i < n ? digits[i] : '0');
      out->push_back('.');
      if (n > int_len) {
        out->append(digits + int_len, n - int_len);
      } else {
        out->push_back('0');
      }
    } else {
      out->append("0."sv);
      out->append(static_cast<size_t>(-exponent - 1), '0');
      out->append(digits, n);
    }
  } else {
    out->push_back(digits[0]);
    out->push_back('.');
    if (n > 1) {
      out->append(digits + 1, n - 1);
    } else {
      out->push_back('0');
    }
    out->push_back('E');
    AppendInt(out, exponent);
  }
}

// A cursor over a view that never reads past its end.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool done() const { return pos_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  bool Consume(char c) {
    if (peek() != c || done()) return false;
    ++pos_;
    return true;
  }
  // Exactly `n` digits (n > 0), or at least `n` when `more` is set.
  bool Digits(size_t n, bool more, int64_t* v) {
    size_t start = pos_;
    int64_t x = 0;
    while (!done() && s_[pos_] >= '0' && s_[pos_] <= '9' && (more || pos_ - start < n)) {
      if (x > (std::numeric_limits<int64_t>::max() - 9) / 10) return false;
      x = x * 10 + (s_[pos_] - '0');
      ++pos_;
    }
    *v = x;
    return pos_ - start >= n;
  }
  // Optional ".ffffff" (1..9 digits) as nanoseconds... scaled to microseconds (PostgreSQL
  // prints at most 6).
  bool Fraction(int64_t* micros) {
    *micros = 0;
    if (!Consume('.')) return true;
    size_t start = pos_;
    int64_t x = 0;
    while (!done() && s_[pos_] >= '0' && s_[pos_] <= '9') {
      if (pos_ - start < 6) x = x * 10 + (s_[pos_] - '0');
      ++pos_;
    }
    size_t n = pos_ - start;
    if (n == 0 || n > 9) return false;
    for (size_t i = n; i < 6; ++i) x *= 10;
    *micros = x;
    return true;
  }
  std::string_view rest() const { return s_.substr(std::min(pos_, s_.size())); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

bool StripBc(std::string_view* text) {
  constexpr std::string_view kBc = " BC";
  if (text->size() > kBc.size() && text->substr(text->size() - kBc.size()) == kBc) {
    text->remove_suffix(kBc.size());
    return true;
  }
  return false;
}

bool ReadDate(Reader* r, bool bc, int64_t* days) {
  int64_t y, m, d;
  if (!r->Digits(4, true, &y) || !r->Consume('-') || !r->Digits(2, false, &m) || !r->Consume('-') ||
      !r->Digits(2, false, &d)) {
    return false;
  }
  if (m < 1 || m > 12 || d < 1 || d > 31 || y > 10'000'000) return false;
  if (bc) y = 1 - y;
  *days = DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  return true;
}

bool ReadClock(Reader* r, int64_t* micros) {
  int64_t h, mi, s, frac;
  if (!r->Digits(2, false, &h) || !r->Consume(':') || !r->Digits(2, false, &mi) ||
      !r->Consume(':') || !r->Digits(2, false, &s) || !r->Fraction(&frac)) {
    return false;
  }
  if (h > 24 || mi > 59 || s > 60) return false;
  *micros = ((h * 60 + mi) * 60 + s) * kMicrosPerSecond + frac;
  return true;
}

// "+HH[:MM[:SS]]" -> seconds east of UTC.
bool ReadOffset(Reader* r, int64_t* seconds) {
  int sign = 0;
  if (r->Consume('+')) {
    sign = 1;
  } else if (r->Consume('-')) {
    sign = -1;
  } else {
    return false;
  }
  int64_t h, m = 0, s = 0;
  if (!r->Digits(2, false, &h)) return false;
  if (r->Consume(':')) {
    if (!r->Digits(2, false, &m)) return false;
    if (r->Consume(':') && !r->Digits(2, false, &s)) return false;
  }
  *seconds = sign * (h * 3600 + m * 60 + s);
  return true;
}

bool Infinity(std::string_view text, int* infinity) {
  if (text == "infinity") {
    *infinity = 1;
    return true;
  }
  if (text == "-infinity") {
    *infinity = -1;
    return true;
  }
  *infinity = 0;
  return false;
}

void Append2(std::string* out, int64_t v) {
  out->push_back(static_cast<char>('0' + v / 10));
  out->push_back(static_cast<char>('0' + v % 10));
}

// java.time ISO_LOCAL_DATE's year: 4 digits at least, '+' above 9999, '-' below 0.
void AppendIsoYear(std::string* out, int64_t y) {
  if (y > 9999) out->push_back('+');
  if (y < 0) out->push_back('-');
  int64_t a = y < 0 ? -y : y;
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), a);
  size_t n = static_cast<size_t>(r.ptr - buf);
  if (n < 4) out->append(4 - n, '0');
  out->append(buf, n);
}

void AppendClock(std::string* out, int64_t micros_of_day, int fraction_digits) {
  int64_t secs = micros_of_day / kMicrosPerSecond;
  int64_t sub = micros_of_day % kMicrosPerSecond;
  Append2(out, secs / 3600);
  out->push_back(':');
  Append2(out, secs / 60 % 60);
  out->push_back(':');
  Append2(out, secs % 60);
  char nanos[9];
  int64_t n = sub * 1000;
  for (int i = 8; i >= 0; --i) {
    nanos[i] = static_cast<char>('0' + n % 10);
    n /= 10;
  }
  if (fraction_digits > 0) {
    out->push_back('.');
    out->append(nanos, static_cast<size_t>(std::min(fraction_digits, 9)));
  } else if (sub != 0) {
    int len = 9;
    while (len > 0 && nanos[len - 1] == '0') --len;
    out->push_back('.');
    out->append(nanos, static_cast<size_t>(len));
  }
}

// Length of the well-formed UTF-8 sequence at s[i] (lead byte >= 0x80), or 0 when malformed
// (overlong, surrogate, above U+10FFFF, truncated).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

// Whether any of the 8 bytes of `w` needs attention in a JSON string: below 0x20, '"', '\\'
// or 0x80 and above (UTF-8 to check). Bit tricks from "Bit Twiddling Hacks" (haszero).
inline bool NeedsAttention(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint64_t below_space = (w - 0x20 * kOnes) & ~w & kHigh;
  return ((w & kHigh) | below_space | has_zero(w ^ ('"' * kOnes)) | has_zero(w ^ ('\\' * kOnes))) !=
         0;
}

void AppendJsonString(std::string* out, std::string_view s) {
  // Written in place: room for the worst case (every byte a \u00XX escape) first, the real
  // length after. Plain ASCII is copied eight bytes at a time; a block of eight holding
  // anything else is handled byte by byte.
  const size_t old_size = out->size();
  out->resize(old_size + 2 + 6 * s.size());
  char* p = out->data() + old_size;
  *p++ = '"';
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (!NeedsAttention(w)) {
        std::memcpy(p, s.data() + i, 8);
        p += 8;
        i += 8;
        continue;
      }
    }
    for (const size_t stop = std::min(n, i + 8); i < stop;) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 128) {
        // Java decodes the bytes and replaces a malformed sequence with U+FFFD; so do we, so
        // that the output is always valid UTF-8 JSON.
        const size_t len = Utf8SequenceLength(s, i);
        if (len > 0) {
          std::memcpy(p, s.data() + i, len);
          p += len;
          i += len;
        } else {
          std::memcpy(p, "\xEF\xBF\xBD", 3);
          p += 3;
          ++i;
        }
        continue;
      }
      const char e = kEscapes.c[c];
      if (e == 0) {
        *p++ = static_cast<char>(c);
      } else if (e == 'u') {
        const char u[6] = {'\\', 'u', '0', '0', kHexUpper[c >> 4], kHexUpper[c & 15]};
        std::memcpy(p, u, 6);
        p += 6;
      } else {
        *p++ = '\\';
        *p++ = e;
      }
      ++i;
    }
  }
  *p++ = '"';
  out->resize(static_cast<size_t>(p - out->data()));
}

void AppendBase64(std::string* out, std::string_view bytes) {
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) AppendBase64Group(out, b + i, 3);
  if (i < bytes.size()) AppendBase64Group(out, b + i, bytes.size() - i);
}

bool AppendByteaHexAsBase64(std::string* out, std::string_view pg_text) {
  if (pg_text.size() < 2 || pg_text[0] != '\\' || pg_text[1] != 'x' || pg_text.size() % 2 != 0) {
    return false;
  }
  uint8_t group[3];
  size_t n = 0;
  for (size_t i = 2; i < pg_text.size(); i += 2) {
    int hi = HexValue(pg_text[i]), lo = HexValue(pg_text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    group[n++] = static_cast<uint8_t>(hi << 4 | lo);
    if (n == 3) {
      AppendBase64Group(out, group, 3);
      n = 0;
    }
  }
  if (n > 0) AppendBase64Group(out, group, n);
  return true;
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

bool ParseInt64(std::string_view text, int64_t* v) {
  if (text.empty()) return false;
  auto r = std::from_chars(text.data(), text.data() + text.size(), *v);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

void AppendJavaDouble(std::string* out, double v) {
  if (std::isnan(v)) {
    out->append("\"NaN\""sv);
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    AppendJavaFloating(out, v);
  }
}

void AppendJavaFloat(std::string* out, float v) {
  if (std::isnan(v)) {
    out->append("\"NaN\""sv);
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    AppendJavaFloating(out, v);
  }
}

bool ParseDouble(std::string_view text, double* v) {
  if (text == "NaN") {
    *v = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text == "Infinity" || text == "-Infinity") {
    *v = text[0] == '-' ? -std::numeric_limits<double>::infinity()
                        : std::numeric_limits<double>::infinity();
    return true;
  }
  if (text.empty() || (!std::isdigit(static_cast<unsigned char>(text[0])) && text[0] != '-')) {
    return false;
  }
  auto r = std::from_chars(text.data(), text.data() + text.size(), *v);
  return r.ec == std::errc() && r.ptr == text.data() + text.size() && std::isfinite(*v);
}

bool ParseNumeric(std::string_view text, Decimal* out, NumericSpecial* special) {
  *special = NumericSpecial::kNone;
  if (text == "NaN") {
    *special = NumericSpecial::kNaN;
    return true;
  }
  if (text == "Infinity") {
    *special = NumericSpecial::kPositiveInfinity;
    return true;
  }
  if (text == "-Infinity") {
    *special = NumericSpecial::kNegativeInfinity;
    return true;
  }
  out->negative = false;
  out->digits.clear();
  out->scale = 0;
  size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    out->negative = true;
    ++i;
  }
  bool any_digit = false, point = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      if (point) return false;
      point = true;
      continue;
    }
    if (c < '0' || c > '9') return false;
    any_digit = true;
    if (point) ++out->scale;
    if (c == '0' && out->digits.empty()) continue;
    out->digits.push_back(c);
  }
  if (!any_digit || (point && text.back() == '.')) return false;
  if (out->digits.empty()) out->negative = false;
  return true;
}

bool Rescale(Decimal* d, int32_t scale) {
  if (d->digits.empty()) {
    d->scale = scale;
    return true;
  }
  if (scale >= d->scale) {
    d->digits.append(static_cast<size_t>(scale - d->scale), '0');
    d->scale = scale;
    return true;
  }
  size_t drop = static_cast<size_t>(d->scale - scale);
  if (drop > d->digits.size()) return false;
  for (size_t i = d->digits.size() - drop; i < d->digits.size(); ++i) {
    if (d->digits[i] != '0') return false;
  }
  d->digits.resize(d->digits.size() - drop);
  d->scale = scale;
  if (d->digits.empty()) d->negative = false;
  return true;
}

void StripTrailingZeros(Decimal* d) {
  if (d->digits.empty()) {
    d->scale = 0;
    return;
  }
  while (d->scale > 0 && d->digits.back() == '0') {
    d->digits.pop_back();
    --d->scale;
  }
  if (d->scale < 0) {
    d->digits.append(static_cast<size_t>(-d->scale), '0');
    d->scale = 0;
  }
}

void AppendUnscaledBase64(std::string* out, const Decimal& d) {
  thread_local std::vector<uint32_t> limbs;  // little-endian base 2^32 magnitude
  thread_local std::vector<uint8_t> bytes;
  limbs.clear();
  bytes.clear();
  const std::string& digits = d.digits;
  size_t i = 0;
  while (i < digits.size()) {
    size_t chunk = std::min<size_t>(9, digits.size() - i);
    uint64_t mul = 1, add = 0;
    for (size_t k = 0; k < chunk; ++k) {
      mul *= 10;
      add = add * 10 + static_cast<uint64_t>(digits[i + k] - '0');
    }
    i += chunk;
    uint64_t carry = add;
    for (uint32_t& limb : limbs) {
      uint64_t x = uint64_t{limb} * mul + carry;
      limb = static_cast<uint32_t>(x);
      carry = x >> 32;
    }
    if (carry != 0) limbs.push_back(static_cast<uint32_t>(carry));
  }
  // Big-endian magnitude without leading zero bytes.
  for (size_t k = limbs.size(); k-- > 0;) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      uint8_t b = static_cast<uint8_t>(limbs[k] >> shift);
      if (bytes.empty() && b == 0) continue;
      bytes.push_back(b);
    }
  }
  if (bytes.empty()) {
    bytes.push_back(0);
  } else if (!d.negative) {
    if (bytes[0] & 0x80) bytes.insert(bytes.begin(), 0);
  } else {
    // Two's complement: invert and add one; a leading 0 bit needs a 0xFF sign byte.
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(~b);
    for (size_t k = bytes.size(); k-- > 0;) {
      if (++bytes[k] != 0) break;
    }
    if (!(bytes[0] & 0x80)) bytes.insert(bytes.begin(), 0xFF);
  }
  AppendBase64(out, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void AppendJavaBigDecimal(std::string* out, const Decimal& d) {
  std::string_view coeff = d.digits.empty() ? std::string_view("0") : std::string_view(d.digits);
  int64_t adjusted = -int64_t{d.scale} + static_cast<int64_t>(coeff.size()) - 1;
  if (d.negative) out->push_back('-');
  if (d.scale >= 0 && adjusted >= -6) {
    size_t scale = static_cast<size_t>(d.scale);
    if (scale == 0) {
      out->append(coeff);
    } else if (coeff.size() > scale) {
      out->append(coeff.substr(0, coeff.size() - scale));
      out->push_back('.');
      out->append(coeff.substr(coeff.size() - scale));
    } else {
      out->append("0."sv);
      out->append(scale - coeff.size(), '0');
      out->append(coeff);
    }
    return;
  }
  out->push_back(coeff[0]);
  if (coeff.size() > 1) {
    out->push_back('.');
    out->append(coeff.substr(1));
  }
  out->push_back('E');
  if (adjusted >= 0) out->push_back('+');
  AppendInt(out, adjusted);
}

bool NumericTypmod(int32_t typmod, int32_t* precision, int32_t* scale) {
  if (typmod < 4) return false;
  int32_t t = typmod - 4;
  *precision = (t >> 16) & 0xffff;
  // PostgreSQL 15 allows negative scales: 11-bit two's complement.
  *scale = ((t & 0x7ff) ^ 1024) - 1024;
  return true;
}

bool ParseDate(std::string_view text, int64_t* days, int* infinity) {
  if (Infinity(text, infinity)) return true;
  bool bc = StripBc(&text);
  Reader r(text);
  return ReadDate(&r, bc, days) && r.done();
}

bool ParseTimestamp(std::string_view text, int64_t* micros, int* infinity) {
  if (Infinity(text, infinity)) return true;
  bool bc = StripBc(&text);
  Reader r(text);
  int64_t days, clock;
  if (!ReadDate(&r, bc, &days) || !r.Consume(' ') || !ReadClock(&r, &clock) || !r.done()) {
    return false;
  }
  // Years beyond PostgreSQL's range would overflow 64-bit microseconds: not a timestamp.
  return !__builtin_mul_overflow(days, kMicrosPerDay, micros) &&
         !__builtin_add_overflow(*micros, clock, micros);
}

bool ParseTimestampTz(std::string_view text, int64_t* micros, int* infinity) {
  if (Infinity(text, infinity)) return true;
  bool bc = StripBc(&text);
  Reader r(text);
  int64_t days, clock, offset;
  if (!ReadDate(&r, bc, &days) || !r.Consume(' ') || !ReadClock(&r, &clock) ||
      !ReadOffset(&r, &offset) || !r.done()) {
    return false;
  }
  return !__builtin_mul_overflow(days, kMicrosPerDay, micros) &&
         !__builtin_add_overflow(*micros, clock, micros) &&
         !__builtin_sub_overflow(*micros, offset * kMicrosPerSecond, micros);
}

bool ParseTime(std::string_view text, int64_t* micros) {
  Reader r(text);
  return ReadClock(&r, micros) && r.done() && *micros <= kMicrosPerDay;
}

bool ParseTimeTz(std::string_view text, int64_t* utc_micros) {
  Reader r(text);
  int64_t clock, offset;
  if (!ReadClock(&r, &clock) || !ReadOffset(&r, &offset) || !r.done()) return false;
  int64_t t = (clock - offset * kMicrosPerSecond) % kMicrosPerDay;
  if (t < 0) t += kMicrosPerDay;
  *utc_micros = t;
  return true;
}

bool ParseIntervalMicros(std::string_view text, int64_t* micros) {
  // Tokens: "<n> year[s]", "<n> mon[s]", "<n> day[s]" and one "[+-]H:MM:SS[.f]".
  int64_t years = 0, months = 0, days = 0, hours = 0, minutes = 0;
  double seconds = 0;
  bool any = false;
  size_t pos = 0;
  auto next_token = [&](std::string_view* tok) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    size_t start = pos;
    while (pos < text.size() && text[pos] != ' ') ++pos;
    *tok = text.substr(start, pos - start);
    return !tok->empty();
  };
  std::string_view tok;
  while (next_token(&tok)) {
    any = true;
    if (tok.find(':') != std::string_view::npos) {
      int sign = 1;
      if (tok[0] == '-' || tok[0] == '+') {
        sign = tok[0] == '-' ? -1 : 1;
        tok.remove_prefix(1);
      }
      Reader r(tok);
      int64_t h, m, s, frac;
      if (!r.Digits(1, true, &h) || !r.Consume(':') || !r.Digits(2, false, &m) || !r.Consume(':') ||
          !r.Digits(2, false, &s) || !r.Fraction(&frac) || !r.done()) {
        return false;
      }
      hours = sign * h;
      minutes = sign * m;
      // PGInterval keeps whole seconds and microseconds; getSeconds() adds them as doubles.
      seconds = sign * (static_cast<double>(s) + static_cast<double>(frac) / 1e6);
      continue;
    }
    int64_t n;
    if (!ParseInt64(tok, &n) || n > std::numeric_limits<int32_t>::max() ||
        n < std::numeric_limits<int32_t>::min()) {
      return false;
    }
    std::string_view unit;
    if (!next_token(&unit)) return false;
    if (unit == "year" || unit == "years") {
      years = n;
    } else if (unit == "mon" || unit == "mons") {
      months = n;
    } else if (unit == "day" || unit == "days") {
      days = n;
    } else {
      return false;
    }
  }
  if (!any) return false;
  // io.debezium.time.MicroDuration.durationMicros with DAYS_PER_MONTH_AVG = 365.25 / 12.
  // Java evaluates years * 12 + months in int arithmetic (wrapping), the rest in double.
  int32_t total_months =
      static_cast<int32_t>(static_cast<uint32_t>(years) * 12u + static_cast<uint32_t>(months));
  double number_of_days = total_months * (365.25 / 12.0) + static_cast<double>(days);
  double number_of_seconds =
      (((number_of_days * 24 + static_cast<double>(hours)) * 60) + static_cast<double>(minutes)) *
          60 +
      seconds;
  double x = number_of_seconds * 1e6;
  // Java's (long) cast: truncation, saturating at the int64 range.
  if (x >= 9.2233720368547758e18) {
    *micros = std::numeric_limits<int64_t>::max();
  } else if (x <= -9.2233720368547758e18) {
    *micros = std::numeric_limits<int64_t>::min();
  } else {
    *micros = static_cast<int64_t>(x);
  }
  return true;
}

void AppendIsoInstant(std::string* out, int64_t epoch_micros, int fraction_digits) {
  int64_t days = FloorDiv(epoch_micros, kMicrosPerDay);
  int64_t micros_of_day = epoch_micros - days * kMicrosPerDay;
  const CivilDate date = CivilFromDays(days);
  AppendIsoYear(out, date.year);
  out->push_back('-');
  Append2(out, date.month);
  out->push_back('-');
  Append2(out, date.day);
  out->push_back('T');
  AppendClock(out, micros_of_day, fraction_digits);
  out->push_back('Z');
}

size_t FormatUtcTimestampTzIso(std::string_view text, int fraction_digits, char* buf) {
  // "YYYY-MM-DD HH:MM:SS" (19), then "." and 1..6 digits, then "+00".
  constexpr size_t kClockEnd = 19;
  if (text.size() < kClockEnd + 3 || text.size() > kClockEnd + 7 + 3) return 0;
  if (text.substr(text.size() - 3) != "+00") return 0;
  const char* t = text.data();
  auto digit = [t](size_t i) { return t[i] >= '0' && t[i] <= '9'; };
  auto two = [t](size_t i) { return (t[i] - '0') * 10 + (t[i + 1] - '0'); };
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
    if (!digit(i)) return 0;
  }
  if (t[4] != '-' || t[7] != '-' || t[10] != ' ' || t[13] != ':' || t[16] != ':') return 0;
  const int year = two(0) * 100 + two(2);
  const int month = two(5);
  const int day = two(8);
  static constexpr int kMonthDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return 0;
  const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
  if (day > kMonthDays[month - 1] + (month == 2 && leap ? 1 : 0)) return 0;
  if (two(11) > 23 || two(14) > 59 || two(17) > 59) return 0;
  // Nanoseconds as 9 digits: the text's fraction digits, then zeros.
  char nanos[9] = {'0', '0', '0', '0', '0', '0', '0', '0', '0'};
  const size_t fraction_end = text.size() - 3;
  if (fraction_end > kClockEnd) {
    const size_t n = fraction_end - kClockEnd - 1;  // digits after the point
    if (t[kClockEnd] != '.' || n < 1 || n > 6) return 0;
    for (size_t i = 0; i < n; ++i) {
      if (!digit(kClockEnd + 1 + i)) return 0;
      nanos[i] = t[kClockEnd + 1 + i];
    }
  }
  std::memcpy(buf, t, 10);
  buf[10] = 'T';
  std::memcpy(buf + 11, t + 11, 8);
  size_t len = kClockEnd;
  // As AppendClock: exactly `fraction_digits` digits, or the shortest non-empty fraction.
  size_t digits = 0;
  if (fraction_digits > 0) {
    digits = static_cast<size_t>(std::min(fraction_digits, 9));
  } else {
    digits = 9;
    while (digits > 0 && nanos[digits - 1] == '0') --digits;
  }
  if (digits > 0) {
    buf[len++] = '.';
    std::memcpy(buf + len, nanos, digits);
    len += digits;
  }
  buf[len++] = 'Z';
  return len;
}

void AppendIsoTimeUtc(std::string* out, int64_t micros_of_day) {
  AppendClock(out, micros_of_day, 0);
  out->push_back('Z');
}

}  // namespace splitstream::debezium::internal

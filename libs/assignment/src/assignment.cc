#include "splitstream/assignment/assignment.h"

#include <charconv>
#include <cmath>
#include <utility>

namespace splitstream::assignment {
namespace {

constexpr uint32_t kFnvOffsetBasis = 0x811C9DC5u;
constexpr uint32_t kFnvPrime = 0x01000193u;
constexpr uint32_t kReplacementCharacter = 0xFFFD;

// Arithmetic on uint32_t wraps mod 2^32, which is what the JavaScript SDK's
// `hval += (hval << 1) + (hval << 4) + ...` followed by `>>> 0` computes.
inline uint32_t MixUnit(uint32_t h, uint32_t code_unit) { return (h ^ code_unit) * kFnvPrime; }

inline uint32_t MixCodePoint(uint32_t h, uint32_t code_point) {
  if (code_point < 0x10000) return MixUnit(h, code_point);
  code_point -= 0x10000;
  h = MixUnit(h, 0xD800 + (code_point >> 10));
  return MixUnit(h, 0xDC00 + (code_point & 0x3FF));
}

// Decodes one non-ASCII sequence starting at `p` (< end) the way the WHATWG UTF-8 decoder
// does: a byte that cannot continue the sequence ends it with U+FFFD and is not consumed,
// so it is decoded again as a lead byte. Returns the position after the sequence.
const unsigned char* DecodeNonAscii(const unsigned char* p, const unsigned char* end,
                                    uint32_t* code_point) {
  const unsigned char lead = *p++;
  int needed = 0;
  uint32_t cp = 0;
  unsigned char lower = 0x80;
  unsigned char upper = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    if (lead == 0xE0) lower = 0xA0;  // overlong
    if (lead == 0xED) upper = 0x9F;  // surrogates
    needed = 2;
    cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    if (lead == 0xF0) lower = 0x90;  // overlong
    if (lead == 0xF4) upper = 0x8F;  // above U+10FFFF
    needed = 3;
    cp = lead & 0x07;
  } else {
    *code_point = kReplacementCharacter;  // continuation byte, C0, C1 or F5..FF
    return p;
  }
  for (int i = 0; i < needed; ++i) {
    if (p == end || *p < lower || *p > upper) {
      *code_point = kReplacementCharacter;
      return p;
    }
    cp = (cp << 6) | (*p & 0x3F);
    lower = 0x80;
    upper = 0xBF;
    ++p;
  }
  *code_point = cp;
  return p;
}

// Continues the FNV-1a state `h` over the UTF-16 code units of `utf8`. Feeding the seed and
// the value one after the other equals hashing their concatenation as JavaScript strings,
// without building the concatenation.
uint32_t Fnv32aUpdate(uint32_t h, std::string_view utf8) {
  const auto* p = reinterpret_cast<const unsigned char*>(utf8.data());
  const auto* end = p + utf8.size();
  while (p < end) {
    if (*p < 0x80) {
      h = MixUnit(h, *p++);
      continue;
    }
    uint32_t code_point = 0;
    p = DecodeNonAscii(p, end, &code_point);
    h = MixCodePoint(h, code_point);
  }
  return h;
}

// Continues two FNV-1a states over two strings side by side; equal to two Fnv32aUpdate
// calls. Each state's next multiply waits only for its own previous one, so the CPU runs the
// two chains at once instead of one after the other (FNV-1a is one long dependency chain:
// Assign with a layer hashes the user id for the layer and for the experiment). While both
// strings are ASCII they go byte by byte together; from the first other byte on (a character
// boundary in both, as everything before it was ASCII), each is finished on its own.
// (The states are copied into locals: through the references the compiler would have to
// store and reload them every byte, as a char may alias them.)
void Fnv32aUpdateBoth(uint32_t& a_out, std::string_view sa, uint32_t& b_out, std::string_view sb) {
  uint32_t a = a_out;
  uint32_t b = b_out;
  const auto* pa = reinterpret_cast<const unsigned char*>(sa.data());
  const auto* pb = reinterpret_cast<const unsigned char*>(sb.data());
  const size_t common = sa.size() < sb.size() ? sa.size() : sb.size();
  size_t i = 0;
  for (; i < common; ++i) {
    const uint32_t ca = pa[i];
    const uint32_t cb = pb[i];
    if ((ca | cb) >= 0x80) break;
    a = MixUnit(a, ca);
    b = MixUnit(b, cb);
  }
  a_out = Fnv32aUpdate(a, sa.substr(i));
  b_out = Fnv32aUpdate(b, sb.substr(i));
}

// The decimal form of a uint32_t (at most 10 digits): a stack buffer, no allocation.
struct Decimal {
  explicit Decimal(uint32_t v) {
    const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), v);
    (void)ec;  // cannot fail: the buffer fits every uint32_t
    size = static_cast<size_t>(end - digits);
  }
  std::string_view view() const { return {digits, size}; }
  char digits[10];
  size_t size;
};

double HashV1Result(uint32_t h) { return static_cast<double>(h % 1000) / 1000; }
double HashV2Result(uint32_t outer) { return static_cast<double>(outer % 10000) / 10000; }

std::optional<double> HashV1(std::string_view seed, std::string_view value) {
  return HashV1Result(Fnv32aUpdate(Fnv32aUpdate(kFnvOffsetBasis, value), seed));
}

// The outer half of hash v2, given the state after fnv32a(seed + value).
double FinishHashV2(uint32_t inner) {
  return HashV2Result(Fnv32aUpdate(kFnvOffsetBasis, Decimal(inner).view()));
}

std::optional<double> HashV2(std::string_view seed, std::string_view value) {
  return FinishHashV2(Fnv32aUpdate(Fnv32aUpdate(kFnvOffsetBasis, seed), value));
}

// GrowthBook's getEqualWeights: new Array(n).fill(1 / n).
std::vector<double> EqualWeights(int n) {
  return std::vector<double>(static_cast<size_t>(n), 1.0 / n);
}

// GrowthBook accepts weights that sum to 1 within 0.01; others are replaced by equal ones.
bool SumsToOne(std::span<const double> weights) {
  double total = 0;
  for (double w : weights) total += w;
  return !(total < 0.99 || total > 1.01);
}

// Weights for the constructor: as given when GrowthBook would accept them, otherwise
// divided by their sum when they are all positive and finite (see the header).
std::vector<double> NormaliseWeights(std::vector<double> weights) {
  if (weights.empty() || SumsToOne(weights)) return weights;
  double total = 0;
  for (double w : weights) {
    if (!std::isfinite(w) || w <= 0) return weights;  // BucketRanges falls back to equal
    total += w;
  }
  if (!std::isfinite(total)) return weights;
  for (double& w : weights) w /= total;
  return weights;
}

}  // namespace

uint32_t Fnv32a(std::string_view utf8) { return Fnv32aUpdate(kFnvOffsetBasis, utf8); }

bool IsSupportedHashVersion(int version) { return version == 1 || version == 2; }

std::optional<double> Hash(std::string_view seed, std::string_view value, int version) {
  switch (version) {
    case 1:
      return HashV1(seed, value);
    case 2:
      return HashV2(seed, value);
    default:
      return std::nullopt;
  }
}

std::vector<BucketRange> BucketRanges(int num_variations, double coverage,
                                      std::span<const double> weights) {
  // Written as in the SDK (not std::clamp) so that NaN behaves the same: it stays NaN and
  // no hash falls in any range.
  if (coverage < 0) {
    coverage = 0;
  } else if (coverage > 1) {
    coverage = 1;
  }
  if (num_variations <= 0) return {};
  std::vector<double> equal;
  if (weights.size() != static_cast<size_t>(num_variations) || !SumsToOne(weights)) {
    equal = EqualWeights(num_variations);
    weights = equal;
  }
  std::vector<BucketRange> ranges;
  ranges.reserve(weights.size());
  double cumulative = 0;
  for (double w : weights) {
    const double start = cumulative;
    cumulative += w;
    ranges.push_back({start, start + coverage * w});
  }
  return ranges;
}

int ChooseVariation(double n, std::span<const BucketRange> ranges) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (n >= ranges[i].start && n < ranges[i].end) return static_cast<int>(i);
  }
  return -1;
}

namespace {

// hash("__" + layer, user_id, 1) = fnv32a(user_id + "__" + layer) % 1000 / 1000, hashed
// piece by piece.
double LayerHash(std::string_view user_id, std::string_view layer) {
  uint32_t h = Fnv32aUpdate(kFnvOffsetBasis, user_id);
  h = Fnv32aUpdate(h, "__");
  h = Fnv32aUpdate(h, layer);
  return HashV1Result(h);
}

bool InShare(double n, const LayerShare& share) { return n >= share.start && n < share.end; }

}  // namespace

bool InLayer(std::string_view user_id, const LayerShare& share) {
  return InShare(LayerHash(user_id, share.layer), share);
}

std::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kAssigned:
      return "assigned";
    case Reason::kNotInLayer:
      return "not_in_layer";
    case Reason::kNotInTraffic:
      return "not_in_traffic";
    case Reason::kEmptyUserId:
      return "empty_user_id";
  }
  return "unknown";
}

Allocation::Allocation(std::string seed, int hash_version, double coverage,
                       std::vector<double> weights, std::optional<LayerShare> layer)
    : seed_(std::move(seed)),
      hash_version_(hash_version),
      seed_state_(Fnv32aUpdate(kFnvOffsetBasis, seed_)),
      layer_(std::move(layer)),
      layer_suffix_(layer_ ? "__" + layer_->layer : std::string()) {
  const std::vector<double> normalised = NormaliseWeights(std::move(weights));
  ranges_ = BucketRanges(static_cast<int>(normalised.size()), coverage, normalised);
}

Decision Allocation::Assign(std::string_view user_id) const {
  Decision decision;
  if (user_id.empty()) {
    decision.reason = Reason::kEmptyUserId;
    return decision;
  }
  // Same as Hash(seed_, user_id, hash_version_); v2 resumes from the precomputed seed state.
  std::optional<double> n;
  if (layer_) {
    // The layer's fnv32a(user_id + "__" + layer) and, with v2, the experiment's
    // fnv32a(decimal(fnv32a(seed + user_id))) side by side (Fnv32aUpdateBoth); the
    // experiment's is then computed for users outside the layer share too, and unused.
    uint32_t layer_state = kFnvOffsetBasis;
    if (hash_version_ == 2) {
      uint32_t inner = seed_state_;
      Fnv32aUpdateBoth(layer_state, user_id, inner, user_id);
      uint32_t outer = kFnvOffsetBasis;
      Fnv32aUpdateBoth(layer_state, layer_suffix_, outer, Decimal(inner).view());
      n = HashV2Result(outer);
    } else {
      layer_state = Fnv32aUpdate(Fnv32aUpdate(layer_state, user_id), layer_suffix_);
    }
    const double layer_hash = HashV1Result(layer_state);
    if (!InShare(layer_hash, *layer_)) {
      decision.reason = Reason::kNotInLayer;
      decision.bucket = layer_hash;
      return decision;
    }
    if (hash_version_ != 2) n = Hash(seed_, user_id, hash_version_);
  } else {
    n = hash_version_ == 2 ? FinishHashV2(Fnv32aUpdate(seed_state_, user_id))
                           : Hash(seed_, user_id, hash_version_);
  }
  if (!n) {
    decision.reason = Reason::kNotInTraffic;
    return decision;
  }
  decision.bucket = *n;
  decision.variant = ChooseVariation(*n, ranges_);
  decision.reason = decision.variant < 0 ? Reason::kNotInTraffic : Reason::kAssigned;
  return decision;
}

bool Overlaps(const LayerShare& a, const LayerShare& b) {
  if (a.layer != b.layer) return false;
  const double start = a.start > b.start ? a.start : b.start;
  const double end = a.end < b.end ? a.end : b.end;
  return start < end;
}

}  // namespace splitstream::assignment

// Deterministic assignment of users to experiment variants, bit-compatible with the
// GrowthBook SDK specification: any GrowthBook SDK evaluating the same experiment (same
// seed, hash version, weights, coverage and namespace) picks the same variant.
//
// Pure code: no I/O, no allocation on the Assign() path, thread-safe (all functions are
// pure; Allocation is immutable after construction). The algorithm is written down in
// libs/assignment/README.md.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace splitstream::assignment {

// FNV-1a 32-bit over the UTF-16 code units of `utf8` (GrowthBook hashes JavaScript strings).
// Code points above U+FFFF become surrogate pairs. Ill-formed UTF-8 is decoded as the WHATWG
// TextDecoder does (each maximal ill-formed subpart becomes one U+FFFD), so a JavaScript
// server that received the same bytes hashes the same string.
uint32_t Fnv32a(std::string_view utf8);

// True for the hash versions Hash() knows (1 and 2).
bool IsSupportedHashVersion(int version);

// GrowthBook hash(seed, value, version) in [0, 1); std::nullopt for an unknown version.
//   v1: (fnv32a(value + seed) % 1000) / 1000
//   v2: (fnv32a(decimal(fnv32a(seed + value))) % 10000) / 10000
// `seed` and `value` are decoded separately (as two JavaScript strings would be), then
// concatenated. Never allocates.
std::optional<double> Hash(std::string_view seed, std::string_view value, int version);

struct BucketRange {
  double start = 0;
  double end = 0;
};

// GrowthBook getBucketRanges: coverage clamped to [0,1]; weights replaced by equal weights
// when empty, when their count differs from `num_variations` or when they do not sum to 1
// within 0.01. Range i is [C_i, C_i + coverage * w_i], C_i the sum of the earlier weights;
// lowering coverage shrinks every range towards its start, so it never moves a user to
// another variant. Empty for num_variations <= 0.
std::vector<BucketRange> BucketRanges(int num_variations, double coverage,
                                      std::span<const double> weights);

// GrowthBook chooseVariation: index of the first range with start <= n < end, else -1.
int ChooseVariation(double n, std::span<const BucketRange> ranges);

// A layer (GrowthBook namespace) share: the user is in when hash("__" + layer, user, v1)
// lies in [start, end). Shares of one layer that do not overlap never share a user.
struct LayerShare {
  std::string layer;
  double start = 0;
  double end = 1;
};

// GrowthBook inNamespace.
bool InLayer(std::string_view user_id, const LayerShare& share);

enum class Reason {
  kAssigned,      // in the experiment; `variant` is valid
  kNotInLayer,    // the layer share does not contain the user
  kNotInTraffic,  // outside the coverage (traffic fraction)
  kEmptyUserId,   // no user id to hash
};

// Stable lowercase name of a reason: "assigned", "not_in_layer", ...
std::string_view ReasonName(Reason reason);

struct Decision {
  Reason reason = Reason::kNotInTraffic;
  int variant = -1;   // index into the variants, valid when reason == kAssigned
  double bucket = 0;  // the hash that decided, for diagnostics: the layer hash for
                      // kNotInLayer, the experiment hash otherwise, 0 for kEmptyUserId
};

// One experiment's allocation, with bucket ranges precomputed.
class Allocation {
 public:
  // `seed` defaults to the experiment key at the caller. There is one variant per weight.
  // Weights that sum to 1 within 0.01 are used as given (GrowthBook semantics); other
  // positive finite weights are divided by their sum first, so [1, 3] means [0.25, 0.75] and
  // a GrowthBook SDK agrees when given the normalised weights. Anything else falls back to
  // equal weights. An unsupported `hash_version` (see IsSupportedHashVersion) puts nobody
  // in the experiment (GrowthBook skips an experiment whose hash is null): validate it first.
  Allocation(std::string seed, int hash_version, double coverage, std::vector<double> weights,
             std::optional<LayerShare> layer);

  // Empty user id: kEmptyUserId. Then the layer check (kNotInLayer), then the experiment
  // hash against the ranges (kNotInTraffic outside them). No heap allocation.
  Decision Assign(std::string_view user_id) const;

  const std::vector<BucketRange>& ranges() const { return ranges_; }

 private:
  std::string seed_;
  int hash_version_;
  // FNV-1a state after the seed's code units: hash v2 starts with fnv32a(seed + user_id), so
  // Assign() continues from here instead of rehashing the seed for every user.
  uint32_t seed_state_;
  std::vector<BucketRange> ranges_;
  std::optional<LayerShare> layer_;
  std::string layer_suffix_;  // "__" + layer: the layer hash is fnv32a(user_id + this)
};

// True when two layer shares of the same layer overlap ([a.start, a.end) ∩ [b.start, b.end)
// is not empty). Shares of different layers never overlap; an empty share overlaps nothing.
bool Overlaps(const LayerShare& a, const LayerShare& b);

}  // namespace splitstream::assignment

// Deterministic assignment of users to experiment variants, bit-compatible with the
// GrowthBook SDK specification: any GrowthBook SDK evaluating the same experiment (same
// seed, hash version, weights, coverage and namespace) picks the same variant.
//
// Pure code: no I/O, no allocation on the Assign() path, thread-safe (all functions are
// pure; Allocation is immutable after construction).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace splitstream::assignment {

// FNV-1a 32-bit over the UTF-16 code units of `utf8` (GrowthBook hashes JavaScript strings).
// Invalid UTF-8 bytes are hashed as U+FFFD.
uint32_t Fnv32a(std::string_view utf8);

// GrowthBook hash(seed, value, version) in [0, 1); std::nullopt for an unknown version.
//   v1: (fnv32a(value + seed) % 1000) / 1000
//   v2: (fnv32a(decimal(fnv32a(seed + value))) % 10000) / 10000
std::optional<double> Hash(std::string_view seed, std::string_view value, int version);

struct BucketRange {
  double start = 0;
  double end = 0;
};

// GrowthBook getBucketRanges: coverage clamped to [0,1]; weights replaced by equal weights
// when their count differs from `num_variations` or they do not sum to 1 within 0.01.
std::vector<BucketRange> BucketRanges(int num_variations, double coverage,
                                      std::span<const double> weights);

// GrowthBook chooseVariation: index of the first range with start <= n < end, else -1.
int ChooseVariation(double n, std::span<const BucketRange> ranges);

// A layer (GrowthBook namespace) share: the user is in when hash("__" + layer, user, v1)
// lies in [start, end).
struct LayerShare {
  std::string layer;
  double start = 0;
  double end = 1;
};

// GrowthBook inNamespace.
bool InLayer(std::string_view user_id, const LayerShare& share);

enum class Reason {
  kAssigned,       // in the experiment; `variant` is valid
  kNotInLayer,     // the layer share does not contain the user
  kNotInTraffic,   // outside the coverage (traffic fraction)
  kEmptyUserId,    // no user id to hash
};

// Stable lowercase name of a reason: "assigned", "not_in_layer", ...
std::string_view ReasonName(Reason reason);

struct Decision {
  Reason reason = Reason::kNotInTraffic;
  int variant = -1;   // index into the variants, valid when reason == kAssigned
  double bucket = 0;  // the user's hash, for diagnostics
};

// One experiment's allocation, with bucket ranges precomputed.
class Allocation {
 public:
  // `seed` defaults to the experiment key at the caller; `weights` are normalised.
  Allocation(std::string seed, int hash_version, double coverage, std::vector<double> weights,
             std::optional<LayerShare> layer);

  Decision Assign(std::string_view user_id) const;

  const std::vector<BucketRange>& ranges() const { return ranges_; }

 private:
  std::string seed_;
  int hash_version_;
  std::vector<BucketRange> ranges_;
  std::optional<LayerShare> layer_;
};

// True when two layer shares of the same layer overlap ([a.start, a.end) ∩ [b.start, b.end)).
bool Overlaps(const LayerShare& a, const LayerShare& b);

}  // namespace splitstream::assignment

// The experiment domain: what an experiment is, how it is validated, and what assignment
// and event tracking take and give. Plain value types; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "splitstream/core/named_type.h"
#include "splitstream/core/status.h"

namespace splitstream::experiments {

enum class ExperimentStatus { kDraft, kRunning, kStopped };
std::string_view StatusName(ExperimentStatus s);  // "draft", "running", "stopped"
// The inverse of StatusName; std::nullopt for any other text.
std::optional<ExperimentStatus> ParseExperimentStatus(std::string_view name);

struct VariantSpec {
  std::string key;
  double weight = 0;  // positive; normalised over all variants
};

// A metric as declared at creation. Stored as given (the results issue computes them).
struct MetricSpec {
  std::string key;
  std::string event_type;
  std::string kind = "conversion";  // conversion | mean | count | ratio | quantile
  std::optional<std::string> denominator_event_type;  // ratio only
  std::optional<double> quantile;                     // quantile only, in (0, 1)
  std::optional<int64_t> window_hours;                // window after exposure
  bool higher_is_better = true;
  bool guardrail = false;
};

struct ExperimentSpec {
  std::string key;   // [a-z0-9][a-z0-9_.-]{0,63}
  std::string name;  // 1..200 characters; defaults to key
  std::string description;
  std::vector<VariantSpec> variants;  // 2..16, first is control, keys unique
  double traffic = 1.0;               // coverage in [0, 1]
  std::optional<std::string> layer;   // same syntax as key
  double layer_start = 0.0;           // share of the layer, [start, end) within [0, 1]
  double layer_end = 1.0;
  std::string seed;      // hash seed; defaults to key
  int hash_version = 2;  // 1 or 2
  std::vector<MetricSpec> metrics;
};

// Checks every rule on a spec and fills defaults (name, seed). The Status is
// InvalidArgument and names the first offending field, e.g. "variants[2].weight":
//   key          [a-z0-9][a-z0-9_.-]{0,63}
//   name         defaults to key; at most 200 bytes.  description: at most 10 000 bytes
//   variants     2..16; variants[i].key a key, unique; variants[i].weight finite and > 0
//   traffic      finite, in [0, 1]
//   layer        a key when set; 0 <= layer_start < layer_end <= 1 (layer_start, layer_end);
//                a share other than [0, 1) without a layer names "layer"
//   seed         defaults to key; at most 256 bytes.  hash_version: 1 or 2
//   metrics      at most 64; metrics[i].key a key, unique; metrics[i].event_type 1..128 bytes;
//                metrics[i].kind conversion|mean|count|ratio|quantile; ratio needs
//                denominator_event_type (and only ratio has one); quantile needs quantile in
//                (0, 1) (and only quantile has one); window_hours > 0 when set
Status ValidateAndNormalize(ExperimentSpec& spec);

// The single-value rules of ValidateAndNormalize, shared with UpdateAllocation.
Status ValidateWeight(double weight, const std::string& field);  // finite, > 0
Status ValidateTraffic(double traffic);                          // finite, in [0, 1]

// Checks a key (experiment, variant or layer): [a-z0-9][a-z0-9_.-]{0,63}.
bool IsValidKey(std::string_view key);

// True for well-formed UTF-8 without NUL bytes: what a PostgreSQL text value can hold.
bool IsValidText(std::string_view text);

struct Variant {
  VariantId id;
  std::string key;
  double weight = 0;
};

struct Experiment {
  ExperimentId id;
  ExperimentSpec spec;
  std::vector<Variant> variants;  // same order as spec.variants
  ExperimentStatus status = ExperimentStatus::kDraft;
  int64_t created_at_us = 0;
  std::optional<int64_t> started_at_us;
  std::optional<int64_t> stopped_at_us;
};

struct AssignRequest {
  std::string user_id;
  std::string experiment;  // key
};

struct Assignment {
  std::string experiment;
  std::string user_id;
  bool in_experiment = false;
  std::string variant;  // key, when in_experiment
  std::string reason;   // "assigned", "stored", "not_in_layer", "not_in_traffic", "not_running"
  bool stored = false;  // true when returned from a previously stored assignment
  int64_t assigned_at_us = 0;  // when first stored; 0 when not in the experiment
};

struct Event {
  std::string experiment;  // key
  std::string user_id;
  std::string type;
  std::optional<double> value;
  std::string properties_json = "{}";  // a JSON object, already validated
  std::optional<int64_t> ts_us;        // defaults to the server's time
  // UUID; a v4 one is generated when missing. An event whose (event_id, ts) is already
  // stored is skipped (idempotent retries: resend the same event_id AND ts).
  std::optional<std::string> event_id;
};

// Limits of the API, shared by the HTTP layer and the service.
inline constexpr size_t kMaxEventsPerBatch = 10000;
inline constexpr size_t kMaxUserIdLength = 256;
inline constexpr size_t kMaxEventTypeLength = 128;

}  // namespace splitstream::experiments

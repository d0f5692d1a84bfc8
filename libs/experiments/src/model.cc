#include "splitstream/experiments/model.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <set>
#include <string>

#include "splitstream/core/strings.h"

namespace splitstream::experiments {

namespace {

constexpr size_t kMaxKeyLength = 64;
constexpr size_t kMaxNameLength = 200;
constexpr size_t kMaxDescriptionLength = 10000;
constexpr size_t kMaxSeedLength = 256;
constexpr size_t kMinVariants = 2;
constexpr size_t kMaxVariants = 16;
constexpr size_t kMaxMetrics = 64;

bool IsKeyStart(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsKeyChar(char c) { return IsKeyStart(c) || c == '_' || c == '.' || c == '-'; }

std::string Quoted(std::string_view text) {
  return fmt::format("\"{}\"", SanitizeForMessage(text, 80));
}

Status ValidateKeyField(std::string_view value, const std::string& field, std::string_view what) {
  if (IsValidKey(value)) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("{} {} must match [a-z0-9][a-z0-9_.-]{{0,63}}", what, Quoted(value)), field);
}

Status ValidateMetric(MetricSpec& metric, size_t i, std::set<std::string>& seen_keys) {
  const std::string prefix = fmt::format("metrics[{}]", i);
  SPLITSTREAM_RETURN_IF_ERROR(ValidateKeyField(metric.key, prefix + ".key", "metric key"));
  if (!seen_keys.insert(metric.key).second) {
    return Status::InvalidArgument(fmt::format("duplicate metric key {}", Quoted(metric.key)),
                                   prefix + ".key");
  }
  if (metric.event_type.empty() || metric.event_type.size() > kMaxEventTypeLength ||
      !IsValidText(metric.event_type)) {
    return Status::InvalidArgument(
        fmt::format("event_type must be 1 to {} bytes of UTF-8", kMaxEventTypeLength),
        prefix + ".event_type");
  }
  const std::string& kind = metric.kind;
  if (kind != "conversion" && kind != "mean" && kind != "count" && kind != "ratio" &&
      kind != "quantile") {
    return Status::InvalidArgument(
        fmt::format("unknown metric kind {}; expected conversion, mean, count, ratio or quantile",
                    Quoted(kind)),
        prefix + ".kind");
  }
  if (kind == "ratio") {
    if (!metric.denominator_event_type || metric.denominator_event_type->empty() ||
        metric.denominator_event_type->size() > kMaxEventTypeLength ||
        !IsValidText(*metric.denominator_event_type)) {
      return Status::InvalidArgument(
          fmt::format("a ratio metric needs a denominator_event_type of 1 to {} characters",
                      kMaxEventTypeLength),
          prefix + ".denominator_event_type");
    }
  } else if (metric.denominator_event_type) {
    return Status::InvalidArgument("denominator_event_type is only for ratio metrics",
                                   prefix + ".denominator_event_type");
  }
  if (kind == "quantile") {
    if (!metric.quantile || !std::isfinite(*metric.quantile) || *metric.quantile <= 0 ||
        *metric.quantile >= 1) {
      return Status::InvalidArgument("a quantile metric needs a quantile in (0, 1)",
                                     prefix + ".quantile");
    }
  } else if (metric.quantile) {
    return Status::InvalidArgument("quantile is only for quantile metrics", prefix + ".quantile");
  }
  if (metric.window_hours && *metric.window_hours <= 0) {
    return Status::InvalidArgument("window_hours must be positive", prefix + ".window_hours");
  }
  return Status::Ok();
}

}  // namespace

std::string_view StatusName(ExperimentStatus s) {
  switch (s) {
    case ExperimentStatus::kDraft:
      return "draft";
    case ExperimentStatus::kRunning:
      return "running";
    case ExperimentStatus::kStopped:
      return "stopped";
  }
  return "draft";
}

std::optional<ExperimentStatus> ParseExperimentStatus(std::string_view name) {
  if (name == "draft") return ExperimentStatus::kDraft;
  if (name == "running") return ExperimentStatus::kRunning;
  if (name == "stopped") return ExperimentStatus::kStopped;
  return std::nullopt;
}

bool IsValidKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyLength || !IsKeyStart(key[0])) return false;
  for (char c : key) {
    if (!IsKeyChar(c)) return false;
  }
  return true;
}

bool IsValidText(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are ill-formed.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

Status ValidateWeight(double weight, const std::string& field) {
  if (!std::isfinite(weight) || weight <= 0) {
    return Status::InvalidArgument("weight must be a finite positive number", field);
  }
  return Status::Ok();
}

Status ValidateTraffic(double traffic) {
  if (!std::isfinite(traffic) || traffic < 0 || traffic > 1) {
    return Status::InvalidArgument("traffic must be a fraction in [0, 1]", "traffic");
  }
  return Status::Ok();
}

Status ValidateAndNormalize(ExperimentSpec& spec) {
  SPLITSTREAM_RETURN_IF_ERROR(ValidateKeyField(spec.key, "key", "experiment key"));

  if (spec.name.empty()) spec.name = spec.key;
  if (!IsValidText(spec.name)) {
    return Status::InvalidArgument("name must be UTF-8 without NUL bytes", "name");
  }
  if (spec.name.size() > kMaxNameLength) {
    return Status::InvalidArgument(fmt::format("name must have 1 to {} characters", kMaxNameLength),
                                   "name");
  }
  if (!IsValidText(spec.description)) {
    return Status::InvalidArgument("description must be UTF-8 without NUL bytes", "description");
  }
  if (spec.description.size() > kMaxDescriptionLength) {
    return Status::InvalidArgument(
        fmt::format("description must have at most {} characters", kMaxDescriptionLength),
        "description");
  }

  if (spec.variants.size() < kMinVariants || spec.variants.size() > kMaxVariants) {
    return Status::InvalidArgument(fmt::format("an experiment needs {} to {} variants, got {}",
                                               kMinVariants, kMaxVariants, spec.variants.size()),
                                   "variants");
  }
  std::set<std::string> variant_keys;
  for (size_t i = 0; i < spec.variants.size(); ++i) {
    const VariantSpec& v = spec.variants[i];
    const std::string field = fmt::format("variants[{}]", i);
    SPLITSTREAM_RETURN_IF_ERROR(ValidateKeyField(v.key, field + ".key", "variant key"));
    if (!variant_keys.insert(v.key).second) {
      return Status::InvalidArgument(fmt::format("duplicate variant key {}", Quoted(v.key)),
                                     field + ".key");
    }
    SPLITSTREAM_RETURN_IF_ERROR(ValidateWeight(v.weight, field + ".weight"));
  }

  SPLITSTREAM_RETURN_IF_ERROR(ValidateTraffic(spec.traffic));

  if (spec.layer) {
    SPLITSTREAM_RETURN_IF_ERROR(ValidateKeyField(*spec.layer, "layer", "layer"));
  }
  if (!std::isfinite(spec.layer_start) || spec.layer_start < 0 || spec.layer_start >= 1) {
    return Status::InvalidArgument("layer_start must be in [0, 1)", "layer_start");
  }
  if (!std::isfinite(spec.layer_end) || spec.layer_end <= spec.layer_start || spec.layer_end > 1) {
    return Status::InvalidArgument("layer_end must be in (layer_start, 1]", "layer_end");
  }
  if (!spec.layer && (spec.layer_start != 0 || spec.layer_end != 1)) {
    return Status::InvalidArgument("a layer share needs a layer", "layer");
  }

  if (spec.seed.empty()) spec.seed = spec.key;
  if (!IsValidText(spec.seed)) {
    return Status::InvalidArgument("seed must be UTF-8 without NUL bytes", "seed");
  }
  if (spec.seed.size() > kMaxSeedLength) {
    return Status::InvalidArgument(
        fmt::format("seed must have at most {} characters", kMaxSeedLength), "seed");
  }
  if (spec.hash_version != 1 && spec.hash_version != 2) {
    return Status::InvalidArgument(
        fmt::format("hash_version must be 1 or 2, got {}", spec.hash_version), "hash_version");
  }

  if (spec.metrics.size() > kMaxMetrics) {
    return Status::InvalidArgument(fmt::format("at most {} metrics", kMaxMetrics), "metrics");
  }
  std::set<std::string> metric_keys;
  for (size_t i = 0; i < spec.metrics.size(); ++i) {
    SPLITSTREAM_RETURN_IF_ERROR(ValidateMetric(spec.metrics[i], i, metric_keys));
  }
  return Status::Ok();
}

}  // namespace splitstream::experiments

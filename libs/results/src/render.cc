#include "splitstream/results/render.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "splitstream/core/timestamp.h"

namespace splitstream::results {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<unsigned>(s.size())); }

void Num(Writer& w, const std::optional<double>& v) {
  if (v && std::isfinite(*v)) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

void Interval(Writer& w, const std::optional<stats::Interval>& i) {
  if (i && std::isfinite(i->lo) && std::isfinite(i->hi)) {
    w.StartArray();
    w.Double(i->lo);
    w.Double(i->hi);
    w.EndArray();
  } else {
    w.Null();
  }
}

std::string_view DirectionName(stats::Direction d) {
  switch (d) {
    case stats::Direction::kBetter:
      return "better";
    case stats::Direction::kWorse:
      return "worse";
    case stats::Direction::kNoDifference:
      return "no_difference";
    case stats::Direction::kUndefined:
      return "undefined";
  }
  return "undefined";
}

double AgeSeconds(const ExperimentResults& r) {
  return std::max(0.0, static_cast<double>(r.computed_at_us / 1000 - *r.newest_change_ms) / 1e3);
}

// Fixed-width number for the table; "-" when undefined.
std::string Cell(const std::optional<double>& v, int digits = 4) {
  if (!v || !std::isfinite(*v)) return "-";
  return fmt::format("{:.{}g}", *v, digits);
}

std::string PercentCell(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return "-";
  return fmt::format("{:+.2f}%", *v * 100);
}

std::string CiCell(const std::optional<stats::Interval>& i, bool percent) {
  if (!i) return "-";
  if (percent) return fmt::format("[{:+.2f}%, {:+.2f}%]", i->lo * 100, i->hi * 100);
  return fmt::format("[{:.4g}, {:.4g}]", i->lo, i->hi);
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string CsvNum(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return "";
  return fmt::format("{}", *v);
}

const stats::ComparisonResult* ComparisonFor(const stats::MetricAnalysis& a,
                                             const std::string& key) {
  for (const stats::ComparisonResult& c : a.comparisons) {
    if (c.variant_key == key) return &c;
  }
  return nullptr;
}

}  // namespace

std::string RenderJson(const ExperimentResults& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("experiment");
  Str(w, r.key);
  w.Key("name");
  Str(w, r.name);
  w.Key("status");
  Str(w, r.status);
  w.Key("computed_at");
  Str(w, FormatTimestamp(r.computed_at_us, kRfc3339Millis));
  w.Key("freshness");
  w.StartObject();
  w.Key("newest_change");
  if (r.newest_change_ms) {
    Str(w, FormatTimestamp(*r.newest_change_ms * 1000, kRfc3339Millis));
  } else {
    w.Null();
  }
  w.Key("age_seconds");
  Num(w, r.newest_change_ms ? std::optional<double>(AgeSeconds(r)) : std::nullopt);
  w.EndObject();
  w.Key("settings");
  w.StartObject();
  w.Key("alpha");
  w.Double(r.alpha);
  w.Key("sequential");
  w.Bool(r.sequential);
  w.Key("cuped");
  w.Bool(r.cuped);
  w.EndObject();
  w.Key("variants");
  w.StartArray();
  for (const VariantResult& v : r.variants) {
    w.StartObject();
    w.Key("key");
    Str(w, v.key);
    w.Key("weight");
    w.Double(v.weight);
    w.Key("users");
    w.Int64(v.users);
    w.EndObject();
  }
  w.EndArray();
  w.Key("srm");
  if (r.srm) {
    w.StartObject();
    w.Key("chi2");
    w.Double(r.srm->chi2);
    w.Key("p_value");
    w.Double(r.srm->p_value);
    w.Key("mismatch");
    w.Bool(r.srm->mismatch);
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("metrics");
  w.StartArray();
  for (const MetricResult& m : r.metrics) {
    w.StartObject();
    w.Key("key");
    Str(w, m.spec.key);
    w.Key("kind");
    Str(w, m.spec.kind);
    w.Key("event_type");
    Str(w, m.spec.event_type);
    if (m.spec.denominator_event_type) {
      w.Key("denominator_event_type");
      Str(w, *m.spec.denominator_event_type);
    }
    if (m.spec.quantile) {
      w.Key("quantile");
      w.Double(*m.spec.quantile);
    }
    w.Key("window_hours");
    if (m.spec.window_hours) {
      w.Int64(*m.spec.window_hours);
    } else {
      w.Null();
    }
    w.Key("higher_is_better");
    w.Bool(m.spec.higher_is_better);
    w.Key("guardrail");
    w.Bool(m.spec.guardrail);
    if (!m.analysis) {
      w.Key("error");
      Str(w, m.error);
      w.EndObject();
      continue;
    }
    w.Key("variants");
    w.StartArray();
    for (const stats::VariantSummary& s : m.analysis->variants) {
      w.StartObject();
      w.Key("key");
      Str(w, s.key);
      w.Key("users");
      w.Int64(s.users);
      w.Key("value");
      Num(w, s.value);
      w.Key("denominator");
      Num(w, s.denominator);
      w.Key("mean");
      Num(w, s.mean);
      w.Key("variance");
      Num(w, s.variance);
      w.Key("std_error");
      Num(w, s.std_error);
      w.Key("cuped_mean");
      Num(w, s.cuped_mean);
      w.Key("cuped_variance");
      Num(w, s.cuped_variance);
      w.EndObject();
    }
    w.EndArray();
    w.Key("comparisons");
    w.StartArray();
    for (const stats::ComparisonResult& c : m.analysis->comparisons) {
      w.StartObject();
      w.Key("variant");
      Str(w, c.variant_key);
      w.Key("lift_abs");
      Num(w, c.lift_abs);
      w.Key("lift_rel");
      Num(w, c.lift_rel);
      w.Key("ci_abs");
      Interval(w, c.ci_abs);
      w.Key("ci_rel");
      Interval(w, c.ci_rel);
      w.Key("p_value");
      Num(w, c.p_value);
      w.Key("p_value_adjusted");
      Num(w, c.p_value_adjusted);
      w.Key("chance_to_beat");
      Num(w, c.chance_to_beat);
      w.Key("expected_loss");
      Num(w, c.expected_loss);
      w.Key("expected_loss_control");
      Num(w, c.expected_loss_control);
      w.Key("seq_ci_abs");
      Interval(w, c.seq_ci_abs);
      w.Key("seq_ci_rel");
      Interval(w, c.seq_ci_rel);
      w.Key("seq_p_value");
      Num(w, c.seq_p_value);
      w.Key("cuped_applied");
      w.Bool(c.cuped_applied);
      w.Key("cuped_theta");
      Num(w, c.cuped_theta);
      w.Key("significant");
      w.Bool(c.significant);
      w.Key("direction");
      Str(w, DirectionName(c.direction));
      w.Key("undefined_reason");
      if (c.undefined_reason.empty()) {
        w.Null();
      } else {
        Str(w, c.undefined_reason);
      }
      w.Key("verdict");
      Str(w, c.verdict);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string RenderTable(const ExperimentResults& r) {
  std::string out = fmt::format("Experiment {} ({}), {}\n", r.key, r.name, r.status);
  out += "Exposed users: ";
  for (size_t i = 0; i < r.variants.size(); ++i) {
    out += fmt::format("{}{} {} (weight {:g})", i ? ", " : "", r.variants[i].key,
                       r.variants[i].users, r.variants[i].weight);
  }
  out += "\n";
  if (r.srm) {
    out += fmt::format("Sample ratio: chi2 {:.3f}, p = {:.4g}{}\n", r.srm->chi2, r.srm->p_value,
                       r.srm->mismatch ? "  MISMATCH: check assignment and logging" : " (ok)");
  }
  if (r.newest_change_ms) {
    out += fmt::format("Data as of {} ({:.0f} s ago)\n",
                       FormatTimestamp(*r.newest_change_ms * 1000, kRfc3339Millis), AgeSeconds(r));
  } else {
    out += "Data: nothing in ClickHouse yet\n";
  }
  for (const MetricResult& m : r.metrics) {
    out += fmt::format("\n{} ({}{} of {}{})\n", m.spec.key, m.spec.kind,
                       m.spec.quantile ? fmt::format(" p{:g}", *m.spec.quantile * 100) : "",
                       m.spec.event_type, m.spec.guardrail ? ", guardrail" : "");
    if (!m.analysis) {
      out += "  error: " + m.error + "\n";
      continue;
    }
    out += fmt::format("  {:<14} {:>10} {:>12} {:>12} {:>10} {:>26} {:>9} {:>9} {:>8}\n", "variant",
                       "users", "value", "mean", "lift", "95% CI", "p", "p adj", "P(beat)");
    for (const stats::VariantSummary& s : m.analysis->variants) {
      const stats::ComparisonResult* c = ComparisonFor(*m.analysis, s.key);
      bool relative = c && c->lift_rel.has_value();
      std::string lift = !c ? "" : relative ? PercentCell(c->lift_rel) : Cell(c->lift_abs);
      std::string ci = !c ? "" : CiCell(relative ? c->ci_rel : c->ci_abs, relative);
      out += fmt::format("  {:<14} {:>10} {:>12} {:>12} {:>10} {:>26} {:>9} {:>9} {:>8}\n", s.key,
                         s.users, Cell(s.value, 8), Cell(s.mean), lift, ci,
                         c ? Cell(c->p_value, 3) : "", c ? Cell(c->p_value_adjusted, 3) : "",
                         c ? Cell(c->chance_to_beat, 3) : "");
    }
    for (const stats::ComparisonResult& c : m.analysis->comparisons) {
      out += "  => " + c.verdict + "\n";
    }
  }
  return out;
}

std::string RenderCsv(const ExperimentResults& r) {
  std::string out =
      "experiment,metric,kind,variant,users,value,denominator,mean,variance,std_error,"
      "cuped_mean,lift_abs,lift_rel,ci_abs_lo,ci_abs_hi,ci_rel_lo,ci_rel_hi,p_value,"
      "p_value_adjusted,chance_to_beat,expected_loss,significant,verdict,srm_p_value,"
      "newest_change\n";
  std::string srm = r.srm ? fmt::format("{}", r.srm->p_value) : "";
  std::string fresh =
      r.newest_change_ms ? FormatTimestamp(*r.newest_change_ms * 1000, kRfc3339Millis) : "";
  for (const MetricResult& m : r.metrics) {
    if (!m.analysis) {
      out += fmt::format("{},{},{},,,,,,,,,,,,,,,,,,,,{},{},{}\n", CsvField(r.key),
                         CsvField(m.spec.key), CsvField(m.spec.kind), CsvField("error: " + m.error),
                         srm, fresh);
      continue;
    }
    for (const stats::VariantSummary& s : m.analysis->variants) {
      const stats::ComparisonResult* c = ComparisonFor(*m.analysis, s.key);
      auto lo = [](const std::optional<stats::Interval>& i) {
        return i ? CsvNum(i->lo) : std::string();
      };
      auto hi = [](const std::optional<stats::Interval>& i) {
        return i ? CsvNum(i->hi) : std::string();
      };
      out += fmt::format(
          "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
          CsvField(r.key), CsvField(m.spec.key), CsvField(m.spec.kind), CsvField(s.key), s.users,
          CsvNum(s.value), CsvNum(s.denominator), CsvNum(s.mean), CsvNum(s.variance),
          CsvNum(s.std_error), CsvNum(s.cuped_mean), c ? CsvNum(c->lift_abs) : "",
          c ? CsvNum(c->lift_rel) : "", c ? lo(c->ci_abs) : "", c ? hi(c->ci_abs) : "",
          c ? lo(c->ci_rel) : "", c ? hi(c->ci_rel) : "", c ? CsvNum(c->p_value) : "",
          c ? CsvNum(c->p_value_adjusted) : "", c ? CsvNum(c->chance_to_beat) : "",
          c ? CsvNum(c->expected_loss) : "", c ? (c->significant ? "true" : "false") : "",
          c ? CsvField(c->verdict) : "", srm, fresh);
    }
  }
  return out;
}

}  // namespace splitstream::results

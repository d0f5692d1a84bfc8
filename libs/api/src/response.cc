#include "response.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "request.h"
#include "splitstream/core/timestamp.h"

namespace splitstream::api {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, std::string_view s) { w.String(s.data(), static_cast<unsigned>(s.size())); }

void Time(Writer& w, const std::optional<int64_t>& micros) {
  if (micros) {
    Str(w, FormatTimestamp(*micros));
  } else {
    w.Null();
  }
}

void OptStr(Writer& w, const std::optional<std::string>& s) {
  if (s) {
    Str(w, *s);
  } else {
    w.Null();
  }
}

std::string_view StatusText(experiments::ExperimentStatus s) {
  // The API's spelling of the lifecycle; kept here so the wire format is defined by the API.
  switch (s) {
    case experiments::ExperimentStatus::kDraft:
      return "draft";
    case experiments::ExperimentStatus::kRunning:
      return "running";
    case experiments::ExperimentStatus::kStopped:
      return "stopped";
  }
  return "unknown";
}

void WriteExperiment(Writer& w, const experiments::Experiment& e) {
  const experiments::ExperimentSpec& s = e.spec;
  w.StartObject();
  w.Key("id");
  w.Int64(e.id.value());
  w.Key("key");
  Str(w, s.key);
  w.Key("name");
  Str(w, s.name);
  w.Key("description");
  Str(w, s.description);
  w.Key("status");
  Str(w, StatusText(e.status));
  w.Key("variants");
  w.StartArray();
  for (size_t i = 0; i < e.variants.size(); ++i) {
    w.StartObject();
    w.Key("id");
    w.Int64(e.variants[i].id.value());
    w.Key("key");
    Str(w, e.variants[i].key);
    w.Key("weight");
    w.Double(e.variants[i].weight);
    w.EndObject();
  }
  w.EndArray();
  w.Key("traffic");
  w.Double(s.traffic);
  w.Key("layer");
  OptStr(w, s.layer);
  w.Key("layer_start");
  w.Double(s.layer_start);
  w.Key("layer_end");
  w.Double(s.layer_end);
  w.Key("seed");
  Str(w, s.seed);
  w.Key("hash_version");
  w.Int(s.hash_version);
  w.Key("metrics");
  w.StartArray();
  for (const experiments::MetricSpec& m : s.metrics) {
    w.StartObject();
    w.Key("key");
    Str(w, m.key);
    w.Key("event_type");
    Str(w, m.event_type);
    w.Key("kind");
    Str(w, m.kind);
    w.Key("denominator_event_type");
    OptStr(w, m.denominator_event_type);
    w.Key("quantile");
    if (m.quantile) {
      w.Double(*m.quantile);
    } else {
      w.Null();
    }
    w.Key("window_hours");
    if (m.window_hours) {
      w.Int64(*m.window_hours);
    } else {
      w.Null();
    }
    w.Key("higher_is_better");
    w.Bool(m.higher_is_better);
    w.Key("guardrail");
    w.Bool(m.guardrail);
    w.EndObject();
  }
  w.EndArray();
  w.Key("created_at");
  Time(w, e.created_at_us);
  w.Key("started_at");
  Time(w, e.started_at_us);
  w.Key("stopped_at");
  Time(w, e.stopped_at_us);
  w.EndObject();
}

void WriteAssignment(Writer& w, const experiments::Assignment& a) {
  w.StartObject();
  w.Key("experiment");
  Str(w, a.experiment);
  w.Key("user_id");
  Str(w, a.user_id);
  w.Key("in_experiment");
  w.Bool(a.in_experiment);
  if (a.in_experiment) {
    w.Key("variant");
    Str(w, a.variant);
  }
  w.Key("reason");
  Str(w, a.reason);
  w.Key("stored");
  w.Bool(a.stored);
  if (a.assigned_at_us != 0) {
    w.Key("assigned_at");
    Str(w, FormatTimestamp(a.assigned_at_us));
  }
  w.EndObject();
}

std::string Take(const rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::string ExperimentJson(const experiments::Experiment& e) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  WriteExperiment(w, e);
  return Take(buf);
}

std::string ExperimentListJson(const std::vector<experiments::Experiment>& list) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("experiments");
  w.StartArray();
  for (const experiments::Experiment& e : list) WriteExperiment(w, e);
  w.EndArray();
  w.EndObject();
  return Take(buf);
}

std::string AssignmentJson(const experiments::Assignment& a) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  WriteAssignment(w, a);
  return Take(buf);
}

std::string UserAssignmentsJson(std::string_view user_id,
                                const std::vector<experiments::Assignment>& list) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("user_id");
  Str(w, user_id);
  w.Key("assignments");
  w.StartArray();
  for (const experiments::Assignment& a : list) WriteAssignment(w, a);
  w.EndArray();
  w.EndObject();
  return Take(buf);
}

std::string AcceptedJson(size_t n) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("accepted");
  w.Uint64(n);
  w.EndObject();
  return Take(buf);
}

}  // namespace splitstream::api

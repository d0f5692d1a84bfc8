#include "splitstream/loadgen/loadgen.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <map>
#include <memory>
#include <random>

#include "splitstream/core/strings.h"

namespace splitstream::loadgen {
namespace {

struct Response {
  long status = 0;
  std::string body;
};

// One keep-alive HTTP connection through a libcurl easy handle.
class HttpClient {
 public:
  explicit HttpClient(std::string base) : base_(std::move(base)), curl_(curl_easy_init()) {}
  ~HttpClient() { curl_easy_cleanup(curl_); }

  Result<Response> Send(const std::string& method, const std::string& path, const std::string& body,
                        const std::string& token) {
    Response out;
    std::string url = base_ + path;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &Write);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &out.body);
    struct curl_slist* headers = nullptr;
    std::string auth = "Authorization: Bearer " + token;
    headers = curl_slist_append(headers, auth.c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    if (!body.empty() || method == "POST") {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    CURLcode rc = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
      return Status::Unavailable(method + " " + url + ": " + curl_easy_strerror(rc));
    }
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &out.status);
    return out;
  }

 private:
  static size_t Write(char* data, size_t size, size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
  }
  std::string base_;
  CURL* curl_;
};

Status Expect(const Response& r, std::initializer_list<long> ok, const std::string& what) {
  for (long s : ok) {
    if (r.status == s) return Status::Ok();
  }
  return Status::Internal(what + " answered HTTP " + std::to_string(r.status) + ": " +
                          SanitizeForMessage(r.body, 300));
}

std::string ExperimentBody(const Options& o) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("key");
  w.String(o.experiment.c_str());
  w.Key("name");
  w.String(fmt::format("Simulated checkout experiment (true lift {:+g} % on {:g} %)", o.lift * 100,
                       o.base_rate * 100)
               .c_str());
  w.Key("variants");
  w.StartArray();
  for (const char* v : {"control", "treatment"}) {
    w.StartObject();
    w.Key("key");
    w.String(v);
    w.Key("weight");
    w.Double(0.5);
    w.EndObject();
  }
  w.EndArray();
  w.Key("traffic");
  w.Double(1.0);
  w.Key("metrics");
  w.StartArray();
  w.StartObject();
  w.Key("key");
  w.String("checkout");
  w.Key("event_type");
  w.String("checkout");
  w.Key("kind");
  w.String("conversion");
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

}  // namespace

Result<Summary> Simulate(const Options& o, const std::function<void(std::string_view)>& progress) {
  static const bool kCurlReady = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!kCurlReady) return Status::Internal("libcurl failed to initialise");
  const double treated_rate = o.base_rate * (1 + o.lift);
  if (o.users < 1 || o.base_rate < 0 || o.base_rate > 1 || treated_rate < 0 || treated_rate > 1 ||
      o.batch < 1) {
    return Status::InvalidArgument(fmt::format(
        "users >= 1, batch >= 1 and rates within [0, 1] required (control {}, treatment {} = "
        "base rate x (1 + lift))",
        o.base_rate, treated_rate));
  }
  auto start = std::chrono::steady_clock::now();
  HttpClient http(o.url);
  Summary summary;

  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto created, http.Send("POST", "/v1/experiments", ExperimentBody(o), o.admin_token));
  SPLITSTREAM_RETURN_IF_ERROR(Expect(created, {201, 409}, "POST /v1/experiments"));
  summary.created = created.status == 201;
  SPLITSTREAM_ASSIGN_OR_RETURN(
      auto started,
      http.Send("POST", "/v1/experiments/" + o.experiment + "/start", "", o.admin_token));
  SPLITSTREAM_RETURN_IF_ERROR(Expect(started, {200}, "POST /v1/experiments/{key}/start"));

  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::map<std::string, VariantSummary> by_variant;
  rapidjson::StringBuffer events;
  rapidjson::Writer<rapidjson::StringBuffer> w(events);
  int64_t pending = 0;
  auto flush = [&]() -> Status {
    if (pending == 0) return Status::Ok();
    w.EndArray();
    w.EndObject();
    std::string body = events.GetString();
    SPLITSTREAM_ASSIGN_OR_RETURN(auto r, http.Send("POST", "/v1/events", body, o.client_token));
    SPLITSTREAM_RETURN_IF_ERROR(Expect(r, {200, 202}, "POST /v1/events"));
    summary.events += pending;
    pending = 0;
    events.Clear();
    w.Reset(events);
    return Status::Ok();
  };
  auto add_event = [&](const std::string& user, const char* type, double value) {
    if (pending == 0) {
      w.StartObject();
      w.Key("events");
      w.StartArray();
    }
    w.StartObject();
    w.Key("experiment");
    w.String(o.experiment.c_str());
    w.Key("user_id");
    w.String(user.c_str());
    w.Key("type");
    w.String(type);
    w.Key("value");
    w.Double(value);
    w.EndObject();
    ++pending;
  };

  for (int64_t i = 0; i < o.users; ++i) {
    std::string user = "sim-" + std::to_string(o.seed) + "-" + std::to_string(i);
    rapidjson::StringBuffer req;
    rapidjson::Writer<rapidjson::StringBuffer> rw(req);
    rw.StartObject();
    rw.Key("user_id");
    rw.String(user.c_str());
    rw.Key("experiment");
    rw.String(o.experiment.c_str());
    rw.EndObject();
    SPLITSTREAM_ASSIGN_OR_RETURN(auto r,
                                 http.Send("POST", "/v1/assign", req.GetString(), o.client_token));
    SPLITSTREAM_RETURN_IF_ERROR(Expect(r, {200}, "POST /v1/assign"));
    rapidjson::Document doc;
    doc.Parse(r.body.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("in_experiment")) {
      return Status::Internal("POST /v1/assign returned unexpected JSON: " +
                              SanitizeForMessage(r.body, 200));
    }
    if (!doc["in_experiment"].GetBool()) {
      ++summary.not_in_experiment;
      continue;
    }
    std::string variant = doc["variant"].GetString();
    VariantSummary& vs = by_variant[variant];
    vs.variant = variant;
    ++vs.users;
    add_event(user, "exposure", 1);
    double p = variant == "control" ? o.base_rate : o.base_rate * (1 + o.lift);
    if (uniform(rng) < p) {
      ++vs.conversions;
      add_event(user, "checkout", std::round(uniform(rng) * 10000) / 100);
    }
    if (pending >= o.batch) SPLITSTREAM_RETURN_IF_ERROR(flush());
    if ((i + 1) % 1000 == 0 && progress) {
      progress("loadgen: " + std::to_string(i + 1) + "/" + std::to_string(o.users) + " users");
    }
  }
  SPLITSTREAM_RETURN_IF_ERROR(flush());
  for (auto& [k, v] : by_variant) summary.variants.push_back(v);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace splitstream::loadgen

#include "router.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <exception>
#include <vector>

#include "dashboard.h"
#include "errors.h"
#include "request.h"
#include "response.h"
#include "splitstream/core/strings.h"

namespace splitstream::api {
namespace {

enum class Need { kNone, kClient, kAdmin };

struct Match {
  Route route = Route::kUnmatched;
  std::string_view param;  // {key} or {user_id}, still percent-encoded
  std::string_view allow;  // methods of the route, for 405
  Need need = Need::kNone;
};

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> parts;
  if (path.empty() || path[0] != '/') return parts;
  size_t pos = 1;
  while (true) {
    size_t slash = path.find('/', pos);
    parts.push_back(path.substr(pos, slash == std::string_view::npos ? slash : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return parts;
}

Match MatchPath(std::string_view path) {
  std::vector<std::string_view> p = Split(path);
  auto nonempty = [&](size_t i) { return !p[i].empty(); };
  if (p.size() == 1) {
    for (const StaticAsset& a : DashboardAssets()) {
      if (a.path == path) {
        return {Route::kDashboard, {}, "GET", Need::kNone};  // the page reads the API with a token
      }
    }
    if (p[0] == "healthz") return {Route::kHealthz, {}, "GET", Need::kNone};
    if (p[0] == "readyz") return {Route::kReadyz, {}, "GET", Need::kNone};
    if (p[0] == "metrics") return {Route::kMetrics, {}, "GET", Need::kNone};
    return {};
  }
  if (p.size() < 2 || p[0] != "v1") return {};
  if (p[1] == "experiments") {
    if (p.size() == 2) return {Route::kExperiments, {}, "GET, POST", Need::kAdmin};
    if (!nonempty(2)) return {};
    if (p.size() == 3) return {Route::kExperiment, p[2], "GET, PATCH", Need::kAdmin};
    if (p.size() == 4 && p[3] == "start") {
      return {Route::kExperimentStart, p[2], "POST", Need::kAdmin};
    }
    if (p.size() == 4 && p[3] == "stop") {
      return {Route::kExperimentStop, p[2], "POST", Need::kAdmin};
    }
    if (p.size() == 4 && p[3] == "results") {
      return {Route::kExperimentResults, p[2], "GET", Need::kAdmin};
    }
    return {};
  }
  if (p.size() == 2 && p[1] == "assign") return {Route::kAssign, {}, "POST", Need::kClient};
  if (p.size() == 2 && p[1] == "events") return {Route::kEvents, {}, "POST", Need::kClient};
  if (p.size() == 4 && p[1] == "users" && nonempty(2) && p[3] == "assignments") {
    return {Route::kUserAssignments, p[2], "GET", Need::kClient};
  }
  return {};
}

bool MethodAllowed(std::string_view allow, std::string_view method) {
  // `allow` is a short list such as "GET, PATCH".
  size_t pos = 0;
  while (pos < allow.size()) {
    size_t comma = allow.find(',', pos);
    std::string_view m = allow.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
    if (m == method) return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

HttpResponse Json(int status, std::string body, Route route) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.route = route;
  return r;
}

template <typename T, typename F>
HttpResponse Reply(const Result<T>& result, int status, Route route, F&& to_json) {
  if (!result.ok()) return Router::Error(result.status(), route);
  return Json(status, to_json(*result), route);
}

}  // namespace

Router::Router(RouterOptions options, experiments::Service* service, pg::Pool* pool,
               const Metrics* metrics)
    : options_(std::move(options)), service_(service), pool_(pool), metrics_(metrics) {}

HttpResponse Router::Error(const Status& status, Route route) {
  ErrorReply e = MapStatus(status);
  HttpResponse r = Json(e.http_status, std::move(e.body), route);
  r.bearer_challenge = e.http_status == 401;
  return r;
}

Router::Role Router::Authenticate(std::string_view authorization) const {
  // RFC 7235: the scheme is case-insensitive; one space before the token.
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return Role::kNone;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) {
      return Role::kNone;
    }
  }
  std::string_view token = authorization.substr(kScheme.size());
  // Compare with both tokens every time, so that timing does not tell which one matched.
  bool admin = !options_.admin_token.empty() && ConstantTimeEquals(token, options_.admin_token);
  bool client = !options_.client_token.empty() && ConstantTimeEquals(token, options_.client_token);
  if (admin) return Role::kAdmin;
  if (client) return Role::kClient;
  return Role::kNone;
}

bool Router::MayBlock(std::string_view target) {
  switch (MatchPath(target.substr(0, target.find('?'))).route) {
    case Route::kAssign:
    case Route::kHealthz:
    case Route::kMetrics:
    case Route::kDashboard:
    case Route::kUnmatched:
      return false;
    default:
      return true;
  }
}

void Router::Handle(HttpRequest request, Responder done) const {
  std::string_view target = request.target;
  std::string_view path = target.substr(0, target.find('?'));
  Match match = MatchPath(path);
  if (match.route == Route::kUnmatched) {
    done(Error(Status::NotFound("no route for " + std::string(path))));
    return;
  }
  if (!MethodAllowed(match.allow, request.method)) {
    HttpResponse r =
        Error(MethodNotAllowed(request.method, RoutePattern(match.route)), match.route);
    r.allow = match.allow;
    done(std::move(r));
    return;
  }
  if (match.need != Need::kNone) {
    // Nothing about the presented credentials goes into the message or the log.
    Role role = Authenticate(request.authorization);
    if (role == Role::kNone) {
      done(Error(Status::Unauthenticated(request.authorization.empty()
                                             ? "missing Authorization: Bearer token"
                                             : "unknown bearer token"),
                 match.route));
      return;
    }
    if (match.need == Need::kAdmin && role != Role::kAdmin) {
      done(Error(Status::PermissionDenied("this route needs the admin token"), match.route));
      return;
    }
  }
  std::string param;
  if (!match.param.empty()) {
    std::string_view field = match.route == Route::kUserAssignments ? "user_id" : "key";
    Result<std::string> decoded = DecodePathSegment(match.param, field);
    if (!decoded.ok()) {
      done(Error(decoded.status(), match.route));
      return;
    }
    param = std::move(*decoded);
  }
  // A throw (allocation failure, a bug in a callee) ends this request only. The responder
  // is called at most once: once it has been handed to the service (assign), the service
  // owns the answer.
  bool answered = false;
  Responder once = [&answered, &done](HttpResponse r) {
    answered = true;
    done(std::move(r));
  };
  try {
    if (match.route == Route::kAssign) {
      Result<experiments::AssignRequest> req = ParseAssignRequest(request.body);
      if (!req.ok()) return once(Error(req.status(), match.route));
      answered = true;
      // Runs on the batcher's answering thread (or right here for immediate answers): it captures
      // only the responder, never the Router, which may be gone by then.
      service_->Assign(std::move(*req), [done](Result<experiments::Assignment> result) {
        done(Reply(result, 200, Route::kAssign, [](const auto& a) { return AssignmentJson(a); }));
      });
    } else {
      Dispatch(match.route, param, request, once);
    }
  } catch (const std::exception& e) {
    if (!answered) {
      done(Error(Status::Internal(std::string("exception: ") + e.what()), match.route));
    }
  } catch (...) {
    if (!answered) done(Error(Status::Internal("unknown exception"), match.route));
  }
}

void Router::Dispatch(Route route, const std::string& param, HttpRequest& request,
                      Responder& done) const {
  const std::string& method = request.method;
  switch (route) {
    case Route::kExperiments: {
      if (method == "GET") {
        done(Reply(service_->List(), 200, route,
                   [](const auto& list) { return ExperimentListJson(list); }));
        return;
      }
      Result<experiments::ExperimentSpec> spec = ParseExperimentSpec(request.body);
      if (!spec.ok()) return done(Error(spec.status(), route));
      done(Reply(service_->Create(std::move(*spec)), 201, route,
                 [](const auto& e) { return ExperimentJson(e); }));
      return;
    }
    case Route::kExperiment: {
      if (method == "GET") {
        done(Reply(service_->Get(param), 200, route,
                   [](const auto& e) { return ExperimentJson(e); }));
        return;
      }
      Result<AllocationPatch> patch = ParseAllocationPatch(request.body);
      if (!patch.ok()) return done(Error(patch.status(), route));
      std::optional<std::vector<double>> weights;
      if (patch->variants) {
        // The service takes weights only; the body names the variants so that a client
        // cannot silently put a weight on the wrong one.
        Result<experiments::Experiment> current = service_->Get(param);
        if (!current.ok()) return done(Error(current.status(), route));
        const std::vector<experiments::VariantSpec>& given = *patch->variants;
        if (given.size() != current->variants.size()) {
          return done(
              Error(Status::InvalidArgument(fmt::format("variants must list the experiment's {} "
                                                        "variants in order",
                                                        current->variants.size()),
                                            "variants"),
                    route));
        }
        weights.emplace();
        for (size_t i = 0; i < given.size(); ++i) {
          if (given[i].key != current->variants[i].key) {
            std::string field = fmt::format("variants[{}].key", i);
            return done(Error(
                Status::InvalidArgument(fmt::format("expected variant \"{}\" at this position",
                                                    current->variants[i].key),
                                        field),
                route));
          }
          weights->push_back(given[i].weight);
        }
      }
      done(Reply(service_->UpdateAllocation(param, patch->traffic, std::move(weights)), 200, route,
                 [](const auto& e) { return ExperimentJson(e); }));
      return;
    }
    case Route::kExperimentStart:
      done(Reply(service_->Start(param), 200, route,
                 [](const auto& e) { return ExperimentJson(e); }));
      return;
    case Route::kExperimentStop:
      done(Reply(service_->Stop(param), 200, route,
                 [](const auto& e) { return ExperimentJson(e); }));
      return;
    case Route::kExperimentResults: {
      if (options_.results == nullptr) {
        return done(Error(Status::Unavailable("results need ClickHouse"), route));
      }
      Result<std::string> json = options_.results->ResultsJson(param);
      if (!json.ok()) return done(Error(json.status(), route));
      return done(Json(200, std::move(*json), route));
    }
    case Route::kDashboard: {
      std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
      for (const StaticAsset& a : DashboardAssets()) {
        if (a.path != path) continue;
        HttpResponse r = Json(200, std::string(a.body), route);
        r.content_type = a.content_type;
        r.page = true;
        return done(std::move(r));
      }
      return done(Error(Status::NotFound("no route for " + std::string(path)), route));
    }
    case Route::kAssign:  // answered asynchronously by Handle()
      break;
    case Route::kUserAssignments:
      done(Reply(service_->UserAssignments(param), 200, route,
                 [&param](const auto& list) { return UserAssignmentsJson(param, list); }));
      return;
    case Route::kEvents: {
      Result<std::vector<experiments::Event>> events = ParseEvents(request.body);
      if (!events.ok()) return done(Error(events.status(), route));
      if (events->empty()) return done(Json(200, AcceptedJson(0), route));
      done(Reply(service_->TrackEvents(std::move(*events)), 200, route,
                 [](size_t n) { return AcceptedJson(n); }));
      return;
    }
    case Route::kHealthz:
      done(Json(200, R"({"status":"ok"})", route));
      return;
    case Route::kReadyz: {
      Status ready = service_->Ready();
      if (!ready.ok()) {
        return done(Error(Status::Unavailable("not ready: " + ready.message()), route));
      }
      done(Json(200, R"({"status":"ready"})", route));
      return;
    }
    case Route::kMetrics: {
      HttpResponse r = Json(200, metrics_->Render(service_->stats(), pool_), route);
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      done(std::move(r));
      return;
    }
    case Route::kUnmatched:
      break;
  }
  done(Error(Status::NotFound("no route"), route));
}

}  // namespace splitstream::api

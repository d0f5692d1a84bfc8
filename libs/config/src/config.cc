#include "splitstream/config/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <vector>

#include "splitstream/core/strings.h"

namespace splitstream::config {
namespace {

enum class Kind { kString, kInt };

// spdlog's level names, as InitLogging takes them.
constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

struct Setting {
  const char* name;
  Kind kind;
  bool secret;
  std::string Config::*str = nullptr;
  int64_t Config::*num = nullptr;
};

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> kSettings = {
      {"pg_dsn", Kind::kString, false, &Config::pg_dsn},
      {"kafka_brokers", Kind::kString, false, &Config::kafka_brokers},
      {"clickhouse_url", Kind::kString, false, &Config::clickhouse_url},
      {"clickhouse_database", Kind::kString, false, &Config::clickhouse_database},
      {"topic_prefix", Kind::kString, false, &Config::topic_prefix},
      {"http_addr", Kind::kString, false, &Config::http_addr},
      {"admin_token", Kind::kString, true, &Config::admin_token},
      {"client_token", Kind::kString, true, &Config::client_token},
      {"log_level", Kind::kString, false, &Config::log_level},
      {"results_intervals", Kind::kString, false, &Config::results_intervals},
      {"pg_pool_size", Kind::kInt, false, nullptr, &Config::pg_pool_size},
      {"http_threads", Kind::kInt, false, nullptr, &Config::http_threads},
      {"http_blocking_threads", Kind::kInt, false, nullptr, &Config::http_blocking_threads},
      {"max_body_bytes", Kind::kInt, false, nullptr, &Config::max_body_bytes},
  };
  return kSettings;
}

std::string EnvName(const Setting& s) {
  std::string name = "SPLITSTREAM_";
  for (const char* p = s.name; *p; ++p) name += static_cast<char>(std::toupper(*p));
  return name;
}

Status Assign(Config& cfg, const Setting& s, const std::string& value, const std::string& where) {
  if (s.kind == Kind::kString) {
    cfg.*s.str = value;
    return Status::Ok();
  }
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || ptr != value.data() + value.size() || n < 0) {
    return Status::InvalidArgument(where + ": " + s.name +
                                       " must be a non-negative integer, got \"" +
                                       SanitizeForMessage(value, 40) + "\"",
                                   s.name);
  }
  cfg.*s.num = n;
  return Status::Ok();
}

Status ApplyToml(Config& cfg, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::InvalidArgument(path + ":" + std::to_string(where.line) + ":" +
                                       std::to_string(where.column) + ": " +
                                       std::string(e.description()),
                                   "config");
  }
  for (const auto& [key, node] : table) {
    std::string k(key.str());
    const Setting* setting = nullptr;
    for (const Setting& s : Settings()) {
      if (k == s.name) setting = &s;
    }
    if (setting == nullptr) {
      return Status::InvalidArgument(
          path + ": unknown setting \"" + SanitizeForMessage(k, 60) + "\"", k);
    }
    if (setting->kind == Kind::kString) {
      auto v = node.value<std::string>();
      if (!node.is_string() || !v) {
        return Status::InvalidArgument(path + ": " + k + " must be a string", k);
      }
      cfg.*setting->str = *v;
    } else {
      auto v = node.value<int64_t>();
      if (!node.is_integer() || !v || *v < 0) {
        return Status::InvalidArgument(path + ": " + k + " must be a non-negative integer", k);
      }
      cfg.*setting->num = *v;
    }
  }
  return Status::Ok();
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<Config> Load(const std::string& toml_path, const std::map<std::string, std::string>& flags,
                    const EnvLookup& env) {
  Config cfg;
  if (!toml_path.empty()) SPLITSTREAM_RETURN_IF_ERROR(ApplyToml(cfg, toml_path));
  for (const Setting& s : Settings()) {
    if (auto v = env(EnvName(s))) {
      SPLITSTREAM_RETURN_IF_ERROR(Assign(cfg, s, *v, "environment variable " + EnvName(s)));
    }
  }
  for (const auto& [name, value] : flags) {
    const Setting* setting = nullptr;
    for (const Setting& s : Settings()) {
      if (name == s.name) setting = &s;
    }
    if (setting == nullptr) return Status::InvalidArgument("unknown setting " + name, name);
    SPLITSTREAM_RETURN_IF_ERROR(Assign(cfg, *setting, value, "flag"));
  }
  if (cfg.pg_pool_size < 1 || cfg.pg_pool_size > 1000) {
    return Status::InvalidArgument("pg_pool_size must be between 1 and 1000", "pg_pool_size");
  }
  if (cfg.http_blocking_threads < 1 || cfg.http_blocking_threads > 1000) {
    return Status::InvalidArgument("http_blocking_threads must be between 1 and 1000",
                                   "http_blocking_threads");
  }
  if (cfg.max_body_bytes < 1024) {
    return Status::InvalidArgument("max_body_bytes must be at least 1024", "max_body_bytes");
  }
  if (std::find(kLogLevels.begin(), kLogLevels.end(), cfg.log_level) == kLogLevels.end()) {
    return Status::InvalidArgument(
        "log_level must be one of trace, debug, info, warn, error, critical, off; got \"" +
            SanitizeForMessage(cfg.log_level, 40) + "\"",
        "log_level");
  }
  if (cfg.results_intervals != "fixed" && cfg.results_intervals != "sequential") {
    return Status::InvalidArgument("results_intervals must be fixed or sequential; got \"" +
                                       SanitizeForMessage(cfg.results_intervals, 40) + "\"",
                                   "results_intervals");
  }
  return cfg;
}

Result<std::pair<std::string, uint16_t>> SplitHostPort(std::string_view addr,
                                                       std::string_view field) {
  const std::string shown = SanitizeForMessage(std::string(addr), 60);
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument(std::string(field) + " must be host:port, got \"" + shown + "\"",
                                   std::string(field));
  }
  std::string host(addr.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  std::string_view p = addr.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || port < 0 || port > 65535) {
    return Status::InvalidArgument(std::string(field) + " has an invalid port: \"" + shown + "\"",
                                   std::string(field));
  }
  return std::make_pair(host, static_cast<uint16_t>(port));
}

Result<std::map<std::string, std::string>> ParseKafkaProperties(
    const std::vector<std::string>& entries, const std::vector<std::string_view>& fixed,
    std::string_view why, std::string_view field) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& entry = entries[i];
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      // Without '=' the whole entry may be a value: show where it is, not what it holds.
      return Status::InvalidArgument(
          std::string(field) + " #" + std::to_string(i + 1) + " must be KEY=VALUE",
          std::string(field));
    }
    std::string key = entry.substr(0, eq);
    for (std::string_view f : fixed) {
      if (key == f) {
        return Status::InvalidArgument(std::string(field) + ": " + SanitizeForMessage(key, 60) +
                                           " cannot be set: " + std::string(why),
                                       std::string(field));
      }
    }
    out[std::move(key)] = entry.substr(eq + 1);
  }
  return out;
}

Result<std::pair<std::string, uint16_t>> Config::HttpHostPort() const {
  return SplitHostPort(http_addr, "http_addr");
}

std::string Config::Redacted() const {
  std::string out;
  for (const Setting& s : Settings()) {
    out += s.name;
    out += " = ";
    if (s.kind == Kind::kInt) {
      out += std::to_string(this->*s.num);
    } else if (s.secret) {
      out += (this->*s.str).empty() ? "(unset)" : "***";
    } else {
      out += RedactSecrets(this->*s.str);
    }
    out += '\n';
  }
  return out;
}

std::map<std::string, std::string> Config::ToEnvironment() const {
  std::map<std::string, std::string> env;
  for (const Setting& s : Settings()) {
    env[EnvName(s)] = s.kind == Kind::kInt ? std::to_string(this->*s.num) : this->*s.str;
  }
  return env;
}

}  // namespace splitstream::config

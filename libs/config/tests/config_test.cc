#include "splitstream/config/config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace splitstream::config {
namespace {

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsMatchTheDesign) {
  auto cfg = Load("", {}, MapEnv({}));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->pg_dsn, "host=127.0.0.1 port=54329 dbname=splitstream user=postgres");
  EXPECT_EQ(cfg->kafka_brokers, "");
  EXPECT_EQ(cfg->clickhouse_url, "http://127.0.0.1:58123");
  EXPECT_EQ(cfg->clickhouse_database, "experiments");
  EXPECT_EQ(cfg->topic_prefix, "dbserver1");
  EXPECT_EQ(cfg->http_addr, "127.0.0.1:8080");
}

TEST(Config, FlagsBeatEnvironmentBeatFileBeatDefaults) {
  std::string path = WriteFile("precedence.toml",
                               "topic_prefix = \"from_file\"\nhttp_addr = \"0.0.0.0:1\"\n"
                               "clickhouse_database = \"file_db\"\npg_pool_size = 3\n");
  auto cfg = Load(
      path, {{"topic_prefix", "from_flag"}},
      MapEnv({{"SPLITSTREAM_TOPIC_PREFIX", "from_env"}, {"SPLITSTREAM_HTTP_ADDR", "127.0.0.1:9"}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->topic_prefix, "from_flag");
  EXPECT_EQ(cfg->http_addr, "127.0.0.1:9");
  EXPECT_EQ(cfg->clickhouse_database, "file_db");
  EXPECT_EQ(cfg->pg_pool_size, 3);
  EXPECT_EQ(cfg->kafka_brokers, "");
}

TEST(Config, BadFileNamesKeyAndPlace) {
  auto unknown = Load(WriteFile("unknown.toml", "pg_dns = \"x\"\n"), {}, MapEnv({}));
  EXPECT_EQ(unknown.status().field(), "pg_dns");
  EXPECT_NE(unknown.status().message().find("unknown setting"), std::string::npos);
  auto type = Load(WriteFile("type.toml", "pg_pool_size = \"many\"\n"), {}, MapEnv({}));
  EXPECT_EQ(type.status().field(), "pg_pool_size");
  auto syntax = Load(WriteFile("syntax.toml", "pg_dsn = \n"), {}, MapEnv({}));
  EXPECT_EQ(syntax.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(syntax.status().message().find("syntax.toml:1:"), std::string::npos);
  auto missing = Load("/nonexistent/splitstream.toml", {}, MapEnv({}));
  EXPECT_FALSE(missing.ok());
}

TEST(Config, BadEnvironmentValue) {
  auto cfg = Load("", {}, MapEnv({{"SPLITSTREAM_PG_POOL_SIZE", "-2"}}));
  EXPECT_EQ(cfg.status().field(), "pg_pool_size");
  EXPECT_NE(cfg.status().message().find("SPLITSTREAM_PG_POOL_SIZE"), std::string::npos);
}

TEST(Config, BlockingThreadsWithinTheirRange) {
  auto cfg = Load("", {{"http_blocking_threads", "3"}}, MapEnv({}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->http_blocking_threads, 3);
  EXPECT_EQ(Load("", {}, MapEnv({}))->http_blocking_threads, 8);
  auto zero = Load("", {}, MapEnv({{"SPLITSTREAM_HTTP_BLOCKING_THREADS", "0"}}));
  EXPECT_EQ(zero.status().field(), "http_blocking_threads");
  EXPECT_NE(zero.status().message().find("between 1 and 1000"), std::string::npos);
}

TEST(Config, LogLevelIsOneOfTheNamedLevels) {
  EXPECT_EQ(Load("", {}, MapEnv({}))->log_level, "info");
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_TRUE(Load("", {{"log_level", level}}, MapEnv({})).ok()) << level;
  }
  // A misspelt level used to leave the process at info without a word.
  auto bad = Load("", {}, MapEnv({{"SPLITSTREAM_LOG_LEVEL", "verbose"}}));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().field(), "log_level");
  EXPECT_NE(bad.status().message().find("got \"verbose\""), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(Load(WriteFile("level.toml", "log_level = \"warning\"\n"), {}, MapEnv({})).ok());
}

TEST(Config, ResultsIntervalsAreFixedOrSequential) {
  EXPECT_EQ(Load("", {}, MapEnv({}))->results_intervals, "fixed");
  auto seq = Load("", {}, MapEnv({{"SPLITSTREAM_RESULTS_INTERVALS", "sequential"}}));
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(seq->results_intervals, "sequential");
  EXPECT_EQ(seq->ToEnvironment().at("SPLITSTREAM_RESULTS_INTERVALS"), "sequential");
  auto bad = Load("", {{"results_intervals", "always"}}, MapEnv({}));
  EXPECT_EQ(bad.status().field(), "results_intervals");
  EXPECT_NE(bad.status().message().find("fixed or sequential"), std::string::npos);
}

TEST(Config, HttpHostPort) {
  Config cfg;
  cfg.http_addr = "127.0.0.1:8081";
  auto hp = cfg.HttpHostPort();
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "127.0.0.1");
  EXPECT_EQ(hp->second, 8081);
  cfg.http_addr = "[::1]:80";
  EXPECT_EQ(cfg.HttpHostPort()->first, "::1");
  cfg.http_addr = "localhost";
  EXPECT_EQ(cfg.HttpHostPort().status().field(), "http_addr");
  cfg.http_addr = "h:99999";
  EXPECT_FALSE(cfg.HttpHostPort().ok());
}

TEST(Config, SplitHostPortNamesTheSetting) {
  auto hp = SplitHostPort("0.0.0.0:9187", "metrics_addr");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "0.0.0.0");
  EXPECT_EQ(hp->second, 9187);
  for (const char* bad : {"9187", ":9187", "h:", "h:12x", "h:-1", "h:65536"}) {
    auto r = SplitHostPort(bad, "metrics_addr");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().field(), "metrics_addr") << bad;
    EXPECT_NE(r.status().message().find("metrics_addr"), std::string::npos) << bad;
  }
}

TEST(Config, ParseKafkaPropertiesKeepsOrderRefusesFixedKeysAndHidesValues) {
  auto ok = ParseKafkaProperties({"linger.ms=5", "sasl.password=a=b", "linger.ms=20", "x="},
                                 {"acks"}, "why", "kafka_property");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  const std::map<std::string, std::string> expected = {
      {"linger.ms", "20"}, {"sasl.password", "a=b"}, {"x", ""}};
  EXPECT_EQ(*ok, expected);

  auto fixed = ParseKafkaProperties({"linger.ms=5", "acks=1"}, {"enable.idempotence", "acks"},
                                    "acks=all is needed", "kafka_property");
  ASSERT_FALSE(fixed.ok());
  EXPECT_EQ(fixed.status().field(), "kafka_property");
  EXPECT_EQ(fixed.status().message(), "kafka_property: acks cannot be set: acks=all is needed");

  for (const char* bad : {"sasl.password", "=secret"}) {
    auto r = ParseKafkaProperties({"linger.ms=5", bad}, {}, "", "kafka_property");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message(), "kafka_property #2 must be KEY=VALUE") << bad;
  }
}

TEST(Config, ToEnvironmentResolvesToTheSameConfiguration) {
  auto cfg = Load("", {{"pg_dsn", "host=h password=pw"}, {"pg_pool_size", "3"}},
                  MapEnv({{"SPLITSTREAM_ADMIN_TOKEN", "adm"}, {"SPLITSTREAM_KAFKA_BROKERS", ""}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto env = cfg->ToEnvironment();
  EXPECT_EQ(env.at("SPLITSTREAM_PG_DSN"), "host=h password=pw");
  EXPECT_EQ(env.at("SPLITSTREAM_PG_POOL_SIZE"), "3");
  EXPECT_EQ(env.at("SPLITSTREAM_ADMIN_TOKEN"), "adm");
  auto again = Load("", {}, MapEnv(env));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->Redacted(), cfg->Redacted());
  EXPECT_EQ(again->admin_token, "adm");
  EXPECT_EQ(again->kafka_brokers, "");
}

TEST(Config, RedactedHidesSecrets) {
  Config cfg;
  cfg.admin_token = "adm-secret";
  cfg.pg_dsn = "host=x password=pw123";
  std::string text = cfg.Redacted();
  EXPECT_EQ(text.find("adm-secret"), std::string::npos);
  EXPECT_EQ(text.find("pw123"), std::string::npos);
  EXPECT_NE(text.find("admin_token = ***"), std::string::npos);
}

}  // namespace
}  // namespace splitstream::config

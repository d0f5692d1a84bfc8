// UpFixture: `splitstream up` (migrate + serve + cdc + sink) on a fresh PostgreSQL database,
// Kafka topic prefix and ClickHouse database of the test stack, stopped by its PID; its log
// is printed when a test fails. Used by up_test.cc and browser_test.cc.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>

#include "cdc_harness.h"
#include "clickhouse_harness.h"

namespace splitstream::testing {

class UpFixture : public CdcFixture {
 protected:
  void SetUp() override {
    CdcFixture::SetUp();
    ch_database_ = UniqueName("up");
    http_addr_ = fmt::format("127.0.0.1:{}", FreePort());
    group_ = UniqueName("up_group");
    ch_ = NewClickHouse("");
    ASSERT_TRUE(ch_);
  }
  void TearDown() override {
    if (up_ && up_->Running()) {
      up_->Signal(SIGTERM);
      up_->Wait(std::chrono::seconds(90));
    }
    if (::testing::Test::HasFailure()) {
      std::string log = ReadFile(log_);
      if (log.size() > 8000) log = "..." + log.substr(log.size() - 8000);
      std::fprintf(stderr, "---- splitstream up log ----\n%s\n", log.c_str());
    }
    up_.reset();
    if (ch_)
      (void)ch_->Execute("DROP DATABASE IF EXISTS " + clickhouse::QuoteIdentifier(ch_database_));
    CdcFixture::TearDown();
  }

  // The environment of `up`; `env_` (set before StartUp) adds to and overrides it.
  std::map<std::string, std::string> Environment() const {
    std::map<std::string, std::string> env = {{"SPLITSTREAM_PG_DSN", db_->dsn()},
                                              {"SPLITSTREAM_TOPIC_PREFIX", prefix_},
                                              {"SPLITSTREAM_CLICKHOUSE_DATABASE", ch_database_},
                                              {"SPLITSTREAM_HTTP_ADDR", http_addr_},
                                              {"SPLITSTREAM_ADMIN_TOKEN", ""},
                                              {"SPLITSTREAM_CLIENT_TOKEN", ""},
                                              {"SPLITSTREAM_LOG_LEVEL", "info"}};
    for (const auto& [k, v] : env_) env[k] = v;
    return env;
  }

  void StartUp() {
    auto p =
        Process::Start({BinaryPath(), "up", "--slot", slot_, "--group", group_,
                        "--cdc-metrics-addr", "127.0.0.1:0", "--sink-metrics-addr", "127.0.0.1:0"},
                       Environment(), log_);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    up_ = std::make_unique<Process>(std::move(*p));
  }

  // The word printed after "splitstream up: <label>" once `up` printed it ("" after the
  // timeout).
  std::string AwaitPrinted(const std::string& label) {
    const std::string marker = "splitstream up: " + label;
    for (int i = 0; i < 600; ++i) {
      const std::string log = ReadFile(log_);
      size_t at = log.find(marker);
      if (at != std::string::npos) {
        size_t begin = log.find_first_not_of(' ', at + marker.size());
        size_t end = log.find_first_of(" )\n", begin);
        if (begin != std::string::npos && end != std::string::npos) {
          return log.substr(begin, end - begin);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "";
  }

  // Whether `up`'s serve answers /readyz within 60 s (false at once once `up` has exited).
  bool AwaitServeReady() {
    for (int i = 0; i < 600 && up_->Running(); ++i) {
      if (RunCommand("curl -fsS -o /dev/null http://" + http_addr_ + "/readyz 2>/dev/null") == 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // The PID `up` printed for its child `role` (0 when none was printed).
  pid_t ChildPid(const std::string& role) {
    const std::string word = AwaitPrinted(role + " (pid");
    return word.empty() ? 0 : static_cast<pid_t>(std::stol(word));
  }

  std::unique_ptr<clickhouse::Client> ch_;
  std::unique_ptr<Process> up_;
  std::string ch_database_, http_addr_, group_;
  std::map<std::string, std::string> env_;
};

}  // namespace splitstream::testing

// A current ClickHouse release for integration tests, beside the test stack's 18.16 (the
// release Debian ships): chdb (the virtualenv of scripts/install-chdb, named by
// SPLITSTREAM_CHDB_PYTHON) behind tests/compat/chdb_http.py, which hands each HTTP request
// of Splitstream's client to it unchanged. Started on a free port of 127.0.0.1 and stopped by
// its PID.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "splitstream/testing/process.h"

namespace splitstream::testing {

class ChdbServer {
 public:
  // Call inside ASSERT_NO_FATAL_FAILURE: fails the test when chdb cannot be started.
  // `name` is unique to the caller (a directory under /tmp).
  void Start(const std::string& name) {
    const char* python = std::getenv("SPLITSTREAM_CHDB_PYTHON");
    ASSERT_TRUE(python && *python) << "SPLITSTREAM_CHDB_PYTHON is not set: run through "
                                      "scripts/test (scripts/install-chdb installs chdb)";
    dir_ = "/tmp/" + name;
    std::filesystem::create_directories(dir_);
    const std::string port_file = dir_ + "/port";
    auto p =
        Process::Start({python, std::string(SPLITSTREAM_SOURCE_DIR) + "/tests/compat/chdb_http.py",
                        port_file, dir_ + "/data"},
                       {}, log());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    process_ = std::make_unique<Process>(std::move(*p));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string port;
    while ((port = ReadFile(port_file)).empty()) {
      ASSERT_TRUE(process_->Running()) << ReadFile(log());
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << ReadFile(log());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    url_ = "http://127.0.0.1:" + port.substr(0, port.find('\n'));
  }

  ~ChdbServer() {
    if (process_) {
      if (::testing::Test::HasFailure()) {
        std::fprintf(stderr, "---- chdb_http log ----\n%s\n", ReadFile(log()).c_str());
      }
      process_->Signal(SIGTERM);
      if (!process_->Wait(std::chrono::seconds(30))) process_->Signal(SIGKILL);
      process_.reset();
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  const std::string& url() const { return url_; }

 private:
  std::string log() const { return dir_ + "/chdb_http.log"; }

  std::string dir_;
  std::string url_;
  std::unique_ptr<Process> process_;
};

}  // namespace splitstream::testing

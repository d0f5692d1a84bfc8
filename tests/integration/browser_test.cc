// The dashboard (GET /) in a real browser: `splitstream up` against the test stack's
// PostgreSQL, Kafka and ClickHouse, then tests/browser/dashboard.test.mjs (Node.js,
// playwright-core, Debian's chromium; installed by scripts/install-deps and scripts/test)
// drives an experiment through the API and checks the page against the API's answers.
#include <gtest/gtest.h>

#include "up_harness.h"

namespace splitstream::testing {
namespace {

class BrowserTest : public UpFixture {};

TEST_F(BrowserTest, TheDashboardShowsWhatTheApiSays) {
  const std::string admin = "adm_" + UniqueName("t");
  const std::string client = "cli_" + UniqueName("t");
  env_ = {{"SPLITSTREAM_ADMIN_TOKEN", admin}, {"SPLITSTREAM_CLIENT_TOKEN", client}};
  StartUp();
  ASSERT_TRUE(AwaitServeReady()) << "serve never became ready";

  const std::string artifacts = "/tmp/" + UniqueName("browser_artifacts");
  const std::string node_log = artifacts + ".log";
  auto node =
      Process::Start({"/usr/bin/env", "node",
                      std::string(SPLITSTREAM_SOURCE_DIR) + "/tests/browser/dashboard.test.mjs"},
                     {{"SPLITSTREAM_TEST_BASE_URL", "http://" + http_addr_},
                      {"SPLITSTREAM_ADMIN_TOKEN", admin},
                      {"SPLITSTREAM_CLIENT_TOKEN", client},
                      {"SPLITSTREAM_TEST_ARTIFACTS", artifacts}},
                     node_log);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  std::optional<int> rc = node->Wait(std::chrono::seconds(240));
  EXPECT_EQ(rc, std::optional<int>(0)) << "dashboard.test.mjs:\n" << ReadFile(node_log);
  std::printf("%s", ReadFile(node_log).c_str());
}

}  // namespace
}  // namespace splitstream::testing

#include "splitstream/process/stop_signals.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

namespace splitstream::process {
namespace {

using namespace std::chrono_literals;

// Each test that lets a signal arrive runs in a child process of its own (a death test), so
// that the signal's mask and the forced exit do not reach the rest of this program. A
// statement that ends with _Exit(0) shows the process was not ended by StopSignals.

TEST(StopSignalsDeathTest, ASignalStopsAndReleaseEndsTheWatcher) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals("test", 60s);
        if (signals.stop()) std::_Exit(2);
        kill(getpid(), SIGTERM);
        signals.Wait();
        if (!signals.stop()) std::_Exit(3);
        signals.Release();
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(StopSignalsDeathTest, TheGraceRunningOutEndsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals("test", 300ms);
        kill(getpid(), SIGTERM);
        signals.Wait();
        std::this_thread::sleep_for(20s);  // a stop that hangs
        std::_Exit(0);
      },
      testing::ExitedWithCode(1), "");
}

TEST(StopSignalsDeathTest, TheSameSignalAgainEndsTheProcessAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals("test", 60s);
        kill(getpid(), SIGINT);
        signals.Wait();
        kill(getpid(), SIGINT);
        std::this_thread::sleep_for(20s);
        std::_Exit(0);
      },
      testing::ExitedWithCode(1), "");
}

TEST(StopSignalsDeathTest, TheOtherSignalMeanwhileIsOnlyLogged) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignals signals("test", 60s);
        kill(getpid(), SIGINT);
        signals.Wait();
        kill(getpid(), SIGTERM);  // e.g. a script's trap after the terminal's Ctrl-C
        std::this_thread::sleep_for(500ms);
        signals.Release();
        std::_Exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(StopSignalsTest, ReleasedWithoutASignalTheProgramGoesOn) {
  { StopSignals signals("test", 100ms); }
  std::this_thread::sleep_for(300ms);  // past the grace: nothing ends this program
  SUCCEED();
}

}  // namespace
}  // namespace splitstream::process

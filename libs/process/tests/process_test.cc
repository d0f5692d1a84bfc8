#include "splitstream/process/process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace splitstream::process {
namespace {

using namespace std::chrono_literals;

// Reaps until every child has exited or `limit` has passed; true when all have.
bool ReapAll(std::vector<Child>& children, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    Reap(children);
    bool all = true;
    for (const Child& c : children) all = all && !c.running;
    if (all) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

std::string TempPath(const std::string& name) {
  return testing::TempDir() + "process_test_" + std::to_string(getpid()) + "_" + name;
}

// Waits up to 10 s for `path` to exist.
bool AppearsSoon(const std::string& path) {
  for (int i = 0; i < 1000; ++i) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// A shell child that runs `trap` (a shell trap command), says it is ready by creating
// `ready`, then idles until a signal ends it.
Child TrappingChild(const std::string& role, const std::string& trap, const std::string& ready) {
  auto pid = Spawn("/bin/sh",
                   {"-c", trap + "; : > \"$1\"; while :; do sleep 0.05; done", "sh", ready}, {});
  EXPECT_TRUE(pid.ok()) << pid.status().ToString();
  return Child{role, pid.ok() ? *pid : -1};
}

// Blocks SIGTERM and SIGINT in the calling thread for the life of the object (threads it
// starts meanwhile inherit that), as the caller of StopAll does.
class BlockedStopSignals {
 public:
  BlockedStopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~BlockedStopSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  const sigset_t& set() const { return set_; }

 private:
  sigset_t set_;
  sigset_t old_;
};

TEST(SpawnTest, PassesArgumentsAndReplacesOnlyTheGivenEnvironmentVariables) {
  setenv("SPLITSTREAM_PROCESS_TEST", "parent", 1);
  setenv("SPLITSTREAM_PROCESS_KEPT", "kept", 1);
  auto pid = Spawn("/bin/sh",
                   {"-c",
                    R"(test "$SPLITSTREAM_PROCESS_TEST" = child || exit 1
                       test "$SPLITSTREAM_PROCESS_KEPT" = kept || exit 2
                       test "$1" = "two words" || exit 3
                       exit 7)",
                    "sh", "two words"},
                   {{"SPLITSTREAM_PROCESS_TEST", "child"}});
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  std::vector<Child> children{{"sh", *pid}};
  ASSERT_TRUE(ReapAll(children));
  EXPECT_EQ(children[0].exit_code, 7);
}

TEST(SpawnTest, TheChildBlocksNoSignalsWhateverTheParentBlocks) {
  sigset_t usr1;
  sigset_t old;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &old);
  // grep reads its own mask (a shell would reset it).
  auto pid = Spawn("/bin/grep", {"-q", "^SigBlk:[[:space:]]*0*$", "/proc/self/status"}, {});
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  std::vector<Child> children{{"grep", *pid}};
  ASSERT_TRUE(ReapAll(children));
  EXPECT_EQ(children[0].exit_code, 0);
}

TEST(SpawnTest, TheChildHasAProcessGroupOfItsOwn) {
  auto pid = Spawn("/bin/sh", {"-c", "sleep 30"}, {});
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(getpgid(*pid), *pid);
  EXPECT_NE(getpgid(*pid), getpgrp());
  kill(-*pid, SIGTERM);  // the group: the shell and its sleep
  std::vector<Child> children{{"sh", *pid}};
  ASSERT_TRUE(ReapAll(children));
  EXPECT_EQ(children[0].exit_code, 128 + SIGTERM);
}

TEST(SpawnTest, AProgramThatCannotStartIsAnErrorNamingIt) {
  auto pid = Spawn("/nonexistent/splitstream", {"serve"}, {});
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("/nonexistent/splitstream serve"), std::string::npos)
      << pid.status().ToString();
}

TEST(ReapTest, CollectsExitedChildrenWithoutWaitingForRunningOnes) {
  auto quick = Spawn("/bin/sh", {"-c", "exit 3"}, {});
  auto slow = Spawn("/bin/sleep", {"30"}, {});
  ASSERT_TRUE(quick.ok() && slow.ok());
  std::vector<Child> children{{"quick", *quick}, {"slow", *slow}};
  for (int i = 0; i < 1000 && children[0].running; ++i) {
    Reap(children);
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(children[0].running);
  EXPECT_EQ(children[0].exit_code, 3);
  EXPECT_TRUE(children[1].running);
  kill(*slow, SIGKILL);
  ASSERT_TRUE(ReapAll(children));
  EXPECT_EQ(children[1].exit_code, 128 + SIGKILL);
}

TEST(StopAllTest, StopsInOrderAndKillsAChildThatIgnoresSigterm) {
  BlockedStopSignals blocked;
  const std::string stubborn_ready = TempPath("stubborn_ready");
  const std::string polite_ready = TempPath("polite_ready");
  const std::string polite_stopped = TempPath("polite_stopped");
  std::vector<Child> children;
  children.push_back(TrappingChild("stubborn", "trap '' TERM", stubborn_ready));
  children.push_back(TrappingChild(
      "polite", "trap 'date +%s%N > " + polite_stopped + "; exit 0' TERM", polite_ready));
  ASSERT_TRUE(AppearsSoon(stubborn_ready) && AppearsSoon(polite_ready));

  const auto start = std::chrono::system_clock::now();
  StopAll("test", children, 0, blocked.set(), 1s);
  const auto took = std::chrono::system_clock::now() - start;

  EXPECT_FALSE(children[0].running);
  EXPECT_EQ(children[0].exit_code, 128 + SIGKILL);  // killed once its grace ran out
  EXPECT_FALSE(children[1].running);
  EXPECT_EQ(children[1].exit_code, 0);  // its trap ran
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 10s);
  // The second child was asked to stop only after the first was gone.
  std::ifstream in(polite_stopped);
  long long stopped_ns = 0;
  ASSERT_TRUE(in >> stopped_ns);
  const auto asked = std::chrono::system_clock::time_point(std::chrono::nanoseconds(stopped_ns));
  EXPECT_GE(asked - start, 1s);
  for (const auto& p : {stubborn_ready, polite_ready, polite_stopped}) std::remove(p.c_str());
}

TEST(StopAllTest, TheSameSignalAgainKillsEveryChildAtOnce) {
  BlockedStopSignals blocked;
  const std::string a_ready = TempPath("a_ready");
  const std::string b_ready = TempPath("b_ready");
  std::vector<Child> children;
  children.push_back(TrappingChild("a", "trap '' TERM", a_ready));
  children.push_back(TrappingChild("b", "trap '' TERM", b_ready));
  ASSERT_TRUE(AppearsSoon(a_ready) && AppearsSoon(b_ready));

  // Started after the block, so the signal waits for StopAll's sigtimedwait.
  std::thread again([] {
    std::this_thread::sleep_for(300ms);
    kill(getpid(), SIGINT);
  });
  const auto start = std::chrono::steady_clock::now();
  StopAll("test", children, SIGINT, blocked.set(), 60s);
  const auto took = std::chrono::steady_clock::now() - start;
  again.join();

  EXPECT_LT(took, 10s);
  for (const Child& c : children) {
    EXPECT_FALSE(c.running) << c.role;
    EXPECT_EQ(c.exit_code, 128 + SIGKILL) << c.role;
  }
  for (const auto& p : {a_ready, b_ready}) std::remove(p.c_str());
}

TEST(StopAllTest, TheOtherSignalMeanwhileDoesNotCutTheGraceShort) {
  BlockedStopSignals blocked;
  const std::string ready = TempPath("other_ready");
  std::vector<Child> children;
  children.push_back(TrappingChild("stubborn", "trap '' TERM", ready));
  ASSERT_TRUE(AppearsSoon(ready));

  std::thread other([] {
    std::this_thread::sleep_for(300ms);
    kill(getpid(), SIGTERM);  // the stop began with SIGINT
  });
  const auto start = std::chrono::steady_clock::now();
  StopAll("test", children, SIGINT, blocked.set(), 2s);
  const auto took = std::chrono::steady_clock::now() - start;
  other.join();

  EXPECT_GE(took, 2s);
  EXPECT_EQ(children[0].exit_code, 128 + SIGKILL);
  std::remove(ready.c_str());
}

TEST(AcceptsTest, TellsWhetherSomethingAcceptsConnectionsOnAPort) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t port = ntohs(addr.sin_port);

  EXPECT_TRUE(Accepts("127.0.0.1", port));
  EXPECT_TRUE(Accepts("0.0.0.0", port));  // a wildcard address is tried on loopback
  EXPECT_TRUE(Accepts("", port));
  EXPECT_FALSE(Accepts("not a host name", port));
  close(fd);
  EXPECT_FALSE(Accepts("127.0.0.1", port));
}

TEST(RandomTokenTest, Is32HexDigitsAndDiffersEachTime) {
  auto a = RandomToken();
  auto b = RandomToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 32u);
  EXPECT_EQ(a->find_first_not_of("0123456789abcdef"), std::string::npos) << *a;
  EXPECT_NE(*a, *b);
}

TEST(SelfExecutableTest, IsThisTestProgram) {
  auto self = SelfExecutable();
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  EXPECT_EQ(*self, std::filesystem::canonical("/proc/self/exe").string());
  EXPECT_EQ(std::filesystem::path(*self).filename(), "process_test");
}

}  // namespace
}  // namespace splitstream::process

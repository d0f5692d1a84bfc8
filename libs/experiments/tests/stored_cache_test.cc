// The cache of stored assignments: keys by experiment and user, bounded, thread-safe.
#include "stored_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace splitstream::experiments::internal {
namespace {

TEST(StoredAssignmentCacheTest, FindsWhatWasPutByExperimentAndUser) {
  StoredAssignmentCache cache(1000);
  EXPECT_FALSE(cache.Find(1, "alice"));
  cache.Put(1, "alice", {1, 111});
  cache.Put(2, "alice", {0, 222});
  cache.Put(1, std::string(256, 'x'), {1, 333});  // longer than any inline buffer
  auto a = cache.Find(1, "alice");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->variant, 1);
  EXPECT_EQ(a->assigned_at_us, 111);
  EXPECT_EQ(cache.Find(2, "alice")->assigned_at_us, 222);
  EXPECT_EQ(cache.Find(1, std::string(256, 'x'))->assigned_at_us, 333);
  EXPECT_FALSE(cache.Find(3, "alice"));
  EXPECT_FALSE(cache.Find(1, "alic"));
  EXPECT_FALSE(cache.Find(1, std::string("alice\0", 6)));
  EXPECT_EQ(cache.hits(), 3u);
  // A stored assignment never changes: the first Put stays.
  cache.Put(1, "alice", {0, 999});
  EXPECT_EQ(cache.Find(1, "alice")->assigned_at_us, 111);
}

TEST(StoredAssignmentCacheTest, StaysWithinItsCapacity) {
  StoredAssignmentCache cache(64 * 10);
  for (int i = 0; i < 100000; ++i) cache.Put(7, "user-" + std::to_string(i), {0, i});
  EXPECT_LE(cache.size(), 64u * 10);
  EXPECT_GT(cache.size(), 0u);
  StoredAssignmentCache off(0);
  off.Put(7, "u", {0, 1});
  EXPECT_FALSE(off.Find(7, "u"));
  EXPECT_EQ(off.size(), 0u);
}

// Keys live in blocks the shard frees when it is emptied: across many emptyings, with keys
// of every length (some longer than a block), an entry found is always the one put under
// that key (ASan would also catch a key left pointing into a freed block).
TEST(StoredAssignmentCacheTest, EntriesStayExactAcrossEvictions) {
  StoredAssignmentCache cache(64 * 50);
  auto user = [](int i) {
    size_t length = i % 1000 == 0 ? 70000 + i % 7 : static_cast<size_t>(1 + i % 40);
    std::string u(length, static_cast<char>('a' + i % 26));
    return u + "#" + std::to_string(i);
  };
  for (int i = 0; i < 30000; ++i) {
    cache.Put(i % 3, user(i), {i % 2, i});
    auto just_put = cache.Find(i % 3, user(i));
    ASSERT_TRUE(just_put) << i;
    ASSERT_EQ(just_put->assigned_at_us, i);
  }
  EXPECT_LE(cache.size(), 64u * 50);
  size_t found = 0;
  for (int i = 0; i < 30000; ++i) {
    auto e = cache.Find(i % 3, user(i));
    if (!e) continue;
    ++found;
    ASSERT_EQ(e->assigned_at_us, i) << "user " << i;
    ASSERT_EQ(e->variant, i % 2);
    EXPECT_FALSE(cache.Find((i + 1) % 3, user(i))) << "another experiment, same user";
  }
  EXPECT_GT(found, 0u);
}

TEST(StoredAssignmentCacheTest, ThreadsPutAndFindConcurrently) {
  StoredAssignmentCache cache(1 << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 20000; ++i) {
        std::string user = "t" + std::to_string(t) + "-" + std::to_string(i);
        cache.Put(t, user, {t % 2, i});
        auto e = cache.Find(t, user);
        ASSERT_TRUE(e);
        ASSERT_EQ(e->assigned_at_us, i);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(cache.size(), 80000u);
  EXPECT_EQ(cache.hits(), 80000u);
}

}  // namespace
}  // namespace splitstream::experiments::internal

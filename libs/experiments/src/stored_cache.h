// A bounded in-memory cache of stored assignments. A stored assignment never changes (the
// first assignment is kept forever), so a cached entry never goes stale and a returning user
// is answered without a round trip to PostgreSQL. Only assignments read back from a
// committed statement are put here, so an answer from the cache is durable too.
//
// Every new user is put here, so Put is on the hot path of new-user assignment as much as
// Find is on the returning user's: the shards are open-addressing tables (Abseil's
// flat_hash_map), and a lookup builds its key in a reused per-thread buffer, not a new string.
//
// Eviction is coarse: a shard that reaches its share of the capacity is emptied. The keys are
// copied into blocks the shard owns (no allocation per entry), so emptying a shard frees a
// few blocks and one table, not a string per entry: with strings, the 64 shards, which fill
// up together, took tens of milliseconds to empty one after the other, and the answers of
// new users waited behind them. Thread-safe.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace splitstream::experiments::internal {

class StoredAssignmentCache {
 public:
  struct Entry {
    int variant = -1;  // index into the experiment's variants
    int64_t assigned_at_us = 0;
  };

  // capacity 0 disables the cache.
  explicit StoredAssignmentCache(size_t capacity);

  std::optional<Entry> Find(int64_t experiment_id, std::string_view user_id) const;
  void Put(int64_t experiment_id, std::string_view user_id, Entry entry);

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  // Entries held now (for tests).
  size_t size() const;

 private:
  static constexpr size_t kShards = 64;
  static constexpr size_t kKeyBlock = 64 * 1024;
  struct Shard {
    mutable std::mutex mu;
    // All guarded by mu. The keys of `map` point into `blocks`, which never move; `free`
    // bytes are left at `next` in the last block.
    absl::flat_hash_map<absl::string_view, Entry> map;
    std::vector<std::unique_ptr<char[]>> blocks;
    char* next = nullptr;
    size_t free = 0;
  };
  // A copy of `key` in the shard's blocks.
  static absl::string_view CopyKey(Shard& shard, std::string_view key);
  // The key: the experiment id's 8 bytes, then the user id; valid until this thread's next call.
  static std::string_view Key(int64_t experiment_id, std::string_view user_id);
  Shard& ShardFor(std::string_view key) const;

  const size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
  mutable std::atomic<uint64_t> hits_{0};
};

}  // namespace splitstream::experiments::internal

// A bounded in-memory cache of stored assignments. A stored assignment never changes (the
// first assignment is kept forever), so a cached entry never goes stale and a returning user
// is answered without a round trip to PostgreSQL. Only assignments read back from a
// committed statement are put here, so an answer from the cache is durable too.
//
// Every new user is put here, so Put is on the hot path of new-user assignment as much as
// Find is on the returning user's: the shards are open-addressing tables (Abseil's
// flat_hash_map), and a lookup builds its key in a reused per-thread buffer, not a new string.
//
// Eviction is coarse: a shard that reaches its share of the capacity is emptied. Thread-safe.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

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
  struct Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, Entry> map;  // guarded by mu
  };
  // The key: the experiment id's 8 bytes, then the user id; valid until this thread's next call.
  static std::string_view Key(int64_t experiment_id, std::string_view user_id);
  Shard& ShardFor(std::string_view key) const;

  const size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
  mutable std::atomic<uint64_t> hits_{0};
};

}  // namespace splitstream::experiments::internal

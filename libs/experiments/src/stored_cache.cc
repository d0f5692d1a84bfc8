#include "stored_cache.h"

#include <cstring>
#include <functional>

namespace splitstream::experiments::internal {

StoredAssignmentCache::StoredAssignmentCache(size_t capacity)
    : per_shard_(capacity == 0 ? 0 : std::max<size_t>(1, capacity / kShards)) {}

std::string StoredAssignmentCache::Key(int64_t experiment_id, std::string_view user_id) {
  std::string key(sizeof(experiment_id) + user_id.size(), '\0');
  std::memcpy(key.data(), &experiment_id, sizeof(experiment_id));
  std::memcpy(key.data() + sizeof(experiment_id), user_id.data(), user_id.size());
  return key;
}

StoredAssignmentCache::Shard& StoredAssignmentCache::ShardFor(const std::string& key) const {
  return shards_[std::hash<std::string>()(key) % kShards];
}

std::optional<StoredAssignmentCache::Entry> StoredAssignmentCache::Find(
    int64_t experiment_id, std::string_view user_id) const {
  if (per_shard_ == 0) return std::nullopt;
  std::string key = Key(experiment_id, user_id);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end()) return std::nullopt;
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second;
}

void StoredAssignmentCache::Put(int64_t experiment_id, std::string_view user_id, Entry entry) {
  if (per_shard_ == 0) return;
  std::string key = Key(experiment_id, user_id);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= per_shard_) shard.map.clear();
  shard.map.emplace(std::move(key), entry);
}

}  // namespace splitstream::experiments::internal

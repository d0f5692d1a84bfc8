#include "stored_cache.h"

#include <absl/hash/hash.h>

#include <cstring>

namespace splitstream::experiments::internal {

StoredAssignmentCache::StoredAssignmentCache(size_t capacity)
    : per_shard_(capacity == 0 ? 0 : std::max<size_t>(1, capacity / kShards)) {}

std::string_view StoredAssignmentCache::Key(int64_t experiment_id, std::string_view user_id) {
  thread_local std::string key;  // keeps its capacity: no allocation per lookup
  key.resize(sizeof(experiment_id) + user_id.size());
  std::memcpy(key.data(), &experiment_id, sizeof(experiment_id));
  std::memcpy(key.data() + sizeof(experiment_id), user_id.data(), user_id.size());
  return key;
}

StoredAssignmentCache::Shard& StoredAssignmentCache::ShardFor(std::string_view key) const {
  // The tables hash with absl::Hash too, and pick slots by its low bits: take the high ones.
  return shards_[(absl::Hash<std::string_view>()(key) >> 40) % kShards];
}

std::optional<StoredAssignmentCache::Entry> StoredAssignmentCache::Find(
    int64_t experiment_id, std::string_view user_id) const {
  if (per_shard_ == 0) return std::nullopt;
  std::string_view key = Key(experiment_id, user_id);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  // Debian's Abseil has its own string_view type, which its string hash takes.
  auto it = shard.map.find(absl::string_view(key.data(), key.size()));
  if (it == shard.map.end()) return std::nullopt;
  hits_.fetch_add(1, std::memory_order_relaxed);
  return it->second;
}

void StoredAssignmentCache::Put(int64_t experiment_id, std::string_view user_id, Entry entry) {
  if (per_shard_ == 0) return;
  std::string_view key = Key(experiment_id, user_id);
  Shard& shard = ShardFor(key);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.map.size() >= per_shard_) {
    shard.map.clear();
    shard.map.reserve(per_shard_);  // it filled up once: no rehashing on the way back
    shard.blocks.clear();
    shard.next = nullptr;
    shard.free = 0;
  }
  // One probe: the key is copied only when it is new (a stored assignment never changes, so
  // an existing entry stays).
  shard.map.lazy_emplace(absl::string_view(key.data(), key.size()),
                         [&](const auto& construct) { construct(CopyKey(shard, key), entry); });
}

absl::string_view StoredAssignmentCache::CopyKey(Shard& shard, std::string_view key) {
  if (key.size() > shard.free) {
    size_t size = std::max(kKeyBlock, key.size());
    shard.blocks.push_back(std::unique_ptr<char[]>(new char[size]));
    shard.next = shard.blocks.back().get();
    shard.free = size;
  }
  char* copy = shard.next;
  std::memcpy(copy, key.data(), key.size());
  shard.next += key.size();
  shard.free -= key.size();
  return absl::string_view(copy, key.size());
}

size_t StoredAssignmentCache::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    n += shard.map.size();
  }
  return n;
}

}  // namespace splitstream::experiments::internal

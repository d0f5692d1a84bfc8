// Reader: a bounds-checked forward cursor over big-endian (network order) bytes, after
// leveldb's util/coding.h. Every read either succeeds and advances, or fails and leaves the
// cursor where the failed field starts; nothing is ever read past the end of the view.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace splitstream::pgoutput {

class Reader {
 public:
  explicit Reader(std::string_view data, size_t offset = 0) : data_(data), pos_(offset) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }

  bool U8(uint8_t* v) {
    if (remaining() < 1) return false;
    *v = static_cast<uint8_t>(data_[pos_]);
    pos_ += 1;
    return true;
  }
  bool U16(uint16_t* v) { return BigEndian(v); }
  bool U32(uint32_t* v) { return BigEndian(v); }
  bool U64(uint64_t* v) { return BigEndian(v); }
  bool I32(int32_t* v) {
    uint32_t u;
    if (!U32(&u)) return false;
    *v = static_cast<int32_t>(u);
    return true;
  }
  bool I64(int64_t* v) {
    uint64_t u;
    if (!U64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  // A NUL-terminated string; the view excludes the terminator.
  bool CString(std::string_view* s) {
    if (remaining() == 0) return false;  // memchr on an empty (possibly null) view is UB
    const void* nul = std::memchr(data_.data() + pos_, '\0', remaining());
    if (nul == nullptr) return false;
    const size_t len = static_cast<const char*>(nul) - (data_.data() + pos_);
    *s = data_.substr(pos_, len);
    pos_ += len + 1;
    return true;
  }
  bool Bytes(size_t n, std::string_view* s) {
    if (remaining() < n) return false;
    *s = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  template <typename T>
  bool BigEndian(T* v) {
    if (remaining() < sizeof(T)) return false;
    T raw;
    std::memcpy(&raw, data_.data() + pos_, sizeof(T));
    if constexpr (sizeof(T) == 2) *v = __builtin_bswap16(raw);
    if constexpr (sizeof(T) == 4) *v = __builtin_bswap32(raw);
    if constexpr (sizeof(T) == 8) *v = __builtin_bswap64(raw);
    pos_ += sizeof(T);
    return true;
  }

  std::string_view data_;
  size_t pos_;
};

// Big-endian writers for the few messages the client sends.
inline void AppendU64(std::string* out, uint64_t v) {
  const uint64_t be = __builtin_bswap64(v);
  out->append(reinterpret_cast<const char*>(&be), 8);
}

}  // namespace splitstream::pgoutput

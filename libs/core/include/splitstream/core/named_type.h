// NamedType: a strong typedef so that an experiment id cannot be passed where an LSN is
// expected (after redpanda's utils/named_type.h).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace splitstream {

template <typename T, typename Tag>
class NamedType {
 public:
  using ValueType = T;
  constexpr NamedType() = default;
  constexpr explicit NamedType(T value) : value_(value) {}
  constexpr T value() const { return value_; }
  constexpr auto operator<=>(const NamedType&) const = default;

 private:
  T value_{};
};

using ExperimentId = NamedType<int64_t, struct ExperimentIdTag>;
using VariantId = NamedType<int64_t, struct VariantIdTag>;

}  // namespace splitstream

template <typename T, typename Tag>
struct std::hash<splitstream::NamedType<T, Tag>> {
  size_t operator()(const splitstream::NamedType<T, Tag>& v) const noexcept {
    return std::hash<T>()(v.value());
  }
};

// Result<T>: either a value of T or a non-OK Status.
//
// Accessing value() of a failed Result is a bug and aborts; check ok() first. Result is a
// value type with the thread-safety of T.
#pragma once

#include <cstdlib>
#include <utility>
#include <variant>

#include "splitstream/core/status.h"

namespace splitstream {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(data_).ok()) std::abort();   // an OK status carries no value
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }

  T& value() & { return Checked(); }
  const T& value() const& { return const_cast<Result*>(this)->Checked(); }
  T&& value() && { return std::move(Checked()); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &const_cast<Result*>(this)->Checked(); }
  T& operator*() & { return Checked(); }
  const T& operator*() const& { return const_cast<Result*>(this)->Checked(); }

 private:
  T& Checked() {
    if (!ok()) std::abort();
    return std::get<T>(data_);
  }
  std::variant<T, Status> data_;
};

}  // namespace splitstream

#define SPLITSTREAM_CONCAT_INNER(a, b) a##b
#define SPLITSTREAM_CONCAT(a, b) SPLITSTREAM_CONCAT_INNER(a, b)

// SPLITSTREAM_ASSIGN_OR_RETURN(auto x, Foo()); returns Foo()'s status when it failed.
#define SPLITSTREAM_ASSIGN_OR_RETURN(lhs, expr) \
  SPLITSTREAM_ASSIGN_OR_RETURN_IMPL(SPLITSTREAM_CONCAT(_result_, __LINE__), lhs, expr)
#define SPLITSTREAM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                      \
  if (!tmp.ok()) return tmp.status();                     \
  lhs = std::move(tmp).value()

// Errors as values at the system boundary (see docs/ERRORS.md).
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace agentos {

/// An error: an errno value (0 when not a system error) plus a human context
/// chain, outermost first ("spawn worker1: mkdir /sys/fs/cgroup/...: EACCES").
struct Error {
  int code = 0;
  std::string context;

  /// Prefixes `outer` to the context, as the error travels up.
  [[nodiscard]] Error wrap(std::string_view outer) const {
    return Error{code, std::string(outer) + ": " + context};
  }
  /// Context plus strerror(code) when code is set.
  [[nodiscard]] std::string message() const {
    if (code == 0) return context;
    return context + ": " + std::strerror(code);
  }
};

template <class T>
using Result = std::expected<T, Error>;

/// Error from the current errno.
inline std::unexpected<Error> sys_error(std::string context) {
  return std::unexpected(Error{errno, std::move(context)});
}
/// Error with an explicit errno value (0: a logical error, no errno).
inline std::unexpected<Error> make_error(std::string context, int code = 0) {
  return std::unexpected(Error{code, std::move(context)});
}

}  // namespace agentos

// Early return for Result<T>: evaluates to the value or returns the error.
// g++ 12 lacks and_then/transform on std::expected, hence this one macro.
#define AOS_TRY(expr)                                              \
  ({                                                               \
    auto aos_try_result_ = (expr);                                 \
    if (!aos_try_result_) return std::unexpected(std::move(aos_try_result_.error())); \
    std::move(*aos_try_result_);                                   \
  })

// Early return for Result<void>.
#define AOS_TRY_VOID(expr)                                         \
  do {                                                             \
    auto aos_try_result_ = (expr);                                 \
    if (!aos_try_result_) return std::unexpected(std::move(aos_try_result_.error())); \
  } while (0)

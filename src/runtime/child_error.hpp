// Failure messages of a child between clone and execve.
//
// The child of a clone in the kernel process must not allocate (see
// spawner.hpp: another thread may have held the malloc lock at clone time),
// so a message is assembled in a fixed buffer and written with one write(2)
// to the exec-status pipe, where the parent reads it as the spawn error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace agentos::runtime {

/// Exit codes of a child that failed before execve (the message says why).
inline constexpr int kSetupFailedExit = 126;  // a sandbox step failed
inline constexpr int kExecFailedExit = 127;   // execve itself failed (like a shell)

class ChildError {
 public:
  /// Records "<parts...>: <strerror(err)>" (no suffix when err == 0) and
  /// returns false, so that a step can end with `return err.set(errno, ...)`.
  template <class... Parts>
  bool set(int err, const Parts&... parts) {
    len_ = 0;
    (append(as_view(parts)), ...);
    if (err != 0) {
      append(": ");
      append_errno(err);
    }
    return false;
  }

  [[nodiscard]] std::string_view message() const { return {buf_, len_}; }

  /// Writes the message to `fd` in one write (it is below PIPE_BUF, so the
  /// reader never sees half of it) and terminates the process with `code`.
  [[noreturn]] void report_and_exit(int fd, int code) const;

 private:
  static std::string_view as_view(const char* s) { return s ? std::string_view(s) : "(null)"; }
  static std::string_view as_view(std::string_view s) { return s; }
  static std::string_view as_view(const std::string& s) { return s; }
  void append(std::string_view s);
  void append_errno(int err);

  char buf_[1024];
  size_t len_ = 0;
};

}  // namespace agentos::runtime

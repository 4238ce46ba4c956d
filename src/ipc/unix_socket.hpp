// Creating, locking and removing the kernel's Unix listening sockets.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos::ipc {

/// Exclusive lock on `<socket>.lock`, so two kernels never race for one
/// socket path. Removes the lock file when released.
class PathLock {
 public:
  static Result<PathLock> acquire(const std::string& socket_path);
  PathLock(PathLock&&) noexcept = default;
  PathLock& operator=(PathLock&&) noexcept = default;
  ~PathLock();
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  PathLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

struct ListenOptions {
  mode_t mode = 0600;
  std::optional<uid_t> owner;  // chown the socket file (agent sockets)
  std::optional<gid_t> group;
  int backlog = 4096;
};

/// Binds and listens on `path` (non-blocking, close-on-exec). If `path`
/// exists: a live socket is an error ("a kernel is already running"), a
/// stale socket is replaced, anything else is refused and left alone.
Result<UniqueFd> listen_unix(const std::string& path, const ListenOptions& opts);

/// Connects to `path` (blocking); used for the liveness probe and by tools.
Result<UniqueFd> connect_unix(const std::string& path);

}  // namespace agentos::ipc

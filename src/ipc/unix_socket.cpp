#include "ipc/unix_socket.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace agentos::ipc {
namespace {

Result<sockaddr_un> make_addr(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return make_error("socket path '" + path + "' must be 1.." +
                          std::to_string(sizeof addr.sun_path - 1) + " bytes",
                      ENAMETOOLONG);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Decides what to do with an existing file at `path` before binding.
Result<void> clear_stale(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return {};
    return sys_error("stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return make_error(path + " exists and is not a socket; refusing to replace it (remove it or choose another --socket)");
  }
  if (connect_unix(path)) {
    return make_error("a kernel is already running on " + path);
  }
  // Nobody answers: a leftover of a kernel that died. Replace it.
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return sys_error("remove stale socket " + path);
  return {};
}

}  // namespace

Result<PathLock> PathLock::acquire(const std::string& socket_path) {
  std::string path = socket_path + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return sys_error("open lock file " + path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK) {
      return make_error("a kernel is already running on " + socket_path + " (" + path + " is locked)");
    }
    return sys_error("lock " + path);
  }
  return PathLock(std::move(path), std::move(fd));
}

PathLock::~PathLock() {
  // Unlink while still holding the lock so no other kernel holds a lock on
  // the file we remove.
  if (fd_) ::unlink(path_.c_str());
}

Result<UniqueFd> connect_unix(const std::string& path) {
  sockaddr_un addr = AOS_TRY(make_addr(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    return sys_error("connect " + path);
  }
  return fd;
}

Result<UniqueFd> listen_unix(const std::string& path, const ListenOptions& opts) {
  sockaddr_un addr = AOS_TRY(make_addr(path));
  AOS_TRY_VOID(clear_stale(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return sys_error("socket");
  // bind() creates the file with the process umask; tighten the umask so the
  // socket is never briefly wider than `mode` before the chmod below.
  const mode_t old = ::umask(0177);
  const int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old);
  if (rc < 0) return make_error("bind " + path, bind_errno);
  if (::chmod(path.c_str(), opts.mode) < 0) return sys_error("chmod " + path);
  if (opts.owner || opts.group) {
    if (::chown(path.c_str(), opts.owner.value_or(static_cast<uid_t>(-1)),
                opts.group.value_or(static_cast<gid_t>(-1))) < 0) {
      return sys_error("chown " + path);
    }
  }
  if (::listen(fd.get(), opts.backlog) < 0) return sys_error("listen " + path);
  return fd;
}

}  // namespace agentos::ipc

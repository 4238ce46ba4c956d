#include "runtime/clone.hpp"

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace agentos::runtime {
namespace {

// clone3 is missing (ENOSYS) on kernels before 5.3 and under seccomp profiles
// that predate it (Docker before 20.10 answers ENOSYS on purpose so that libc
// falls back). Legacy clone has no CLONE_INTO_CGROUP, so the caller attaches
// the child to its cgroup before letting it run.
Result<Cloned> clone_fallback(uint64_t flags) {
  long pid = syscall(SYS_clone, static_cast<unsigned long>(flags) | SIGCHLD, nullptr, nullptr,
                     nullptr, nullptr);
  if (pid < 0) return sys_error("clone");
  if (pid == 0) return Cloned{};
  // Nobody else can reap our child, so `pid` cannot be recycled before the
  // pidfd refers to it.
  // Raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C".
  int fd = static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0));
  if (fd < 0) {
    int err = errno;
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    return make_error("pidfd_open (needs Linux 5.3 or later)", err);
  }
  return Cloned{static_cast<pid_t>(pid), UniqueFd(fd), false, false};
}

}  // namespace

Result<Cloned> clone_with_pidfd(uint64_t flags, std::optional<int> cgroup_fd) {
  int pidfd = -1;
  clone_args args{};
  args.flags = flags | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  size_t size = CLONE_ARGS_SIZE_VER0;
  if (cgroup_fd) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(*cgroup_fd);
    size = CLONE_ARGS_SIZE_VER2;
  }
  long pid = syscall(SYS_clone3, &args, size);
  if (pid == 0) return Cloned{};
  if (pid > 0) return Cloned{static_cast<pid_t>(pid), UniqueFd(pidfd), true, cgroup_fd.has_value()};
  if (errno != ENOSYS) return sys_error(cgroup_fd ? "clone3 (into cgroup)" : "clone3");
  return clone_fallback(flags);
}

pid_t raw_fork() {
  return static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

}  // namespace agentos::runtime

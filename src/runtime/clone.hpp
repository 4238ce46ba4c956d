// Creating children: clone3 with a pidfd, its documented fallback, and a
// fork that is safe in the child of a clone.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos::runtime {

/// What clone_with_pidfd() did. In the child, pid == 0 and nothing else is set.
struct Cloned {
  pid_t pid = 0;
  UniqueFd pidfd;
  bool clone3 = false;       // false: the clone + pidfd_open fallback was used
  bool into_cgroup = false;  // CLONE_INTO_CGROUP placed the child in its cgroup
};

/// Starts a child (fork semantics: a copy of this process, same stack) with
/// `flags` (CLONE_NEW* bits) and SIGCHLD as its exit signal, and returns its
/// pidfd. Tries clone3(CLONE_PIDFD [| CLONE_INTO_CGROUP]) first; when clone3
/// answers ENOSYS (kernels before 5.3, container seccomp profiles written
/// before it existed) falls back to clone(2) + pidfd_open(2), in which case
/// `into_cgroup` is false and the caller must place the child itself.
/// The child returns from this function with pid == 0.
Result<Cloned> clone_with_pidfd(uint64_t flags, std::optional<int> cgroup_fd);

/// fork(2) for a process that is itself the child of a raw clone: a plain
/// clone syscall, so none of glibc's fork machinery (atfork handlers, malloc
/// arena locks) runs. Returns like fork(): 0 in the child, the pid or -1.
pid_t raw_fork();

}  // namespace agentos::runtime

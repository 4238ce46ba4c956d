// The child side of a spawn: everything between clone and execve, as a
// plain list of steps over a plan that the parent computed beforehand.
//
// Everything here runs in the child of a raw clone of the kernel process:
// only syscalls and reads of the plan, no allocation (see spawner.hpp).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/landlock.hpp"
#include "runtime/mounts.hpp"
#include "runtime/seccomp_filter.hpp"

namespace agentos::runtime {

struct ChildPlan {
  bool sandboxed = true;
  pid_t parent_pid = 0;

  // Pipes, as numbered in the child. The child closes the parent's ends.
  int sync_read = -1, sync_write = -1;      // parent -> child: one byte "go", or EOF: give up
  int status_read = -1, status_write = -1;  // child -> parent: error message, or EOF at execve
  int report_read = -1, report_write = -1;  // init -> parent: the agent's wait status
  int stdout_fd = -1, stderr_fd = -1;       // -1: /dev/null

  // The program. argv and envp are null-terminated and point into strings
  // that the parent keeps alive.
  std::string exe;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string cwd;  // empty: unchanged
  std::optional<std::pair<uid_t, gid_t>> ids;

  // Sandbox (sandboxed only).
  std::string hostname;
  bool loopback = false;   // bring lo up (fresh network namespace)
  bool cgroup_ns = false;  // unshare a cgroup namespace once in the cgroup
  MountPlan mounts;
  std::optional<LandlockPlan> landlock;     // nullopt: no Landlock on this kernel (reported)
  const SeccompProgram* seccomp = nullptr;  // null: no seccomp on this kernel (reported)
};

/// Entry point of the cloned child; never returns. Sandboxed: becomes the
/// namespace's init, builds the filesystem, forks the agent and reaps.
/// Unsandboxed: becomes the agent itself.
[[noreturn]] void run_child(const ChildPlan& plan);

}  // namespace agentos::runtime

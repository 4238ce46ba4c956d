// Starting an agent: everything between "the kernel decides to start an
// agent" and "execve succeeded" (DESIGN §4).
//
// spawn() plans in the parent (paths, /etc contents, argv/envp arrays,
// Landlock rules, the compiled seccomp filter), clones, releases the child
// and returns without waiting for execve; the caller watches the child's
// pidfd and the exec-status pipe in its event loop.
//
// Threads: the child of a clone may only make async-signal-safe calls if the
// parent has other threads (one of them may have held a lock, malloc's for
// instance, at the moment of the clone). The child code therefore never
// allocates and never enters libseccomp or libcap: it only executes the
// plan with syscalls. Call spawn() from the thread that outlives its
// children (the event loop): PR_SET_PDEATHSIG fires when the parent
// *thread* exits.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/capability_probe.hpp"
#include "runtime/child_process.hpp"
#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos::runtime {

struct SpawnSpec {
  std::string name;               // hostname inside the sandbox
  std::string exe;                // absolute path of the program (see interpreter.hpp)
  std::vector<std::string> argv;  // argv[0..]
  std::vector<std::string> env;   // the complete environment, "K=V"
  bool sandboxed = true;
  bool network = false;  // false: own network namespace with only lo
  std::vector<std::string>
      ro_paths;  // extra read-only binds at the same path (script dir, interpreter)
  std::optional<std::string> workspace;  // host dir bound read-write at /workspace
  std::string socket_host_path;          // the agent's listening socket on the host ("" : none)
  std::string socket_sandbox_path;       // where it appears inside (e.g. /tmp/agentos.sock)
  /// Working directory. Default: sandboxed "/workspace" if there is one, else
  /// "/tmp"; unsandboxed, the kernel's own.
  std::optional<std::string> cwd;
  /// Unprivileged ids for the agent; honoured when the kernel is root
  /// (gid defaults to uid). Without root the agent keeps the kernel's ids
  /// (uid 0 inside its user namespace) and the report says so.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  uint64_t tmp_size_bytes = 64 << 20;  // /tmp and /dev/shm, each
  int stdout_fd = -1, stderr_fd = -1;  // dup'ed to 1 and 2 (-1: /dev/null); stdin is /dev/null
  std::optional<int> cgroup_fd;        // cgroup2 directory: CLONE_INTO_CGROUP
  /// Parent side, called with the child's host pid before the child may
  /// continue (v1 cgroup attach). An error aborts the spawn: the child is
  /// killed and reaped and spawn() returns the error.
  std::move_only_function<Result<void>(pid_t)> before_run;
};

/// What the sandbox applied, step by step, and what it could not (step ->
/// reason). Steps: namespaces, init, hostname, network, filesystem,
/// capabilities, no_new_privs, ids, rlimits, seccomp, landlock, cgroup,
/// die_with_kernel, stdio.
struct SandboxReport {
  nlohmann::json applied = nlohmann::json::object();
  nlohmann::json not_applied = nlohmann::json::object();
};

struct Spawned {
  ChildProcess child;
  /// Becomes readable (O_NONBLOCK) when the agent exec'd (EOF) or failed
  /// before or at execve (a message): call read_exec_status(). EOF also
  /// results if the child was killed before it could say anything; its exit
  /// status tells the rest.
  UniqueFd exec_status;
  SandboxReport report;
};

/// Starts the child and returns once it exists and has been released (after
/// before_run), without waiting for execve.
Result<Spawned> spawn(SpawnSpec spec);

/// After `fd` became readable: ok on EOF (execve succeeded), the child's
/// message as the error otherwise ("exec /x: No such file or directory",
/// "bind-mount /opt/py on /opt/py: ..."). EAGAIN if nothing is there yet.
Result<void> read_exec_status(int fd);

}  // namespace agentos::runtime

// Ownership of a spawned child: its pid, its pidfd and, for a sandbox, the
// pipe on which the namespace's init reports the agent's exact status.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>

#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos::runtime {

/// RAII owner of a child process. Watch pidfd() for EPOLLIN (the child
/// exited) and call try_reap(). If the owner is destroyed while the child is
/// unreaped, the destructor SIGKILLs it through the pidfd and reaps it,
/// waiting at most kReapTimeout: normally ~1 ms (the child dies as soon as it
/// leaves the kernel), but a task in uninterruptible sleep or in a frozen v1
/// cgroup does not die until thawed; past the timeout the destructor logs
/// the pid and gives up rather than block the event loop (the process stays
/// a zombie until the kernel exits). Thaw before destroying.
class ChildProcess {
 public:
  static constexpr int kReapTimeoutMs = 1000;

  /// `init_report` (may be invalid): read end of the init's report pipe.
  ChildProcess(pid_t pid, UniqueFd pidfd, UniqueFd init_report);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  /// Host pid (for a sandbox: the init's, whose death ends the namespace).
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] int pidfd() const { return pidfd_.get(); }
  [[nodiscard]] bool reaped() const { return reaped_; }

  /// waitid(P_PIDFD, WEXITED | WNOHANG). nullopt: still running. Otherwise
  /// the child's status as a siginfo (si_code CLD_EXITED with si_status the
  /// exit code, or CLD_KILLED/CLD_DUMPED with si_status the signal), where
  /// for a sandbox the agent's own status (from the init's report) replaces
  /// the init's "128 + signal" exit. si_pid is always pid().
  /// Error: ECHILD once reaped.
  Result<std::optional<siginfo_t>> try_reap();

  /// pidfd_send_signal(sig). ESRCH once the child is reaped.
  Result<void> signal(int sig);

 private:
  void kill_and_reap();

  pid_t pid_ = 0;
  UniqueFd pidfd_;
  UniqueFd init_report_;
  bool reaped_ = true;
};

/// "exited with code 3", "killed by signal 9 (Killed)", ... for logs.
std::string describe_exit(const siginfo_t& info);

}  // namespace agentos::runtime

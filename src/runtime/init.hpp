// The PID 1 of a sandbox's pid namespace, between the kernel and the agent.
//
// What the kernel sees: the init's host pid (signal it to reach the whole
// agent; SIGKILL there ends the namespace). The init exits when the agent
// exits, with the agent's exit code, or 128 + signal when a signal killed it:
// a pid-namespace init cannot re-raise that signal on itself (the kernel
// drops signals an init sends itself while their disposition is SIG_DFL;
// only fault-generated or ancestor-namespace signals get through). So, just
// before exiting, the init writes the agent's exact wait status into a pipe
// that the parent reads when it reaps the init: ChildProcess::try_reap()
// returns "killed by signal 11", not "exited 139". When the init exits, the
// kernel SIGKILLs every process left in the namespace.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace agentos::runtime {

/// Signals the init forwards to every other process of its namespace.
inline constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/// Child side, in the init after it forked the agent: reaps everything
/// re-parented to it, forwards kForwardedSignals with kill(-1, sig) (like
/// systemd's KillMode=control-group, the agent's own children get them too),
/// and when `agent` ends writes its wait status to `report_fd` and exits as
/// described above. Expects every signal to be blocked: they are taken with
/// sigwaitinfo, which also sidesteps the init's "no handler, no signal" rule.
[[noreturn]] void run_init(pid_t agent, int report_fd);

/// Parent side: the agent's wait status from the init's report on `fd`
/// (non-blocking), if the init wrote one before it exited.
std::optional<int> read_init_report(int fd);

}  // namespace agentos::runtime

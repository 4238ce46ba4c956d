#include "runtime/contain.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/capabilities.hpp"
#include "runtime/child_error.hpp"
#include "runtime/clone.hpp"
#include "runtime/init.hpp"
#include "runtime/namespaces.hpp"

namespace agentos::runtime {
namespace {

// Above every fd that dup2 will target (0..3), so nothing is clobbered.
constexpr int kHighFd = 10;
// Where the exec-status pipe lives in the agent (close-on-exec).
constexpr int kAgentStatusFd = 3;

void close_all_except(int keep) {
  if (keep > 0) ::close_range(0, static_cast<unsigned>(keep) - 1, 0);
  ::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
}

// The parent blocked every signal around clone, so no handler of the
// kernel's can run here. Dispositions are reset before anything else (SIG_IGN
// would survive execve); the mask stays full until just before execve.
void reset_signal_dispositions() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP)
      ::sigaction(sig, &dfl, nullptr);  // EINVAL for libc's own: fine
  }
}

// Waits for the parent's "go" (uid maps written, cgroup joined). EOF means
// the parent gave up or died: leave quietly, the parent reports why. Because
// PR_SET_PDEATHSIG is armed before this read, a parent that dies at any
// moment is noticed: before the prctl as EOF here, after it as SIGKILL.
// (getppid() cannot tell: in a new pid namespace it is always 0.)
void wait_for_go(const ChildPlan& plan) {
  ::close(plan.sync_write);
  char go = 0;
  ssize_t n;
  do {
    n = ::read(plan.sync_read, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1 || go != 'g') _exit(kSetupFailedExit);
  ::close(plan.sync_read);
}

void prelude(const ChildPlan& plan) {
  reset_signal_dispositions();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  ::umask(022);
  ::close(plan.status_read);
  if (plan.report_read >= 0) ::close(plan.report_read);
  wait_for_go(plan);
}

int dup_high(int fd, ChildError& err) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, kHighFd);
  if (copy < 0) err.set(errno, "stdio: duplicate fd");
  return copy;
}

// stdin = /dev/null, stdout/stderr = the given fds (or /dev/null), the
// status pipe at fd 3 with O_CLOEXEC, nothing else. Every fd is first copied
// above kHighFd because the numbers we were given may be 0..3 themselves.
bool setup_stdio(const ChildPlan& plan, int& status_fd, ChildError& err) {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return err.set(errno, "open /dev/null");
  int in = dup_high(null_fd, err);
  int out = dup_high(plan.stdout_fd >= 0 ? plan.stdout_fd : null_fd, err);
  int errfd = dup_high(plan.stderr_fd >= 0 ? plan.stderr_fd : null_fd, err);
  int status = dup_high(status_fd, err);
  if (in < 0 || out < 0 || errfd < 0 || status < 0) return false;
  if (::dup2(in, 0) < 0 || ::dup2(out, 1) < 0 || ::dup2(errfd, 2) < 0 ||
      ::dup3(status, kAgentStatusFd, O_CLOEXEC) < 0) {
    return err.set(errno, "stdio: dup2");
  }
  status_fd = kAgentStatusFd;
  ::close_range(kAgentStatusFd + 1, ~0U, 0);
  return true;
}

// An unsandboxed agent's parent is the kernel itself; changing ids clears
// PR_SET_PDEATHSIG, so re-arm it and make sure the kernel did not die in
// between (getppid() works here: no new pid namespace).
bool switch_ids_unsandboxed(const ChildPlan& plan, ChildError& err) {
  if (!switch_ids(plan.ids->first, plan.ids->second, err)) return false;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::getppid() != plan.parent_pid) _exit(kSetupFailedExit);
  return true;
}

bool drop_privileges(const ChildPlan& plan, ChildError& err) {
  if (!plan.sandboxed) return !plan.ids || switch_ids_unsandboxed(plan, err);
  return drop_bounding_and_ambient(err) &&
         (!plan.ids || switch_ids(plan.ids->first, plan.ids->second, err)) &&
         set_capabilities(0, err) && set_no_new_privs(err) &&
         (!plan.landlock || apply_landlock(*plan.landlock, err)) &&
         (!plan.seccomp || install_seccomp(*plan.seccomp, err));
}

[[noreturn]] void exec_agent(const ChildPlan& plan) {
  ChildError err;
  int status_fd = plan.status_write;
  bool ok =
      (::setsid() >= 0 || err.set(errno, "setsid")) && setup_stdio(plan, status_fd, err) &&
      (plan.cwd.empty() || ::chdir(plan.cwd.c_str()) == 0 || err.set(errno, "chdir ", plan.cwd)) &&
      apply_rlimits(err) && drop_privileges(plan, err);
  if (!ok) err.report_and_exit(status_fd, kSetupFailedExit);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.exe.c_str(), plan.argv.data(), plan.envp.data());
  err.set(errno, "exec ", plan.exe);
  err.report_and_exit(status_fd, kExecFailedExit);
}

// The init keeps CAP_KILL only (to forward signals to an agent running under
// another uid) and takes the same seccomp filter; it never executes anything.
bool harden_init(const ChildPlan& plan, ChildError& err) {
  return drop_bounding_and_ambient(err) && set_capabilities(cap_bit(CAP_KILL), err) &&
         set_no_new_privs(err) && (!plan.seccomp || install_seccomp(*plan.seccomp, err));
}

[[noreturn]] void sandbox_init(const ChildPlan& plan) {
  ChildError err;
  bool ok = (!plan.cgroup_ns || enter_cgroup_namespace(err)) &&
            (!plan.loopback || bring_loopback_up(err)) && set_hostname(plan.hostname, err) &&
            enter_setup_root(err) && apply_mount_steps(plan.mounts, err) && enter_new_root(err);
  if (!ok) err.report_and_exit(plan.status_write, kSetupFailedExit);
  pid_t agent = raw_fork();
  if (agent < 0) {
    err.set(errno, "fork the agent process");
    err.report_and_exit(plan.status_write, kSetupFailedExit);
  }
  if (agent == 0) exec_agent(plan);
  if (!harden_init(plan, err)) {
    ::kill(agent, SIGKILL);
    err.report_and_exit(plan.status_write, kSetupFailedExit);
  }
  // From here the init holds only the report pipe: in particular no copy of
  // the status pipe, so the parent sees EOF as soon as the agent's execve
  // closes the last one.
  close_all_except(plan.report_write);
  run_init(agent, plan.report_write);
}

}  // namespace

void run_child(const ChildPlan& plan) {
  prelude(plan);
  if (plan.sandboxed) sandbox_init(plan);
  exec_agent(plan);
}

}  // namespace agentos::runtime

#include "runtime/capability_probe.hpp"

#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/clone.hpp"
#include "runtime/landlock.hpp"
#include "runtime/mounts.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/seccomp_filter.hpp"

namespace agentos::runtime {
namespace {

using nlohmann::json;

// Clones a child with `flags` that exits at once; 0 or the errno. Only
// syscalls, so it is also safe inside a forked child.
int clone_and_wait(uint64_t flags) {
  long pid = syscall(SYS_clone, static_cast<unsigned long>(flags) | SIGCHLD, nullptr, nullptr,
                     nullptr, nullptr);
  if (pid < 0) return errno;
  if (pid == 0) _exit(0);
  int status = 0;
  while (::waitpid(static_cast<pid_t>(pid), &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : ECHILD;
}

json outcome(int err) {
  if (err == 0) return true;
  return std::string(strerrordesc_np(err) ? strerrordesc_np(err) : "error");
}

json probe_namespaces() {
  static constexpr std::pair<uint64_t, const char*> kKinds[] = {
      {CLONE_NEWUSER, "user"},    {CLONE_NEWPID, "pid"}, {CLONE_NEWNS, "mount"},
      {CLONE_NEWUTS, "uts"},      {CLONE_NEWIPC, "ipc"}, {CLONE_NEWNET, "net"},
      {CLONE_NEWCGROUP, "cgroup"}};
  // Without root every kind needs a user namespace too, as in the sandbox.
  const uint64_t user = ::geteuid() == 0 ? 0 : CLONE_NEWUSER;
  json r;
  for (auto [flag, name] : kKinds) r[name] = outcome(clone_and_wait(flag | user));
  r["sandbox_set"] = outcome(clone_and_wait(sandbox_clone_flags(false, ::geteuid() != 0)));
  return r;
}

// What a kernel started without root would get: a user namespace plus the
// others, created by an unprivileged uid (nobody).
json probe_unprivileged_userns() {
  if (::geteuid() != 0) return outcome(clone_and_wait(sandbox_clone_flags(false, true)));
  pid_t pid = raw_fork();
  if (pid < 0) return outcome(errno);
  if (pid == 0) {
    if (syscall(SYS_setgroups, 0, nullptr) < 0 || syscall(SYS_setresgid, 65534, 65534, 65534) < 0 ||
        syscall(SYS_setresuid, 65534, 65534, 65534) < 0) {
      _exit(255);
    }
    _exit(clone_and_wait(sandbox_clone_flags(false, true)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return outcome(WIFEXITED(status) ? WEXITSTATUS(status) : ECHILD);
}

json probe_clone3() {
  auto cloned = clone_with_pidfd(0, std::nullopt);
  if (!cloned) return {{"clone3", false}, {"pidfd", false}, {"error", cloned.error().message()}};
  if (cloned->pid == 0) _exit(0);
  siginfo_t info{};
  waitid(static_cast<idtype_t>(3) /* P_PIDFD */, static_cast<id_t>(cloned->pidfd.get()), &info,
         WEXITED);
  return {{"clone3", cloned->clone3}, {"pidfd", cloned->pidfd.valid()}};
}

json probe_seccomp() {
  json r;
  r["filters"] = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
  uint32_t action = SECCOMP_RET_KILL_PROCESS;
  r["kill_process_action"] = syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
  auto program = seccomp_program();
  r["filter_compiles"] = program.has_value();
  if (!program) r["error"] = program.error().message();
  return r;
}

}  // namespace

json probe_capabilities() {
  json r;
  utsname u{};
  if (::uname(&u) == 0) r["kernel"] = u.release;
  r["root"] = ::geteuid() == 0;
  r["euid"] = ::geteuid();
  r["process"] = probe_clone3();
  r["namespaces"] = probe_namespaces();
  r["unprivileged_user_namespaces"] = probe_unprivileged_userns();
  r["seccomp"] = probe_seccomp();
  if (auto abi = landlock_abi()) {
    r["landlock"] = {{"abi", *abi}};
  } else {
    r["landlock"] = {{"abi", 0}, {"error", abi.error().message()}};
  }
  r["mount_setattr"] = have_mount_setattr();
  return r;
}

}  // namespace agentos::runtime

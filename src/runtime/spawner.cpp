#include "runtime/spawner.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <tuple>

#include <fmt/format.h>

#include "runtime/clone.hpp"
#include "runtime/contain.hpp"
#include "runtime/init.hpp"
#include "runtime/landlock.hpp"
#include "runtime/mounts.hpp"
#include "runtime/namespaces.hpp"
#include "runtime/seccomp_filter.hpp"

namespace agentos::runtime {
namespace {

using nlohmann::json;

struct Pipe {
  UniqueFd read, write;
};

struct Pipes {
  Pipe sync;    // parent -> child
  Pipe status;  // child -> parent; read end non-blocking
  Pipe report;  // init -> parent; read end non-blocking (sandbox only)
};

Result<Pipe> make_pipe(bool nonblocking_read) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return sys_error("pipe2");
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  if (nonblocking_read && fcntl(p.read.get(), F_SETFL, O_NONBLOCK) < 0)
    return sys_error("fcntl O_NONBLOCK");
  return p;
}

Result<Pipes> make_pipes(bool sandboxed) {
  Pipes p;
  p.sync = AOS_TRY(make_pipe(false));
  p.status = AOS_TRY(make_pipe(true));
  if (sandboxed) p.report = AOS_TRY(make_pipe(true));
  return p;
}

Result<void> validate(const SpawnSpec& spec) {
  if (!spec.exe.starts_with("/")) return make_error("exe " + spec.exe + ": not an absolute path");
  if (spec.argv.empty()) return make_error("argv: empty (argv[0] is required)");
  // Checked here for a clear error without a process; the sandbox may still
  // lack it (an unexposed path), which execve then reports.
  if (::access(spec.exe.c_str(), X_OK) < 0) return sys_error("exe " + spec.exe);
  if (spec.sandboxed && (spec.name.empty() || spec.name.size() > 64)) {
    return make_error("name: 1 to 64 characters (it is the sandbox's hostname)");
  }
  if (!spec.socket_host_path.empty() && spec.socket_sandbox_path.empty()) {
    return make_error("socket_sandbox_path: required with socket_host_path");
  }
  return {};
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Ids: only root can switch; without root the user namespace maps the
// kernel's ids to 0 inside.
void plan_ids(const SpawnSpec& spec, ChildPlan& plan, SandboxReport& report) {
  const bool root = ::geteuid() == 0;
  if (!spec.uid && !spec.gid) {
    if (root)
      report.not_applied["ids"] = spec.sandboxed
                                      ? "no uid given: the agent runs as root, without capabilities"
                                      : "no uid given: the agent runs as root";
    return;
  }
  uid_t uid = spec.uid.value_or(::geteuid());
  gid_t gid = spec.gid.value_or(spec.uid ? static_cast<gid_t>(*spec.uid) : ::getegid());
  if (root) {
    plan.ids = {uid, gid};
    report.applied["ids"] = {{"uid", uid}, {"gid", gid}, {"groups", json::array()}};
  } else {
    report.not_applied["ids"] =
        fmt::format("the kernel is not root: the agent keeps uid {} ({})", ::geteuid(),
                    spec.sandboxed ? "root inside its user namespace" : "no sandbox");
  }
}

Result<void> plan_sandbox(const SpawnSpec& spec, ChildPlan& plan, SandboxReport& report) {
  FsSpec fs;
  fs.hostname = spec.name;
  if (plan.ids) std::tie(fs.uid, fs.gid) = *plan.ids;
  fs.network = spec.network;
  fs.ro_paths = spec.ro_paths;
  fs.workspace = spec.workspace;
  fs.socket_host_path = spec.socket_host_path;
  fs.socket_sandbox_path = spec.socket_sandbox_path;
  fs.tmp_size_bytes = spec.tmp_size_bytes;
  fs.recursive_ro = have_mount_setattr();
  plan.mounts = AOS_TRY(plan_filesystem(fs));
  report.applied["filesystem"] = plan.mounts.summary;
  plan.hostname = spec.name;
  plan.loopback = !spec.network;
  plan.cgroup_ns = true;
  plan.cwd = spec.cwd.value_or(spec.workspace ? "/workspace" : "/tmp");
  return {};
}

void plan_confinement(const SpawnSpec& spec, ChildPlan& plan, SandboxReport& report) {
  if (auto abi = landlock_abi()) {
    plan.landlock = plan_landlock(*abi, plan.mounts.exposures, spec.network);
    report.applied["landlock"] = plan.landlock->summary;
  } else {
    report.not_applied["landlock"] = abi.error().message();
  }
  // PR_GET_SECCOMP fails with EINVAL on kernels built without seccomp.
  auto program = seccomp_program();
  if (::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
    report.not_applied["seccomp"] = "the kernel has no seccomp support (CONFIG_SECCOMP)";
  } else if (!program) {
    report.not_applied["seccomp"] = program.error().message();
  } else {
    plan.seccomp = *program;
    report.applied["seccomp"] = (*program)->summary;
  }
}

void report_sandbox(const SpawnSpec& spec, uint64_t clone_flags, SandboxReport& report) {
  json& a = report.applied;
  a["namespaces"] = namespace_names(clone_flags | CLONE_NEWCGROUP);
  a["init"] =
      "pid 1 of the namespace: reaps orphans, forwards TERM/INT/HUP/QUIT/USR1/USR2 to every "
      "process in it, exits with the agent; keeps CAP_KILL only, same seccomp filter";
  a["hostname"] = spec.name;
  a["network"] = spec.network ? "host network" : "own network namespace, lo only";
  a["capabilities"] = "none (effective, permitted, inheritable, ambient and bounding sets empty)";
  a["no_new_privs"] = true;
  a["die_with_kernel"] = "PR_SET_PDEATHSIG=SIGKILL on the init; the namespace dies with it";
}

void report_plain(SandboxReport& report) {
  report.applied["die_with_kernel"] =
      "PR_SET_PDEATHSIG=SIGKILL (the agent only; its children need the cgroup)";
  for (const char* step : {"namespaces", "init", "filesystem", "capabilities", "no_new_privs",
                           "seccomp", "landlock"}) {
    report.not_applied[step] = "sandboxed: false";
  }
}

Result<ChildPlan> build_plan(SpawnSpec& spec, const Pipes& pipes, uint64_t clone_flags,
                             SandboxReport& report) {
  ChildPlan plan;
  plan.sandboxed = spec.sandboxed;
  plan.parent_pid = ::getpid();
  plan.sync_read = pipes.sync.read.get();
  plan.sync_write = pipes.sync.write.get();
  plan.status_read = pipes.status.read.get();
  plan.status_write = pipes.status.write.get();
  plan.report_read = pipes.report.read.get();
  plan.report_write = pipes.report.write.get();
  plan.stdout_fd = spec.stdout_fd;
  plan.stderr_fd = spec.stderr_fd;
  plan.exe = spec.exe;
  plan.argv = c_strings(spec.argv);
  plan.envp = c_strings(spec.env);
  plan.cwd = spec.cwd.value_or("");
  plan_ids(spec, plan, report);
  if (spec.sandboxed) {
    AOS_TRY_VOID(plan_sandbox(spec, plan, report));
    plan_confinement(spec, plan, report);
    report_sandbox(spec, clone_flags, report);
  } else {
    report_plain(report);
  }
  report.applied["rlimits"] = {{"core", 0}, {"nofile_soft_max", 1024}};
  report.applied["stdio"] = "stdin /dev/null; only fds 0, 1, 2 inherited";
  return plan;
}

// Every signal is blocked across the clone so that none of the kernel's
// handlers can run in the child before it resets them (as posix_spawn does).
Result<Cloned> clone_signals_blocked(uint64_t flags, std::optional<int> cgroup_fd) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  auto cloned = clone_with_pidfd(flags, cgroup_fd);
  if (cloned && cloned->pid == 0) return cloned;  // the child keeps everything blocked
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return cloned;
}

Result<void> join_cgroup_v2(int cgroup_fd, pid_t pid) {
  UniqueFd procs(::openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
  if (!procs) return sys_error("open cgroup.procs");
  std::string text = std::to_string(pid);
  if (::write(procs.get(), text.data(), text.size()) < 0) return sys_error("write cgroup.procs");
  return {};
}

// Parent side between clone and "go": id maps, cgroup, the caller's hook.
Result<void> release(SpawnSpec& spec, const Cloned& cloned, uint64_t flags, Pipes& pipes,
                     SandboxReport& report) {
  if (flags & CLONE_NEWUSER) {
    AOS_TRY_VOID(write_id_maps(cloned.pid, ::geteuid(), ::getegid()));
    report.applied["ids"] = {
        {"uid_inside", 0}, {"outer_uid", ::geteuid()}, {"outer_gid", ::getegid()}};
  }
  if (spec.cgroup_fd && cloned.into_cgroup) {
    report.applied["cgroup"] = "CLONE_INTO_CGROUP";
  } else if (spec.cgroup_fd) {
    AOS_TRY_VOID(join_cgroup_v2(*spec.cgroup_fd, cloned.pid));
    report.applied["cgroup"] = "cgroup.procs written before start (clone3 unavailable)";
  }
  if (spec.before_run) {
    auto r = spec.before_run(cloned.pid);
    if (!r) return std::unexpected(r.error().wrap("before_run"));
    if (!spec.cgroup_fd) report.applied["cgroup"] = "attached before start (before_run)";
  }
  // Our read end is still open, so a child that died meanwhile cannot turn
  // this write into SIGPIPE; the byte just stays in the pipe.
  if (::write(pipes.sync.write.get(), "g", 1) != 1) return sys_error("release the child");
  return {};
}

}  // namespace

Result<Spawned> spawn(SpawnSpec spec) {
  AOS_TRY_VOID(validate(spec));
  const bool user_ns = spec.sandboxed && ::geteuid() != 0;
  const uint64_t flags = spec.sandboxed ? sandbox_clone_flags(spec.network, user_ns) : 0;
  Pipes pipes = AOS_TRY(make_pipes(spec.sandboxed));
  SandboxReport report;
  ChildPlan plan = AOS_TRY(build_plan(spec, pipes, flags, report));
  Cloned cloned = AOS_TRY(clone_signals_blocked(flags, spec.cgroup_fd));
  if (cloned.pid == 0) run_child(plan);

  // Close the child's ends now: the status pipe's EOF must depend only on
  // the child's copies. (The sync pipe is closed on return, see release().)
  pipes.status.write.reset();
  pipes.report.write.reset();
  ChildProcess child(cloned.pid, std::move(cloned.pidfd), std::move(pipes.report.read));
  // On error `child`'s destructor kills and reaps the child, which is still
  // waiting for "go" (and sees EOF on it anyway).
  AOS_TRY_VOID(release(spec, cloned, flags, pipes, report));
  report.applied["clone"] =
      cloned.clone3 ? "clone3 with CLONE_PIDFD" : "clone + pidfd_open (clone3 unavailable)";
  return Spawned{std::move(child), std::move(pipes.status.read), std::move(report)};
}

Result<void> read_exec_status(int fd) {
  char buf[1100];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return {};
  if (n > 0) return make_error(std::string(buf, static_cast<size_t>(n)));
  if (errno == EAGAIN) return make_error("exec status: nothing to read yet", EAGAIN);
  return sys_error("read exec status");
}

}  // namespace agentos::runtime

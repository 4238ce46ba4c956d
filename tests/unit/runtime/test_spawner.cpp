// spawn(): exit statuses, the exec-status protocol, fds, signals, the
// process tree's lifetime, sandboxed and not. Sandboxed tests need root
// (the rootless path has its own test that drops to nobody).
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "runtime/seccomp_filter.hpp"
#include "runtime/spawn_harness.hpp"
#include "runtime/spawner.hpp"

namespace agentos::runtime {
namespace {

using testing::exit_text;
using testing::exited_with;
using testing::is_root;
using testing::killed_by;
using testing::python_spec;
using testing::run_to_end;
using testing::TempDir;

using testing::can_sandbox;

// clang-format off
#define REQUIRE_SANDBOX() \
  if (!can_sandbox()) GTEST_SKIP() << "no sandbox here: neither root nor unprivileged user namespaces"
#define REQUIRE_ROOT() \
  if (!is_root()) GTEST_SKIP() << "switching to another uid needs root"
// clang-format on

bool process_gone(pid_t pid) { return ::kill(pid, 0) < 0 && errno == ESRCH; }

SpawnSpec true_spec(bool sandboxed) {
  SpawnSpec s;
  s.name = "true";
  s.exe = "/bin/true";
  s.argv = {"true"};
  s.sandboxed = sandboxed;
  return s;
}

class SpawnModes : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam() && !can_sandbox())
      GTEST_SKIP() << "no sandbox here: neither root nor user namespaces";
  }
  bool sandboxed() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Spawner, SpawnModes, ::testing::Values(false, true),
                         [](const auto& param_info) {
                           return param_info.param ? "Sandboxed" : "Plain";
                         });

TEST_P(SpawnModes, TrueExitsZero) {
  auto o = run_to_end(true_spec(sandboxed()));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_TRUE(o->exec) << o->exec.error().message();
  EXPECT_TRUE(exited_with(*o, 0)) << exit_text(*o);
}

TEST_P(SpawnModes, PythonExitCodeIsKept) {
  auto o = run_to_end(python_spec("import sys; print('hello'); sys.exit(3)", sandboxed()));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_TRUE(o->exec);
  EXPECT_EQ(o->out, "hello\n");
  EXPECT_TRUE(exited_with(*o, 3)) << exit_text(*o);
}

// Sandboxed, the init exits 139; its report turns that back into the signal.
TEST_P(SpawnModes, DeathBySignalIsReportedAsTheSignal) {
  auto o = run_to_end(python_spec("import os; os.kill(os.getpid(), 11)", sandboxed()));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_TRUE(o->exec);
  EXPECT_TRUE(killed_by(*o, SIGSEGV)) << exit_text(*o);
}

TEST_P(SpawnModes, InheritsOnlyStdio) {
  // A descriptor without O_CLOEXEC, as a careless kernel component might leave.
  UniqueFd leak(::open("/dev/null", O_RDONLY));
  ASSERT_TRUE(leak);
  auto o =
      run_to_end(python_spec("import os\nfds=[]\nfor fd in range(256):\n  try: os.fstat(fd); "
                             "fds.append(fd)\n  except OSError: pass\n"
                             "print(fds)",
                             sandboxed()));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->out, "[0, 1, 2]\n");
}

TEST_P(SpawnModes, StdinIsDevNullAndSessionIsNew) {
  auto o =
      run_to_end(python_spec("import os,sys; print(os.path.samestat(os.fstat(0), "
                             "os.stat('/dev/null')), os.getsid(0) == os.getpid())",
                             sandboxed()));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->out, "True True\n");
}

TEST_P(SpawnModes, CoreDumpsAreOff) {
  auto o = run_to_end(
      python_spec("import resource; print(resource.getrlimit(resource.RLIMIT_CORE))", sandboxed()));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->out, "(0, 0)\n");
}

TEST_P(SpawnModes, MissingExecutableFailsWithoutAProcess) {
  SpawnSpec s = true_spec(sandboxed());
  s.exe = "/nonexistent/agentos-missing";
  auto r = spawn(std::move(s));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("/nonexistent/agentos-missing"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(r.error().code, ENOENT);
}

TEST_P(SpawnModes, BeforeRunSeesTheChildBeforeItExecs) {
  SpawnSpec s = true_spec(sandboxed());
  std::string exe_seen;
  s.before_run = [&](pid_t pid) -> Result<void> {
    std::error_code ec;
    exe_seen = std::filesystem::read_symlink(fmt::format("/proc/{}/exe", pid), ec).string();
    return {};
  };
  auto o = run_to_end(std::move(s));
  ASSERT_TRUE(o) << o.error().message();
  // Still a copy of this test binary: the child waits for "go" before anything.
  EXPECT_EQ(exe_seen, std::filesystem::read_symlink("/proc/self/exe").string());
  EXPECT_TRUE(exited_with(*o, 0)) << exit_text(*o);
}

TEST_P(SpawnModes, BeforeRunErrorAbortsAndLeavesNoProcess) {
  SpawnSpec s = true_spec(sandboxed());
  pid_t seen = 0;
  s.before_run = [&](pid_t pid) -> Result<void> {
    seen = pid;
    return make_error("cgroup attach refused", EACCES);
  };
  auto r = spawn(std::move(s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "before_run: cgroup attach refused: Permission denied");
  ASSERT_GT(seen, 0);
  EXPECT_TRUE(process_gone(seen));
}

TEST_P(SpawnModes, DestroyingTheChildKillsAndReapsIt) {
  pid_t pid = 0;
  {
    auto r = spawn(python_spec("import time; time.sleep(600)", sandboxed()));
    ASSERT_TRUE(r) << r.error().message();
    pid = r->child.pid();
    ASSERT_TRUE(r->child.signal(0));
  }
  EXPECT_TRUE(process_gone(pid));
}

// EOF on the status pipe must come from execve itself, not from the exit:
// the init (sandboxed) must not hold a copy of the write end.
TEST_P(SpawnModes, ExecStatusArrivesWhileTheAgentRuns) {
  auto r = spawn(python_spec("import time; time.sleep(600)", sandboxed()));
  ASSERT_TRUE(r) << r.error().message();
  pollfd p{r->exec_status.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 60'000), 1);
  EXPECT_TRUE(read_exec_status(r->exec_status.get()));
  auto reaped = r->child.try_reap();
  ASSERT_TRUE(reaped) << reaped.error().message();
  EXPECT_FALSE(reaped->has_value()) << "the agent should still be running";
}

TEST_P(SpawnModes, LeavesNoFdsMountsOrChildrenBehind) {
  auto count_mounts = [] {
    std::ifstream in("/proc/self/mountinfo");
    return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
  };
  auto mounts_before = count_mounts();
  auto count_fds = [] {
    return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                         std::filesystem::directory_iterator{});
  };
  auto before = count_fds();
  for (int i = 0; i < 20; ++i) {
    auto o = run_to_end(true_spec(sandboxed()));
    ASSERT_TRUE(o) << o.error().message();
    ASSERT_TRUE(exited_with(*o, 0)) << exit_text(*o);
  }
  EXPECT_EQ(count_fds(), before);
  EXPECT_EQ(count_mounts(), mounts_before);        // the sandbox's mounts never propagate here
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // no child left, not even a zombie
  EXPECT_EQ(errno, ECHILD);
}

// The kernel dies without cleaning up (SIGKILL): PR_SET_PDEATHSIG kills the
// child, and for a sandbox the namespace dies with its init. The agent holds
// the only write end of `out`, so EOF there means it is gone.
TEST_P(SpawnModes, KernelCrashKillsTheAgent) {
  int out[2], pid_pipe[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(pid_pipe, O_CLOEXEC), 0);
  UniqueFd out_r(out[0]), out_w(out[1]), pid_r(pid_pipe[0]), pid_w(pid_pipe[1]);
  pid_t kernel = ::fork();
  ASSERT_GE(kernel, 0);
  if (kernel == 0) {  // plays the kernel: spawns, then waits to be killed
    SpawnSpec s = python_spec("import time; print('up', flush=True); time.sleep(600)", sandboxed());
    s.stdout_fd = out_w.get();
    auto r = spawn(std::move(s));
    pid_t child = r ? r->child.pid() : 0;
    if (::write(pid_w.get(), &child, sizeof child) != sizeof child) _exit(1);
    for (;;) ::pause();
  }
  out_w.reset();
  pid_w.reset();
  pid_t child = 0;
  ASSERT_EQ(::read(pid_r.get(), &child, sizeof child), static_cast<ssize_t>(sizeof child));
  ASSERT_GT(child, 0) << "spawn failed in the helper";
  char buf[16];
  ASSERT_EQ(::read(out_r.get(), buf, sizeof buf), 3) << "the agent did not start";
  ::kill(kernel, SIGKILL);
  ::waitpid(kernel, nullptr, 0);
  pollfd p{out_r.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 60'000), 1) << "the agent survived the kernel";
  EXPECT_EQ(::read(out_r.get(), buf, sizeof buf), 0);
}

TEST_P(SpawnModes, ReportNamesEveryStep) {
  auto r = spawn(true_spec(sandboxed()));
  ASSERT_TRUE(r) << r.error().message();
  const auto& rep = r->report;
  for (const char* step : {"rlimits", "stdio", "die_with_kernel", "clone"})
    EXPECT_TRUE(rep.applied.contains(step)) << step;
  for (const char* step : {"namespaces", "filesystem", "seccomp", "capabilities", "no_new_privs"}) {
    EXPECT_EQ(sandboxed() ? rep.applied.contains(step) : rep.not_applied.contains(step), true)
        << step;
  }
}

// Under our own seccomp filter clone3 answers ENOSYS, as under old container
// profiles: spawn falls back to clone + pidfd_open. Namespaces are denied
// there, so a sandboxed spawn fails cleanly instead.
TEST(Spawner, FallsBackToCloneWhenClone3IsMissing) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto program = seccomp_program();
    ChildError err;
    if (!program || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || !install_seccomp(**program, err))
      _exit(90);
    auto o = run_to_end(true_spec(false));
    if (!o || !exited_with(*o, 0)) _exit(91);
    if (o->report.applied["clone"] != "clone + pidfd_open (clone3 unavailable)") _exit(92);
    auto sandboxed = spawn(true_spec(true));
    if (sandboxed || sandboxed.error().message() != "clone: Operation not permitted") _exit(93);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "90 filter, 91 plain spawn, 92 report, 93 sandboxed spawn error";
}

// ---- sandbox only -----------------------------------------------------------

TEST(Sandbox, HostnameUidAndPidNamespace) {
  REQUIRE_ROOT();
  SpawnSpec s = python_spec(
      "import os,socket; print(socket.gethostname(), os.getuid(), os.getgid(), os.getgroups(), "
      "os.getpid(),"
      " os.getppid())",
      true);
  s.name = "agent-7";
  s.uid = 61234;
  s.gid = 61235;
  auto o = run_to_end(std::move(s));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->out, "agent-7 61234 61235 [] 2 1\n");
  EXPECT_EQ(o->report.applied["ids"]["uid"], 61234);
}

TEST(Sandbox, ExecutableNotExposedFailsAtExec) {
  REQUIRE_SANDBOX();
  TempDir dir;
  std::string copy = dir.path + "/true";
  std::filesystem::copy_file("/bin/true", copy);
  SpawnSpec s = true_spec(true);
  s.exe = copy;
  auto o = run_to_end(std::move(s));
  ASSERT_TRUE(o) << o.error().message();
  ASSERT_FALSE(o->exec);
  EXPECT_EQ(o->exec.error().message(), "exec " + copy + ": No such file or directory");
  EXPECT_TRUE(exited_with(*o, 127)) << exit_text(*o);
  EXPECT_TRUE(process_gone(o->pid));
}

TEST(Sandbox, SetupFailureNamesTheStep) {
  REQUIRE_SANDBOX();
  TempDir dir;
  SpawnSpec s = true_spec(true);
  s.ro_paths = {dir.path};
  // A directory that disappears between planning and mounting: the child's
  // bind-mount fails and says which path.
  s.before_run = [&](pid_t) -> Result<void> {
    std::filesystem::remove(dir.path);
    return {};
  };
  auto o = run_to_end(std::move(s));
  ASSERT_TRUE(o) << o.error().message();
  ASSERT_FALSE(o->exec);
  EXPECT_EQ(o->exec.error().message(),
            "bind-mount " + dir.path + " on " + dir.path + ": No such file or directory");
  EXPECT_TRUE(exited_with(*o, 126)) << exit_text(*o);
}

// The agent waits for SIGTERM with it blocked. A Python handler around
// time.sleep() would not do: CPython runs handlers between bytecodes, so a
// signal landing after its last check and before clock_nanosleep() starts is
// only acted on when the sleep ends (about 1 run in 700 under load, with or
// without a sandbox).
TEST(Sandbox, SigtermIsForwardedToTheAgent) {
  REQUIRE_SANDBOX();
  SpawnSpec s = python_spec(
      "import signal,sys\n"
      "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
      "print('ready', flush=True)\n"
      "signal.sigwait({signal.SIGTERM})\n"
      "sys.exit(7)\n",
      true);
  if (is_root()) s.uid = 61234;  // another uid than the init's: forwarding needs its CAP_KILL
  bool sent = false;
  auto o = run_to_end(std::move(s), [&](Spawned& sp, const std::string& out) {
    if (!sent && out.find("ready") != std::string::npos) {
      sent = true;
      EXPECT_TRUE(sp.child.signal(SIGTERM));  // to the init, which forwards it
    }
  });
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_TRUE(sent);
  EXPECT_TRUE(exited_with(*o, 7)) << exit_text(*o);
}

// The agent exits while a child of its own (which ignores SIGTERM and holds
// stdout open) sleeps: the init exits with the agent, the namespace dies,
// and stdout reaches EOF, which run_to_end waits for.
TEST(Sandbox, AgentExitEndsTheWholeTree) {
  REQUIRE_SANDBOX();
  auto o =
      run_to_end(python_spec("import os,signal,time,sys\n"
                             "if os.fork() == 0:\n"
                             "  signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)\n"
                             "print('parent leaves', flush=True); sys.exit(5)\n",
                             true));
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_EQ(o->out, "parent leaves\n");
  EXPECT_TRUE(exited_with(*o, 5)) << exit_text(*o);
}

TEST(Sandbox, KillingTheInitKillsEverything) {
  REQUIRE_SANDBOX();
  bool killed = false;
  auto o = run_to_end(python_spec("import os,signal,time\n"
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                  "if os.fork() == 0: os.setsid(); time.sleep(600)\n"
                                  "print('ready', flush=True); time.sleep(600)\n",
                                  true),
                      [&](Spawned& sp, const std::string& out) {
                        if (!killed && out.find("ready") != std::string::npos) {
                          killed = true;
                          EXPECT_TRUE(sp.child.signal(SIGKILL));
                        }
                      });
  ASSERT_TRUE(o) << o.error().message();
  EXPECT_TRUE(killed_by(*o, SIGKILL)) << exit_text(*o);
}

TEST(Sandbox, WorkspaceIsWritableAndTheDefaultCwd) {
  REQUIRE_SANDBOX();
  TempDir ws;
  SpawnSpec s = python_spec("import os; open('out.txt','w').write(os.getcwd())", true);
  s.workspace = ws.path;
  auto o = run_to_end(std::move(s));
  ASSERT_TRUE(o) << o.error().message();
  ASSERT_TRUE(exited_with(*o, 0)) << exit_text(*o);
  std::ifstream in(ws.path + "/out.txt");
  std::string cwd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(cwd, "/workspace");
}

TEST(Sandbox, NetworkTrueSharesTheHostNetwork) {
  REQUIRE_SANDBOX();
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string code = fmt::format(
      "import socket\ns=socket.create_connection(('127.0.0.1', {}))\nprint('connected')",
      ntohs(addr.sin_port));
  for (bool network : {true, false}) {
    SpawnSpec s = python_spec(code, true);
    s.network = network;
    auto o = run_to_end(std::move(s));
    ASSERT_TRUE(o) << o.error().message();
    EXPECT_EQ(exited_with(*o, 0), network) << "network=" << network << ": " << exit_text(*o);
    EXPECT_EQ(o->out, network ? "connected\n" : "");
  }
}

// Without root the sandbox starts with a user namespace. Run the spawn from
// a child process that dropped to nobody; it reports through its exit code.
TEST(Sandbox, RootlessSandbox) {
  REQUIRE_ROOT();  // to become nobody; run as nobody, the other tests cover this path
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgroups(0, nullptr) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0) {
      _exit(90);
    }
    // Changing uid made us non-dumpable; a kernel started as this user would be.
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    auto o =
        run_to_end(python_spec("import os; print(os.getuid(), "
                               "open('/proc/self/uid_map').read().split()[:2], os.listdir('/tmp'))",
                               true));
    if (!o) {
      fprintf(stderr, "rootless spawn: %s\n", o.error().message().c_str());
      _exit(91);
    }
    if (!o->exec) _exit(92);
    if (o->out != "0 ['0', '65534'] []\n") _exit(93);
    _exit(exited_with(*o, 0) ? 0 : 94);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "90 drop ids, 91 spawn, 92 exec, 93 output, 94 exit status";
}

TEST(Probe, ReportsWhatThisMachineSupports) {
  auto caps = probe_capabilities();
  EXPECT_EQ(caps["root"], is_root());
  EXPECT_TRUE(caps["namespaces"].contains("pid"));
  EXPECT_TRUE(caps["seccomp"].contains("filters"));
  EXPECT_TRUE(caps["landlock"].contains("abi"));
  if (is_root()) {
    EXPECT_EQ(caps["namespaces"]["sandbox_set"], true) << caps.dump();
    EXPECT_EQ(caps["process"]["pidfd"], true) << caps.dump();
  }
}

}  // namespace
}  // namespace agentos::runtime

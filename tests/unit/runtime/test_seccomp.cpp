// The seccomp program, loaded in a forked child that reports each verdict
// through its exit code (no_new_privs makes loading possible without root).
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <functional>

#include <gtest/gtest.h>

#include "runtime/seccomp_filter.hpp"

namespace agentos::runtime {
namespace {

// Runs `probe` in a child under the filter; returns its wait status.
int under_filter(const std::function<int()>& probe) {
  auto program = seccomp_program();
  EXPECT_TRUE(program) << program.error().message();
  if (!program) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ChildError err;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || !install_seccomp(**program, err)) _exit(100);
    _exit(probe());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// The errno of a raw syscall that is expected to fail (0 if it succeeded).
int errno_of(long rc) { return rc < 0 ? errno : 0; }

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status); }

TEST(Seccomp, KnowsEveryDeniedSyscall) {
  auto program = seccomp_program();
  ASSERT_TRUE(program) << program.error().message();
  EXPECT_FALSE((*program)->summary.contains("unknown_to_libseccomp")) << (*program)->summary.dump();
  EXPECT_GT((*program)->deny_list.size(), 10u);
}

TEST(Seccomp, DeniedSyscallsAnswerEperm) {
  EXPECT_EQ(exit_code(under_filter(
                [] { return errno_of(::mount("none", "/tmp", "tmpfs", 0, nullptr)); })),
            EPERM);
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(::unshare(CLONE_NEWUTS)); })), EPERM);
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(syscall(SYS_ptrace, 0, 0, 0, 0)); })),
            EPERM);
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(syscall(SYS_bpf, 0, nullptr, 0)); })),
            EPERM);
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(syscall(SYS_keyctl, 0, -3, 0)); })), EPERM);
  EXPECT_EQ(
      exit_code(under_filter([] { return errno_of(syscall(SYS_io_uring_setup, 1, nullptr)); })),
      EPERM);
}

TEST(Seccomp, CloneWithNamespaceFlagsIsDeniedButForkWorks) {
  EXPECT_EQ(exit_code(under_filter([] {
              return errno_of(
                  syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
            })),
            EPERM);
  EXPECT_EQ(exit_code(under_filter([] {
              pid_t child = ::fork();  // glibc: clone without namespace flags
              if (child == 0) _exit(42);
              int status = 0;
              ::waitpid(child, &status, 0);
              return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            })),
            42);
}

TEST(Seccomp, Clone3AnswersEnosys) {
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(syscall(SYS_clone3, nullptr, 0)); })),
            ENOSYS);
}

TEST(Seccomp, PersonalityOnlyAllowsTheDefaultPersonas) {
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(::personality(ADDR_NO_RANDOMIZE)); })),
            EPERM);
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(::personality(READ_IMPLIES_EXEC)); })),
            EPERM);
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(::personality(0xffffffff)); })), 0);
  EXPECT_EQ(exit_code(under_filter([] { return errno_of(::personality(PER_LINUX)); })), 0);
}

// socket() is filtered by family and protocol: network namespaces do not
// isolate vsock, and Landlock's TCP rules do not cover MPTCP.
int socket_errno(int domain, int type, int protocol) {
  int fd = ::socket(domain, type, protocol);
  if (fd >= 0) {
    ::close(fd);
    return 0;
  }
  return errno;
}

TEST(Seccomp, SocketFamiliesAndProtocolsAreFiltered) {
  auto sock = [](int d, int t, int p) { return exit_code(under_filter([=] { return socket_errno(d, t, p); })); };
  EXPECT_EQ(sock(AF_VSOCK, SOCK_STREAM, 0), EAFNOSUPPORT);
  EXPECT_EQ(sock(AF_ALG, SOCK_SEQPACKET, 0), EAFNOSUPPORT);
  EXPECT_EQ(sock(AF_INET, SOCK_STREAM, 262 /* IPPROTO_MPTCP */), EPROTONOSUPPORT);
  EXPECT_EQ(sock(AF_INET, SOCK_SEQPACKET, 0), EPROTONOSUPPORT);
  EXPECT_EQ(sock(AF_NETLINK, SOCK_RAW, 15 /* NETLINK_KOBJECT_UEVENT */), EPROTONOSUPPORT);
  EXPECT_EQ(sock(AF_UNIX, SOCK_STREAM, 0), 0);
  EXPECT_EQ(sock(AF_INET, SOCK_STREAM, 0), 0);
  EXPECT_EQ(sock(AF_INET6, SOCK_DGRAM, IPPROTO_UDP), 0);
  EXPECT_EQ(sock(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 0);
}

TEST(Seccomp, TerminalInjectionIsDenied) {
  EXPECT_EQ(exit_code(under_filter([] {
              char c = 'x';
              return errno_of(::ioctl(0, TIOCSTI, &c));
            })),
            EPERM);
}

#if defined(__x86_64__)
// x32 system calls (numbers with bit 30 set) pass the x86_64 arch check in
// seccomp_data, so libseccomp's filter must treat them as foreign itself.
TEST(Seccomp, X32SyscallsKillTheProcess) {
  int status = under_filter([] { return static_cast<int>(syscall(0x40000000 | SYS_getpid) < 0); });
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit " << exit_code(status);
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

// An i386 system call through int 0x80 is a foreign architecture: the
// filter kills the process (SIGSYS) instead of judging it by x86_64 numbers.
TEST(Seccomp, ForeignArchitectureKillsTheProcess) {
  auto i386_getpid = [] {
    // Without IA32 emulation int 0x80 faults: let SIGSEGV kill the probe
    // plainly, not through a sanitizer's handler that reports a crash.
    ::signal(SIGSEGV, SIG_DFL);
    long ret = 20;  // __NR_getpid on i386
    asm volatile("int $0x80" : "+a"(ret) : : "memory");
    return 0;
  };
  pid_t pid = ::fork();
  if (pid == 0) _exit(i386_getpid());
  int plain = 0;
  ::waitpid(pid, &plain, 0);
  if (!WIFEXITED(plain) || WEXITSTATUS(plain) != 0)
    GTEST_SKIP() << "this kernel runs no i386 system calls (IA32 emulation off)";
  int status = under_filter(i386_getpid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit " << exit_code(status);
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}
#endif

}  // namespace
}  // namespace agentos::runtime

#include "runtime/init.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace agentos::runtime {
namespace {

constexpr uint32_t kReportMagic = 0x31494741;  // "AGI1"

struct Report {
  uint32_t magic;
  int32_t wait_status;
};

[[noreturn]] void finish(int wait_status, int report_fd) {
  Report r{kReportMagic, wait_status};
  // 8 bytes into an empty pipe: complete or not at all.
  ssize_t ignored = ::write(report_fd, &r, sizeof r);
  (void)ignored;
  if (WIFEXITED(wait_status)) _exit(WEXITSTATUS(wait_status));
  _exit(128 + WTERMSIG(wait_status));
}

}  // namespace

void run_init(pid_t agent, int report_fd) {
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGCHLD);
  for (int sig : kForwardedSignals) sigaddset(&wanted, sig);
  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&wanted, &info);
    if (sig < 0) continue;  // EINTR only; every signal is blocked
    if (sig != SIGCHLD) {
      ::kill(-1, sig);  // everyone in the namespace but the init itself
      continue;
    }
    // SIGCHLD coalesces: reap until nothing is left to reap.
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid == agent) finish(status, report_fd);
    }
    // Cannot happen: the agent is our child until we reaped it above.
    if (pid < 0 && errno == ECHILD) _exit(125);
  }
}

std::optional<int> read_init_report(int fd) {
  Report r{};
  if (fd < 0 || ::read(fd, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) return std::nullopt;
  if (r.magic != kReportMagic) return std::nullopt;
  return r.wait_status;
}

}  // namespace agentos::runtime

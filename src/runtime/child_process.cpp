#include "runtime/child_process.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "runtime/init.hpp"
#include "util/log.hpp"

namespace agentos::runtime {
namespace {

// glibc 2.36's idtype_t has no P_PIDFD yet (linux/wait.h: 3, Linux 5.4+).
constexpr auto kPidfdIdType = static_cast<idtype_t>(3);

// Raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C" and cannot be
// linked from C++.
int send_signal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

const char* signal_name(int sig) {
  const char* d = sigdescr_np(sig);
  return d ? d : "unknown signal";
}

// The init exits with 128 + signal; its report carries the real status.
void apply_init_report(siginfo_t& info, int report_fd) {
  std::optional<int> status = read_init_report(report_fd);
  if (!status) return;  // the init itself was killed (KILL, OOM): its own status is the truth
  if (WIFEXITED(*status)) {
    info.si_code = CLD_EXITED;
    info.si_status = WEXITSTATUS(*status);
  } else if (WIFSIGNALED(*status)) {
    info.si_code = WCOREDUMP(*status) ? CLD_DUMPED : CLD_KILLED;
    info.si_status = WTERMSIG(*status);
  }
}

}  // namespace

ChildProcess::ChildProcess(pid_t pid, UniqueFd pidfd, UniqueFd init_report)
    : pid_(pid), pidfd_(std::move(pidfd)), init_report_(std::move(init_report)), reaped_(false) {}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_),
      pidfd_(std::move(other.pidfd_)),
      init_report_(std::move(other.init_report_)),
      reaped_(std::exchange(other.reaped_, true)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = other.pid_;
    pidfd_ = std::move(other.pidfd_);
    init_report_ = std::move(other.init_report_);
    reaped_ = std::exchange(other.reaped_, true);
  }
  return *this;
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

Result<std::optional<siginfo_t>> ChildProcess::try_reap() {
  if (reaped_) return make_error(fmt::format("reap pid {}: already reaped", pid_), ECHILD);
  siginfo_t info{};
  if (waitid(kPidfdIdType, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) < 0) {
    return sys_error(fmt::format("waitid pid {}", pid_));
  }
  if (info.si_pid == 0) return std::optional<siginfo_t>{};
  reaped_ = true;
  apply_init_report(info, init_report_.get());
  return std::optional<siginfo_t>{info};
}

Result<void> ChildProcess::signal(int sig) {
  if (reaped_) return make_error(fmt::format("signal pid {}: already reaped", pid_), ESRCH);
  if (send_signal(pidfd_.get(), sig) < 0) return sys_error(fmt::format("signal pid {}", pid_));
  return {};
}

void ChildProcess::kill_and_reap() {
  if (reaped_ || !pidfd_) return;
  send_signal(pidfd_.get(), SIGKILL);
  pollfd p{pidfd_.get(), POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, kReapTimeoutMs);
  } while (rc < 0 && errno == EINTR);
  siginfo_t info{};
  if (rc <= 0 ||
      waitid(kPidfdIdType, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) < 0 ||
      info.si_pid == 0) {
    log::error(
        "child {} did not die within {} ms of SIGKILL (frozen or in uninterruptible sleep); left "
        "unreaped",
        pid_, kReapTimeoutMs);
  }
  reaped_ = true;
}

std::string describe_exit(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED:
      return fmt::format("exited with code {}", info.si_status);
    case CLD_KILLED:
      return fmt::format("killed by signal {} ({})", info.si_status, signal_name(info.si_status));
    case CLD_DUMPED:
      return fmt::format("killed by signal {} ({}, core dumped)", info.si_status,
                         signal_name(info.si_status));
    default:
      return fmt::format("ended (si_code {}, status {})", info.si_code, info.si_status);
  }
}

}  // namespace agentos::runtime

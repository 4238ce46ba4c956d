// Test helper: run a SpawnSpec to completion, collecting stdout, the exec
// status and the exit status, with a hang guard (a deadline on poll, not a
// timing assertion).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "runtime/spawner.hpp"

namespace agentos::runtime::testing {

struct Outcome {
  Result<void> exec;              // read_exec_status()
  std::optional<siginfo_t> exit;  // try_reap()
  std::string out;                // everything written to stdout
  pid_t pid = 0;
  SandboxReport report;
};

inline bool is_root() { return ::geteuid() == 0; }

/// Sandboxes work as root, or without root through a user namespace.
inline bool can_sandbox() {
  static const bool ok = is_root() || probe_capabilities()["unprivileged_user_namespaces"] == true;
  return ok;
}

/// A fresh directory under /tmp (mode 0755, so unprivileged agents can read
/// what the test puts there), removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/agentos-test-XXXXXX";
    path = ::mkdtemp(tmpl) ? tmpl : "";
    if (!path.empty()) ::chmod(path.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline SpawnSpec python_spec(const std::string& code, bool sandboxed) {
  SpawnSpec s;
  s.name = "test-agent";
  s.exe = "/usr/bin/python3";
  s.argv = {"python3", "-c", code};
  s.env = {"PATH=/usr/bin:/bin", "HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"};
  s.sandboxed = sandboxed;
  return s;
}

/// Spawns `spec` with stdout on a pipe and waits (poll, 60 s guard) until the
/// exec status was read, the child was reaped and stdout reached EOF.
/// `on_output` sees the output so far after each read and may act on the
/// child (send it a signal).
inline Result<Outcome> run_to_end(
    SpawnSpec spec, std::function<void(Spawned&, const std::string&)> on_output = {}) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return sys_error("pipe2");
  UniqueFd out_r(fds[0]), out_w(fds[1]);
  spec.stdout_fd = out_w.get();
  auto spawned = spawn(std::move(spec));
  out_w.reset();
  if (!spawned) return std::unexpected(spawned.error());
  Outcome o{{}, std::nullopt, "", spawned->child.pid(), spawned->report};
  bool exec_done = false, out_done = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!(exec_done && out_done && o.exit)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ADD_FAILURE() << "child did not finish within 60 s; output so far: " << o.out;
      break;
    }
    pollfd p[3] = {{exec_done ? -1 : spawned->exec_status.get(), POLLIN, 0},
                   {out_done ? -1 : out_r.get(), POLLIN, 0},
                   {o.exit ? -1 : spawned->child.pidfd(), POLLIN, 0}};
    if (::poll(p, 3, static_cast<int>(left.count())) < 0) return sys_error("poll");
    if (p[0].revents) {
      o.exec = read_exec_status(spawned->exec_status.get());
      exec_done = true;
    }
    if (p[1].revents) {
      char buf[4096];
      ssize_t n = ::read(out_r.get(), buf, sizeof buf);
      if (n <= 0) out_done = true;
      if (n > 0) o.out.append(buf, static_cast<size_t>(n));
      if (n > 0 && on_output) on_output(*spawned, o.out);
    }
    if (p[2].revents) {
      auto r = spawned->child.try_reap();
      if (!r) return std::unexpected(r.error());
      o.exit = *r;
    }
  }
  return o;
}

inline bool exited_with(const Outcome& o, int code) {
  return o.exit && o.exit->si_code == CLD_EXITED && o.exit->si_status == code;
}

inline bool killed_by(const Outcome& o, int sig) {
  return o.exit && (o.exit->si_code == CLD_KILLED || o.exit->si_code == CLD_DUMPED) &&
         o.exit->si_status == sig;
}

inline std::string exit_text(const Outcome& o) {
  return o.exit ? describe_exit(*o.exit) : "not reaped";
}

}  // namespace agentos::runtime::testing

#include "kernel/check.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "kernel/kernel.hpp"

namespace agentos {
namespace {

using nlohmann::json;

// Tries clone3 with CLONE_PIDFD; the child exits at once.
json probe_clone3() {
  clone_args args{};
  int pidfd = -1;
  args.flags = CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) ::_exit(0);
  if (pid < 0) return {{"clone3", false}, {"pidfd", false}, {"error", std::strerror(errno)}};
  ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
  if (pidfd >= 0) ::close(pidfd);
  return {{"clone3", true}, {"pidfd", pidfd >= 0}};
}

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

}  // namespace

json check_machine(const KernelConfig& cfg) {
  json r;
  r["kernel_version"] = AGENTOS_VERSION;
  r["root"] = ::geteuid() == 0;
  r["socket"] = cfg.socket_path;
  r["instance"] = cfg.instance;
  r["state_dir"] = cfg.state_dir;
  r["runtime_dir"] = cfg.runtime_dir;
  r["sandboxing"] = cfg.enable_sandboxing ? "enabled" : "disabled (--no-sandbox)";
  r["process"] = probe_clone3();
  r["user_namespaces_max"] = read_first_line("/proc/sys/user/max_user_namespaces");
  r["features"] = kernel_features();
  return r;
}

std::string render_check(const json& report) {
  std::ostringstream out;
  for (const auto& [key, value] : report.items()) {
    if (value.is_object()) {
      out << key << ":\n";
      for (const auto& [k, v] : value.items()) out << "  " << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    } else {
      out << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
    }
  }
  return out.str();
}

}  // namespace agentos

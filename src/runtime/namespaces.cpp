#include "runtime/namespaces.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "util/unique_fd.hpp"

namespace agentos::runtime {
namespace {

Result<void> write_proc_file(pid_t pid, const char* file, const std::string& content) {
  std::string path = fmt::format("/proc/{}/{}", pid, file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return sys_error("open " + path);
  // The map files accept exactly one write.
  if (::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    return sys_error("write " + path);
  }
  return {};
}

}  // namespace

uint64_t sandbox_clone_flags(bool network, bool user_ns) {
  uint64_t flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  if (!network) flags |= CLONE_NEWNET;
  if (user_ns) flags |= CLONE_NEWUSER;
  return flags;
}

nlohmann::json namespace_names(uint64_t clone_flags) {
  static constexpr std::pair<uint64_t, const char*> kNames[] = {
      {CLONE_NEWUSER, "user"},    {CLONE_NEWPID, "pid"}, {CLONE_NEWNS, "mount"},
      {CLONE_NEWUTS, "uts"},      {CLONE_NEWIPC, "ipc"}, {CLONE_NEWNET, "net"},
      {CLONE_NEWCGROUP, "cgroup"}};
  nlohmann::json names = nlohmann::json::array();
  for (auto [flag, name] : kNames) {
    if (clone_flags & flag) names.push_back(name);
  }
  return names;
}

Result<void> write_id_maps(pid_t child, uid_t outer_uid, gid_t outer_gid) {
  // The child inherits our "dumpable" flag; if it is off, its /proc files
  // belong to root and we cannot write its maps.
  if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 1) {
    return make_error(
        "user namespace id maps: the kernel process is not dumpable (PR_SET_DUMPABLE 0, e.g. after "
        "changing uid), so it cannot write its child's uid_map",
        EPERM);
  }
  AOS_TRY_VOID(write_proc_file(child, "setgroups", "deny"));
  AOS_TRY_VOID(write_proc_file(child, "uid_map", fmt::format("0 {} 1\n", outer_uid)));
  AOS_TRY_VOID(write_proc_file(child, "gid_map", fmt::format("0 {} 1\n", outer_gid)));
  return {};
}

bool set_hostname(std::string_view name, ChildError& err) {
  if (sethostname(name.data(), name.size()) < 0) return err.set(errno, "sethostname ", name);
  return true;
}

bool bring_loopback_up(ChildError& err) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return err.set(errno, "loopback: socket");
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  req.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  if (ioctl(sock.get(), SIOCSIFFLAGS, &req) < 0) return err.set(errno, "loopback: bring lo up");
  return true;
}

bool enter_cgroup_namespace(ChildError& err) {
  if (unshare(CLONE_NEWCGROUP) < 0) return err.set(errno, "unshare(CLONE_NEWCGROUP)");
  return true;
}

}  // namespace agentos::runtime

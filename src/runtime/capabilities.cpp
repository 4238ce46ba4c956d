#include "runtime/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace agentos::runtime {

bool drop_bounding_and_ambient(ChildError& err) {
  // Iterate until the kernel says the capability does not exist, instead of
  // trusting CAP_LAST_CAP from headers that may be older than the kernel.
  for (int cap = 0;; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break;
      return err.set(errno, "capabilities: read bounding set");
    }
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      return err.set(errno, "capabilities: drop capability from the bounding set");
    }
  }
  // EINVAL: kernel before 4.3 without ambient capabilities, nothing to clear.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    return err.set(errno, "capabilities: clear the ambient set");
  }
  return true;
}

bool switch_ids(uid_t uid, gid_t gid, ChildError& err) {
  // Raw syscalls on purpose: glibc's wrappers broadcast the change to every
  // thread it knows of, and the threads it knows of are the parent's.
  if (syscall(SYS_setgroups, 0, nullptr) < 0) return err.set(errno, "setgroups([])");
  if (syscall(SYS_setresgid, gid, gid, gid) < 0) return err.set(errno, "setresgid");
  if (syscall(SYS_setresuid, uid, uid, uid) < 0) return err.set(errno, "setresuid");
  return true;
}

bool set_capabilities(uint64_t keep, ChildError& err) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    auto word = static_cast<uint32_t>(keep >> (32 * i));
    data[i].effective = word;
    data[i].permitted = word;
    data[i].inheritable = 0;
  }
  if (syscall(SYS_capset, &header, data) < 0) return err.set(errno, "capabilities: capset");
  return true;
}

bool set_no_new_privs(ChildError& err) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return err.set(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  return true;
}

bool apply_rlimits(ChildError& err) {
  rlimit core{0, 0};
  if (setrlimit(RLIMIT_CORE, &core) < 0) return err.set(errno, "setrlimit(RLIMIT_CORE, 0)");
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) < 0) return err.set(errno, "getrlimit(RLIMIT_NOFILE)");
  files.rlim_cur = std::min<rlim_t>({files.rlim_cur, files.rlim_max, 1024});
  if (setrlimit(RLIMIT_NOFILE, &files) < 0) return err.set(errno, "setrlimit(RLIMIT_NOFILE)");
  return true;
}

}  // namespace agentos::runtime

#include "runtime/landlock.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace agentos::runtime {
namespace {

// The uapi headers of Debian 12 stop at ABI 2; the values below are the
// kernel's (include/uapi/linux/landlock.h), by the ABI that added them.
constexpr uint32_t kCreateRulesetVersion = 1U << 0;
constexpr int kRulePathBeneath = 1;
constexpr uint64_t kExecute = 1ULL << 0, kWriteFile = 1ULL << 1, kReadFile = 1ULL << 2,
                   kReadDir = 1ULL << 3;
constexpr uint64_t kFsAbi1 = (1ULL << 13) - 1;                                // EXECUTE .. MAKE_SYM
constexpr uint64_t kRefer = 1ULL << 13;                                       // ABI 2
constexpr uint64_t kTruncate = 1ULL << 14;                                    // ABI 3
constexpr uint64_t kIoctlDev = 1ULL << 15;                                    // ABI 5
constexpr uint64_t kNetBindTcp = 1ULL << 0, kNetConnectTcp = 1ULL << 1;       // ABI 4
constexpr uint64_t kScopeAbstractUnix = 1ULL << 0, kScopeSignal = 1ULL << 1;  // ABI 6
// Rights that make sense on a file (not a directory); others give EINVAL.
constexpr uint64_t kFileRights = kExecute | kWriteFile | kReadFile | kTruncate | kIoctlDev;

struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4
  uint64_t scoped;              // ABI 6
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

uint64_t fs_rights(int abi) {
  uint64_t r = kFsAbi1;
  if (abi >= 2) r |= kRefer;
  if (abi >= 3) r |= kTruncate;
  if (abi >= 5) r |= kIoctlDev;
  return r;
}

size_t ruleset_size(int abi) {
  if (abi >= 6) return sizeof(RulesetAttr);
  if (abi >= 4) return offsetof(RulesetAttr, scoped);
  return offsetof(RulesetAttr, handled_access_net);
}

uint64_t rights_for(Access access, uint64_t handled) {
  switch (access) {
    case Access::kReadOnly:
      return (kExecute | kReadFile | kReadDir) & handled;
    case Access::kDevices:
      return (kReadFile | kWriteFile | kReadDir | kTruncate | kIoctlDev) & handled;
    case Access::kReadWrite:
      return handled;
  }
  return 0;
}

const char* access_name(Access access) {
  switch (access) {
    case Access::kReadOnly:
      return "read_only";
    case Access::kDevices:
      return "devices";
    case Access::kReadWrite:
      return "read_write";
  }
  return "?";
}

bool add_rule(int ruleset, const LandlockRule& rule, ChildError& err) {
  int fd = ::open(rule.path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return err.set(errno, "landlock: open ", rule.path);
  struct stat st {};
  PathBeneathAttr attr{rule.access, fd};
  if (::fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) attr.allowed_access &= kFileRights;
  long rc = syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &attr, 0);
  int saved = errno;
  ::close(fd);
  if (rc < 0) return err.set(saved, "landlock: add rule for ", rule.path);
  return true;
}

}  // namespace

Result<int> landlock_abi() {
  long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  if (abi < 0) {
    return make_error(errno == EOPNOTSUPP
                          ? "landlock: disabled at boot (add landlock to the lsm= kernel parameter)"
                          : "landlock: not available",
                      errno);
  }
  return static_cast<int>(abi);
}

LandlockPlan plan_landlock(int abi, const std::vector<Exposure>& exposures, bool network) {
  LandlockPlan plan;
  plan.abi = abi;
  plan.handled_fs = fs_rights(abi);
  plan.summary["abi"] = abi;
  // Listing directories anywhere is harmless: the root holds only what the
  // mount plan put there. Everything else is granted per exposed path.
  plan.rules.push_back({"/", kReadDir});
  for (const auto& e : exposures) {
    plan.rules.push_back({e.path, rights_for(e.access, plan.handled_fs)});
    plan.summary["filesystem"][access_name(e.access)].push_back(e.path);
  }
  if (abi < 4) {
    plan.summary["network"] = "not restricted: TCP rules need Landlock ABI 4";
  } else if (network) {
    plan.summary["network"] = "not restricted (network: true)";
  } else {
    plan.handled_net = kNetBindTcp | kNetConnectTcp;  // handled, no rule: all denied
    plan.summary["network"] = "TCP bind and connect denied";
  }
  if (abi >= 6) {
    plan.scoped = kScopeAbstractUnix | kScopeSignal;
    plan.summary["scoped"] = {"abstract_unix_socket", "signal"};
  } else {
    plan.summary["scoped"] = "not restricted: scopes need Landlock ABI 6";
  }
  return plan;
}

bool apply_landlock(const LandlockPlan& plan, ChildError& err) {
  RulesetAttr attr{plan.handled_fs, plan.handled_net, plan.scoped};
  long ruleset = syscall(SYS_landlock_create_ruleset, &attr, ruleset_size(plan.abi), 0);
  if (ruleset < 0) return err.set(errno, "landlock: create ruleset");
  int fd = static_cast<int>(ruleset);
  for (const auto& rule : plan.rules) {
    if (!add_rule(fd, rule, err)) {
      ::close(fd);
      return false;
    }
  }
  long rc = syscall(SYS_landlock_restrict_self, fd, 0);
  int saved = errno;
  ::close(fd);
  if (rc < 0) return err.set(saved, "landlock: restrict self");
  return true;
}

}  // namespace agentos::runtime

// Landlock (DESIGN §4 step 6): a second wall that needs no privileges.
// Read-only access to the exposed paths, read-write to /tmp, /dev/shm and
// the workspace, no TCP bind/connect unless the agent has the network, and
// (ABI 6+) no signals or abstract unix sockets beyond the sandbox.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/child_error.hpp"
#include "runtime/mounts.hpp"
#include "util/result.hpp"

namespace agentos::runtime {

/// The kernel's Landlock ABI version (1..7 on the machines here), or an
/// error saying why there is none (ENOSYS: not built in; EOPNOTSUPP: not
/// enabled at boot, "lsm=" lacks landlock).
Result<int> landlock_abi();

struct LandlockRule {
  std::string path;  // inside the sandbox
  uint64_t access;   // LANDLOCK_ACCESS_FS_* bits
};

struct LandlockPlan {
  int abi = 0;
  uint64_t handled_fs = 0;
  uint64_t handled_net = 0;  // ABI 4+: TCP bind/connect, denied when handled without rules
  uint64_t scoped = 0;       // ABI 6+: abstract unix sockets, signals
  std::vector<LandlockRule> rules;
  nlohmann::json summary;
};

/// Rules for `exposures` (sandbox paths from the mount plan) at `abi`,
/// using only the rights that ABI knows.
LandlockPlan plan_landlock(int abi, const std::vector<Exposure>& exposures, bool network);

/// Child side (after pivot_root, so the paths are the sandbox's): creates
/// the ruleset and restricts the calling process and its future children.
/// Needs no_new_privs or CAP_SYS_ADMIN.
bool apply_landlock(const LandlockPlan& plan, ChildError& err);

}  // namespace agentos::runtime

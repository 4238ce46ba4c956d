// The sandbox's filesystem: a fresh tmpfs root with read-only binds of the
// system directories, a minimal /etc, private /tmp, /proc and /dev.
//
// The parent plans (plan_filesystem: every path, every /etc file's content,
// decided with stat/readlink on the host); the child only executes the plan
// with mount/mkdir/write calls, without allocating. Set-up happens in three
// moves, as in bubblewrap:
//   1. enter_setup_root: a small tmpfs becomes the root, the host's root is
//      reachable at /oldroot and the future root (another tmpfs) at /newroot.
//      Bind sources are read through /oldroot, so mounting over a host path
//      (say /tmp) never hides a source.
//   2. apply_mount_steps: the plan, building /newroot.
//   3. enter_new_root: pivot into /newroot, detach everything else (the host
//      root included), make the root read-only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/child_error.hpp"
#include "util/result.hpp"

namespace agentos::runtime {

/// One action of the plan. Paths are as seen during set-up (under /newroot
/// for targets, /oldroot for host sources).
struct MountStep {
  enum class Kind {
    kDir,      // mkdir dst (mode)
    kFile,     // create an empty file at dst (a bind target)
    kWrite,    // create dst with content `data` (mode)
    kSymlink,  // symlink dst -> data
    kBind,     // bind src on dst (recursive?), then set `attr`
    kTmpfs,    // tmpfs on dst with options `data` and MS_* `flags`
    kProc,     // a new procfs on dst
    kAttr,     // set `attr` on the mount at dst
  };
  Kind kind;
  std::string src;
  std::string dst;
  std::string data;
  unsigned mode = 0755;
  unsigned long flags = 0;  // kTmpfs: MS_NOSUID etc.
  uint64_t attr = 0;        // MOUNT_ATTR_RDONLY etc.
  bool recursive = false;
  bool optional = false;  // a missing source (ENOENT) is skipped
};

/// How a sandbox path may be used, for Landlock.
enum class Access { kReadOnly, kReadWrite, kDevices };
struct Exposure {
  std::string path;  // as seen inside the sandbox
  Access access;
};

/// What the filesystem should contain.
struct FsSpec {
  std::string hostname;
  uid_t uid = 0;  // ids of the agent inside the sandbox, for /etc/passwd and /etc/group
  gid_t gid = 0;
  bool network = false;  // adds resolv.conf, TLS certificates
  std::vector<std::string> ro_paths;
  std::optional<std::string> workspace;
  std::string socket_host_path;  // empty: no socket
  std::string socket_sandbox_path;
  uint64_t tmp_size_bytes = 64 << 20;
  bool recursive_ro = true;  // mount_setattr available: read-only applies to submounts too
  std::string host_root;     // tests: a fake host tree; "" is this machine
};

struct MountPlan {
  std::vector<MountStep> steps;
  std::vector<Exposure> exposures;
  nlohmann::json summary;  // for the SandboxReport
};

/// Plans the filesystem. Errors name the offending path (a missing ro path,
/// a workspace that is not a directory, a socket that is not a socket).
Result<MountPlan> plan_filesystem(const FsSpec& spec);

/// Whether mount_setattr(2) exists (Linux 5.12+); without it read-only binds
/// are remounted one mount at a time and therefore not recursive.
bool have_mount_setattr();

// ---- child side -----------------------------------------------------------

bool enter_setup_root(ChildError& err);
bool apply_mount_steps(const MountPlan& plan, ChildError& err);
bool enter_new_root(ChildError& err);

}  // namespace agentos::runtime

// Namespaces of a sandboxed agent: which ones, the user-namespace id maps
// (written by the parent), and the per-namespace set-up inside the child.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "runtime/child_error.hpp"
#include "util/result.hpp"

namespace agentos::runtime {

/// CLONE_NEW* flags for a sandboxed child: PID, mount, UTS, IPC, network
/// unless `network`, and a user namespace first when `user_ns` (the kernel is
/// not root). The cgroup namespace is not among them: the init unshares it
/// once it sits in its final cgroup (see enter_cgroup_namespace()).
uint64_t sandbox_clone_flags(bool network, bool user_ns);

/// Names of the namespaces in `clone_flags` ("pid", "mount", ...).
nlohmann::json namespace_names(uint64_t clone_flags);

/// Parent side, for a child cloned with CLONE_NEWUSER that waits until this
/// returned: maps `outer_uid`/`outer_gid` (the kernel's ids) to 0 inside, and
/// denies setgroups (required before an unprivileged gid_map). The calling
/// process must be dumpable (the default): the child inherits the flag, and
/// a non-dumpable child's /proc files belong to root.
Result<void> write_id_maps(pid_t child, uid_t outer_uid, gid_t outer_gid);

// ---- child side -----------------------------------------------------------

/// sethostname() in the new UTS namespace.
bool set_hostname(std::string_view name, ChildError& err);

/// Brings `lo` up in a fresh network namespace (it starts down); the kernel
/// assigns 127.0.0.1 and ::1 itself.
bool bring_loopback_up(ChildError& err);

/// unshare(CLONE_NEWCGROUP) once the child is in its cgroup, so the new
/// cgroup namespace is rooted at the agent's own cgroup (cloning it together
/// with the other namespaces would root it at the kernel's cgroup, because
/// v1 attachment and even CLONE_INTO_CGROUP happen after namespace creation).
bool enter_cgroup_namespace(ChildError& err);

}  // namespace agentos::runtime

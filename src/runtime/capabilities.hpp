// Privileges of a child before execve: capabilities, no_new_privs, ids and
// resource limits. Everything here runs in the child of a clone, so it only
// makes raw syscalls (glibc's setuid() would try to signal the parent's
// threads, libcap allocates).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "runtime/child_error.hpp"

namespace agentos::runtime {

/// Capability bit for set_capabilities().
constexpr uint64_t cap_bit(int cap) { return uint64_t{1} << cap; }

/// Empties the bounding set (so no later execve can regain a capability) and
/// the ambient set. Needs CAP_SETPCAP, so it runs before switch_ids().
bool drop_bounding_and_ambient(ChildError& err);

/// setgroups([]), setresgid(gid), setresuid(uid): an unprivileged process
/// with no supplementary groups. Clears permitted and effective capabilities
/// as a side effect (no SECBIT_KEEP_CAPS), and PR_SET_PDEATHSIG too.
bool switch_ids(uid_t uid, gid_t gid, ChildError& err);

/// Sets permitted and effective capabilities to `keep` and inheritable to
/// none (`keep` == 0: nothing left).
bool set_capabilities(uint64_t keep, ChildError& err);

/// PR_SET_NO_NEW_PRIVS: execve never grants privileges again (setuid bits
/// and file capabilities are ignored). Needed to load seccomp unprivileged.
bool set_no_new_privs(ChildError& err);

/// The agent's resource limits: RLIMIT_CORE = 0 (no core files with the
/// agent's memory), and a soft RLIMIT_NOFILE of at most 1024, like systemd
/// services (select() breaks above FD_SETSIZE; the kernel may run with a
/// much higher limit of its own).
bool apply_rlimits(ChildError& err);

}  // namespace agentos::runtime

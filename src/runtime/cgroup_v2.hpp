// cgroup v2 (unified hierarchy) backend.
//
// Layout: <root><parent>/<instance>/<leaf> per agent, with the agent's
// processes in <leaf>/self and the agents it spawns in <leaf>/<their leaf>
// (the "no internal processes" rule: <leaf> enables the controllers for
// both, so it holds no processes itself). Limits are written to <leaf> and
// usage is read there, so they cover the subtree; OOM kills are counted
// from <leaf>/self, the agent's own processes. Plus
// <root><parent>/<instance>/kernel when the kernel had to move (below).
//
// Delegation — the one place we write to a cgroup we did not create. For an
// agent leaf to get memory/cpu/pids files, those controllers must be enabled
// in cgroup.subtree_control of every ancestor up to <parent>. We write
// "+memory +cpu +pids" (only the ones listed in <parent>/cgroup.controllers
// and not yet enabled) into <parent>/cgroup.subtree_control, then into
// <instance>/cgroup.subtree_control. The kernel refuses the first write with
// EBUSY while <parent> has member processes ("no internal processes" rule).
// If the only member is this kernel process (the usual case under systemd
// with Delegate=yes or in a container), it moves itself into
// <instance>/kernel and retries. If other processes are there too, the
// controllers are reported missing (describe(), enforced()["not_enforced"])
// with what the operator should do: --cgroup-parent naming an empty cgroup
// the kernel may write, or run under systemd with Delegate=yes. The
// destructor undoes exactly what was done: disables what it enabled (first
// in <instance>, then in <parent>), moves the kernel back into <parent>,
// removes <instance>/kernel and <instance>. If the undo is refused (another
// user of <parent> enabled controllers meanwhile), it logs why and leaves
// <instance> for the next start of this instance to clean up.
#pragma once

#include "runtime/cgroup.hpp"

namespace agentos::runtime {

/// Opens the v2 backend on opts.root (a cgroup2 mount), creating
/// <parent>/<instance>. opts.fs must be set.
Result<std::unique_ptr<CgroupBackend>> open_cgroup_v2(const CgroupOptions& opts);

}  // namespace agentos::runtime

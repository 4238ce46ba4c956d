// cgroup v1 backend, for legacy and hybrid layouts (crun refuses hybrid;
// we must not).
//
// Controllers used: memory, cpu, cpuacct, pids, freezer. Each lives in its
// own hierarchy, or shares one ("cpu,cpuacct"); hierarchies are found from
// the kernel's /proc/self/cgroup lines and mounted at <root>/<list> or
// <root>/<controller>. Per hierarchy the layout is
// <mount><parent>/<instance>/<leaf>, <parent> defaulting to the kernel's own
// cgroup in that hierarchy. v1 has no "no internal processes" rule, so no
// delegation step is needed and nothing outside <instance> is written.
//
// Limits: memory.limit_in_bytes, then memory.memsw.limit_in_bytes = the same
// value (swap off) when swap accounting exists, else memory.swappiness=0 and
// "swap" in not_enforced; cpu.cfs_period_us then cpu.cfs_quota_us; pids.max.
// Processes join with attach() before they exec (no CLONE_INTO_CGROUP on v1).
#pragma once

#include "runtime/cgroup.hpp"

namespace agentos::runtime {

/// Opens the v1 backend for the hierarchies under opts.root, creating
/// <parent>/<instance> in each. opts.fs must be set.
Result<std::unique_ptr<CgroupBackend>> open_cgroup_v1(const CgroupOptions& opts);

}  // namespace agentos::runtime

// Per-agent resource limits through cgroups: one interface, two backends
// (cgroup_v1.cpp, cgroup_v2.cpp), chosen at start-up by open_cgroups().
//
// Ownership: each kernel instance owns the subtree <parent>/<instance> (one
// per hierarchy on v1) and one directory per agent below it; an agent
// spawned by an agent gets its directory inside its parent's, so the
// parent's limits bound the whole subtree (DESIGN.md §3). Nothing outside
// the instance subtree is modified, with one documented exception on v2
// (delegation, see cgroup_v2.hpp). Every directory is removed by the object
// that created it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos::runtime {

/// How deep agent cgroups nest: an agent spawned by an agent spawned by ...
/// this many levels below an operator-spawned one may not spawn again.
inline constexpr int kMaxNesting = 8;

/// Limits for one agent; an absent field is not limited.
/// (Default member initializers keep -Wextra quiet for designated
/// initializers such as CgroupLimits{.max_pids = 64}.)
struct CgroupLimits {
  std::optional<uint64_t> memory_bytes = std::nullopt;  ///< swap is switched off alongside
  std::optional<uint64_t> max_pids = std::nullopt;
  std::optional<uint64_t> cpu_quota_us = std::nullopt;  ///< per cpu_period_us
  uint64_t cpu_period_us = 100000;
};

/// One sample of an agent's usage. Fields of a missing controller stay 0.
struct CgroupStats {
  uint64_t memory_current = 0;
  uint64_t memory_peak = 0;
  uint64_t memory_limit = 0;  ///< 0 = none
  uint64_t cpu_usage_us = 0;
  uint64_t nr_throttled = 0;
  uint64_t throttled_us = 0;
  uint64_t pids_current = 0;
  uint64_t oom_kills = 0;
  /// Times a charge hit the limit (v1 memory.failcnt + memory.memsw.failcnt,
  /// v2 memory.events "max"). Informational: Linux 6.18 on v1 left both
  /// failcnt files at 0 across an OOM kill; use oom_kills for decisions.
  uint64_t memory_max_hits = 0;
  bool populated = false;
  /// v2 without memory.peak (kernels < 5.19): memory_peak is the largest
  /// memory.current seen by stats() calls, so it may miss short spikes.
  bool memory_peak_sampled = false;
  /// false on v1 kernels < 4.13 (no "oom_kill" line in memory.oom_control):
  /// oom_kills is then only under_oom (0/1), a hint, not a count.
  bool oom_kills_exact = true;
};

/// One agent's cgroup (one directory on v2; one per hierarchy on v1). RAII:
/// the destructor kills what is left inside and removes the directories.
/// Destroy agent cgroups before their backend.
class AgentCgroup {
 public:
  AgentCgroup() = default;
  AgentCgroup(const AgentCgroup&) = delete;
  AgentCgroup& operator=(const AgentCgroup&) = delete;
  /// Kills anything left (best effort), then rmdir; never throws. rmdir is
  /// retried for up to ~60 ms on EBUSY (the kernel finishes exiting tasks
  /// asynchronously); a directory that still cannot go is logged and left
  /// for the backend's destructor / remove_stale().
  virtual ~AgentCgroup();

  /// Moves `pid` (a whole process) in; on v1 into every hierarchy. Called by
  /// the parent before the child execs (the child waits on a pipe).
  virtual Result<void> attach(pid_t pid) = 0;
  /// v2: an O_PATH|O_DIRECTORY fd of the cgroup, for clone3(CLONE_INTO_CGROUP);
  /// owned by this object. v1: nullopt (use attach()).
  [[nodiscard]] virtual std::optional<int> clone_into_fd() const = 0;
  /// SIGKILLs every process in the cgroup and in the agent cgroups nested in
  /// it, including ones forking meanwhile. v2: cgroup.kill (fallback:
  /// freeze, kill each pid, thaw); v1: freezer FROZEN, kill each task of the
  /// subtree, THAWED. May block a few ms while freezing.
  virtual Result<void> kill_all() = 0;
  /// v2 cgroup.freeze, v1 freezer.state. Returns once requested; freezing
  /// itself completes asynchronously in the kernel.
  virtual Result<void> freeze(bool frozen) = 0;
  [[nodiscard]] virtual Result<CgroupStats> stats() const = 0;
  /// The fields a periodic sampler needs (memory current/peak, OOM kills,
  /// CPU usage and throttling, pids) from as few files as possible; the
  /// rest of CgroupStats stays 0. Runs every second for every agent.
  [[nodiscard]] virtual Result<CgroupStats> usage() const { return stats(); }
  /// What was actually applied, e.g. {"backend":"v1","memory":52428800,
  /// "swap":0,"cpu_quota_us":10000,"cpu_period_us":100000,"max_pids":64},
  /// plus "not_enforced": {"<limit>": "reason"} when anything was not.
  [[nodiscard]] virtual nlohmann::json enforced() const = 0;
  /// Main directory (v1: the memory hierarchy's, else the first one).
  [[nodiscard]] virtual const std::string& path() const = 0;
};

/// A cgroup implementation (v1 or v2) rooted at this instance's subtree.
class CgroupBackend {
 public:
  CgroupBackend() = default;
  CgroupBackend(const CgroupBackend&) = delete;
  CgroupBackend& operator=(const CgroupBackend&) = delete;
  /// Removes leftover agent directories, undoes v2 delegation, removes the
  /// instance directory. Never throws.
  virtual ~CgroupBackend();

  /// "v1" or "v2".
  [[nodiscard]] virtual std::string_view version() const = 0;
  /// Creates the agent cgroup `leaf` (e.g. "agent-7") and writes `limits`.
  /// With `parent` (a live agent cgroup of this backend) it is made inside
  /// the parent's, whose limits then bound both; usage read from the parent
  /// includes it, and killing or freezing the parent takes it along. Limits
  /// of a controller that is not available are reported in enforced() under
  /// "not_enforced"; a write the kernel rejects fails the call, removing
  /// what was made, with an error naming the file, errno and a hint.
  virtual Result<std::unique_ptr<AgentCgroup>> create(std::string_view leaf, const CgroupLimits& limits,
                                                      const AgentCgroup* parent) = 0;
  Result<std::unique_ptr<AgentCgroup>> create(std::string_view leaf, const CgroupLimits& limits) {
    return create(leaf, limits, nullptr);
  }
  /// For --check: version, parent and instance paths, controllers available
  /// and missing (with reasons), what delegation did.
  [[nodiscard]] virtual nlohmann::json describe() const = 0;
  /// Kills and removes agent directories under this instance's subtree that
  /// no live AgentCgroup owns (leftovers of a crashed run of this instance;
  /// call after taking the instance lock). Returns how many were removed.
  virtual Result<size_t> remove_stale() = 0;
};

/// The few filesystem and process operations the backends perform. The
/// default implementation makes the real syscalls; tests subclass it to run
/// the backends against a plain directory tree.
class CgroupFs {
 public:
  virtual ~CgroupFs();
  /// Whole file contents.
  [[nodiscard]] virtual Result<std::string> read(const std::string& path) const;
  /// One write(2) of `value` to an existing file (O_WRONLY|O_TRUNC).
  virtual Result<void> write(const std::string& path, std::string_view value);
  virtual Result<void> make_dir(const std::string& path);
  /// rmdir(2): a real cgroup directory goes away with its control files.
  virtual Result<void> remove_dir(const std::string& path);
  /// Names of the subdirectories of `path`.
  [[nodiscard]] virtual Result<std::vector<std::string>> subdirs(const std::string& path) const;
  [[nodiscard]] virtual bool exists(const std::string& path) const;
  /// statfs(2) says CGROUP2_SUPER_MAGIC.
  [[nodiscard]] virtual bool is_cgroup2_mount(const std::string& path) const;
  [[nodiscard]] virtual Result<UniqueFd> open_path(const std::string& dir) const;
  /// kill(2); returns 0 or the errno.
  virtual int send_signal(pid_t pid, int sig);
  /// Sleeps (short back-offs only).
  virtual void pause(std::chrono::milliseconds delay);
};

struct CgroupOptions {
  std::string root = "/sys/fs/cgroup";
  std::string proc_self_cgroup = "/proc/self/cgroup";
  /// Parent of the instance subtree, relative to each hierarchy root. It
  /// must exist. Default: the kernel's own cgroup (per hierarchy on v1).
  std::optional<std::string> parent;
  /// Names this kernel's subtree, e.g. "agentos-3f2a9c"; [A-Za-z0-9._-]+.
  std::string instance;
  /// Filesystem operations; null = the real filesystem.
  std::shared_ptr<CgroupFs> fs;
};

/// Detects the layout under opts.root and opens the matching backend, which
/// creates <parent>/<instance> (adopting it if a crashed run left it):
/// v2 when root is a cgroup2 mount (or has a cgroup.controllers file — how
/// tests mark a fake tree); otherwise v1 (legacy, or hybrid with an empty
/// cgroup2 at root/unified, which is ignored) from the hierarchies listed in
/// proc_self_cgroup. Missing controllers are not an error: describe() and
/// enforced() report them.
Result<std::unique_ptr<CgroupBackend>> open_cgroups(const CgroupOptions& opts);

// ---- Helpers shared by the two backends (and their tests) ----------------
namespace cgroup_util {

/// One line of /proc/<pid>/cgroup: "4:memory:/a/b" or "0::/a".
struct ProcCgroupEntry {
  std::string id;
  std::vector<std::string> controllers;  // empty for the v2 line
  std::string path;                      // starts with '/'
};
Result<std::vector<ProcCgroupEntry>> parse_proc_cgroup(std::string_view text);

/// Decimal u64 with surrounding whitespace; nullopt otherwise.
std::optional<uint64_t> parse_u64(std::string_view text);
/// Value of `key` in "key value" lines (cpu.stat, memory.events, ...).
std::optional<uint64_t> keyed_u64(std::string_view text, std::string_view key);
/// Whitespace-separated words (cgroup.controllers, subtree_control).
std::vector<std::string> split_words(std::string_view text);
/// Pids listed one per line (cgroup.procs, tasks).
std::vector<pid_t> parse_pids(std::string_view text);

/// `a` + "/" + `b`, without doubling or trailing slashes.
std::string join(std::string_view a, std::string_view b);
/// True for a single path component of [A-Za-z0-9._-], not "." or "..".
bool valid_name(std::string_view name);
/// Normalises a configured parent ("/a/b/", "a/b") to "/a/b"; rejects "..".
Result<std::string> normalise_parent(std::string_view parent);

/// Reads a u64 control file; nullopt when it is missing or not a number.
std::optional<uint64_t> read_u64(const CgroupFs& fs, const std::string& path);
/// Writes a control file; the error names the file and value and adds a
/// hint for the operator based on errno.
Result<void> write_control(CgroupFs& fs, const std::string& path, std::string_view value);
/// mkdir(2) of a cgroup directory; the error says "mkdir <path> (<hint>)",
/// where an existing directory is one a crashed run left (callers that adopt
/// it check for EEXIST).
Result<void> make_cgroup_dir(CgroupFs& fs, const std::string& path);
/// The hint write_control() adds for `err` writing to `file`.
std::string write_hint(std::string_view file, int err);

/// SIGKILLs every pid in `procs_file` until a pass finds no new ones
/// (bounded), for trees that may fork meanwhile. Returns pids signalled.
size_t kill_listed(CgroupFs& fs, const std::string& procs_file);
/// kill_listed() on `dir` and on every directory below it (agent cgroups
/// nested in it). Returns pids signalled.
size_t kill_tree_listed(CgroupFs& fs, const std::string& dir);
/// True if `dir` or any directory below it lists a process.
bool tree_populated(const CgroupFs& fs, const std::string& dir);
/// rmdir with retry: on EBUSY it backs off 1, 2, 4, ... 32 ms (~63 ms in all)
/// because tasks that were just killed leave their cgroup asynchronously.
/// ENOENT counts as removed.
Result<void> remove_dir_retrying(CgroupFs& fs, const std::string& path);
/// Removes `path` and any directories below it, deepest first, SIGKILLing
/// the processes listed in each (used for leftovers and leaves that agents
/// subdivided). Best effort; returns the first error.
Result<void> remove_tree(CgroupFs& fs, const std::string& path);

}  // namespace cgroup_util
}  // namespace agentos::runtime

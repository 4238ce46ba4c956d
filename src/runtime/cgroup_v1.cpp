#include "runtime/cgroup_v1.hpp"

#include <algorithm>
#include <array>
#include <fmt/core.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "util/log.hpp"

namespace agentos::runtime {
namespace {

using namespace cgroup_util;
using nlohmann::json;

constexpr std::array<std::string_view, 5> kWanted = {"memory", "cpu", "cpuacct", "pids", "freezer"};
// v1 reports "no limit" as PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 with
// 4 KiB pages); anything this large is not a real limit.
constexpr uint64_t kUnlimitedV1 = uint64_t{1} << 62;

/// One mounted v1 hierarchy carrying some of the wanted controllers.
struct Hierarchy {
  std::string mount;
  std::vector<std::string> controllers;
  std::string parent_dir;
  std::string instance_dir;
};

/// What the backend and its agents share; agents keep it alive.
struct V1Shared {
  std::shared_ptr<CgroupFs> fs;
  std::vector<Hierarchy> hierarchies;
  std::map<std::string, size_t> index;         // controller -> hierarchy
  std::map<std::string, std::string> missing;  // controller -> reason
  std::set<std::string> live;                  // leaves owned by a live V1Agent
};

/// Freezes `freezer_dir` (when there is one; v1 freezes its descendants
/// too), SIGKILLs everything listed in `procs_dir` and the agent cgroups
/// nested below it, thaws. v1 tasks killed while frozen only die once thawed.
void freeze_and_kill(CgroupFs& fs, const std::string* freezer_dir, const std::string& procs_dir) {
  const std::string state = freezer_dir ? join(*freezer_dir, "freezer.state") : std::string();
  bool frozen = freezer_dir && write_control(fs, state, "FROZEN").has_value();
  // FREEZING becomes FROZEN asynchronously (a task in uninterruptible sleep
  // can hold it up); wait a little, then kill anyway: kill_listed() re-reads
  // the list to catch a fork that slipped through.
  for (int delay_ms = 1; frozen && delay_ms <= 16; delay_ms *= 2) {
    auto text = fs.read(state);
    if (!text || text->starts_with("FROZEN")) break;
    fs.pause(std::chrono::milliseconds(delay_ms));
  }
  kill_tree_listed(fs, procs_dir);
  if (frozen) (void)write_control(fs, state, "THAWED");
}

class V1Agent final : public AgentCgroup {
 public:
  /// `bases`: where the leaf goes in each hierarchy (the instance's
  /// directories, or the parent agent's).
  V1Agent(std::shared_ptr<V1Shared> shared, std::string leaf, const std::vector<std::string>& bases)
      : sh_(std::move(shared)), leaf_(std::move(leaf)) {
    for (const auto& base : bases) dirs_.push_back(join(base, leaf_));
    main_ = dir_of("memory").value_or(dirs_.front());
    sh_->live.insert(leaf_);
  }
  ~V1Agent() override;

  Result<void> make_dirs();
  Result<void> apply(const CgroupLimits& limits);
  Result<void> attach(pid_t pid) override;
  std::optional<int> clone_into_fd() const override { return std::nullopt; }
  Result<void> kill_all() override;
  Result<void> freeze(bool frozen) override;
  Result<CgroupStats> stats() const override;
  json enforced() const override { return enforced_; }
  const std::string& path() const override { return main_; }
  const std::vector<std::string>& dirs() const { return dirs_; }
  void nested_in(const std::string& parent) { enforced_["nested_in"] = parent; }

 private:
  std::optional<std::string> dir_of(const std::string& controller) const {
    auto it = sh_->index.find(controller);
    if (it == sh_->index.end()) return std::nullopt;
    return dirs_[it->second];
  }
  bool populated() const;
  Result<void> apply_memory(uint64_t bytes, json& ne);
  void read_memory(const std::string& dir, CgroupStats& s) const;
  void read_usage(CgroupStats& s) const;
  Result<CgroupStats> usage() const override;

  std::shared_ptr<V1Shared> sh_;
  std::string leaf_;
  std::vector<std::string> dirs_;  // one per hierarchy, same order
  size_t made_ = 0;                // dirs_[0, made_) were created by us
  std::string main_;
  json enforced_ = json::object();
};

Result<void> V1Agent::make_dirs() {
  for (const auto& dir : dirs_) {
    // An existing leaf is not ours (yet): the destructor leaves it alone.
    AOS_TRY_VOID(make_cgroup_dir(*sh_->fs, dir));
    ++made_;
  }
  return {};
}

V1Agent::~V1Agent() {
  // Processes join only after create() succeeded, i.e. once every dir exists.
  if (made_ == dirs_.size() && populated()) (void)kill_all();
  for (size_t i = 0; i < made_; ++i) {
    if (auto r = remove_tree(*sh_->fs, dirs_[i]); !r)
      log::warn("cgroup {} not removed ({}); the backend retries on exit", dirs_[i], r.error().message());
  }
  sh_->live.erase(leaf_);
}

bool V1Agent::populated() const {
  return std::any_of(dirs_.begin(), dirs_.end(), [&](const std::string& d) { return tree_populated(*sh_->fs, d); });
}

Result<void> V1Agent::apply_memory(uint64_t bytes, json& ne) {
  CgroupFs& fs = *sh_->fs;
  const std::string dir = *dir_of("memory");
  // memsw (memory+swap) must stay >= limit_in_bytes, so the limit goes first.
  AOS_TRY_VOID(write_control(fs, join(dir, "memory.limit_in_bytes"), std::to_string(bytes)));
  enforced_["memory"] = bytes;
  if (fs.exists(join(dir, "memory.memsw.limit_in_bytes"))) {
    AOS_TRY_VOID(write_control(fs, join(dir, "memory.memsw.limit_in_bytes"), std::to_string(bytes)));
    enforced_["swap"] = 0;
    return {};
  }
  auto r = write_control(fs, join(dir, "memory.swappiness"), "0");
  if (r) enforced_["swappiness"] = 0;
  ne["swap"] = fmt::format("memory.memsw.limit_in_bytes is missing (swap accounting is off: boot with "
                           "swapaccount=1); {}, so swap is discouraged but not limited",
                           r ? "memory.swappiness set to 0" : "and memory.swappiness failed: " + r.error().message());
  return {};
}

Result<void> V1Agent::apply(const CgroupLimits& limits) {
  CgroupFs& fs = *sh_->fs;
  json ne = json::object();
  if (limits.memory_bytes && !dir_of("memory"))
    ne["memory"] = sh_->missing.at("memory");
  else if (limits.memory_bytes)
    AOS_TRY_VOID(apply_memory(*limits.memory_bytes, ne));
  if (limits.cpu_quota_us && !dir_of("cpu")) {
    ne["cpu_quota_us"] = sh_->missing.at("cpu");
  } else if (limits.cpu_quota_us) {
    // Period first: the kernel validates the quota against the current period.
    const std::string dir = *dir_of("cpu");
    AOS_TRY_VOID(write_control(fs, join(dir, "cpu.cfs_period_us"), std::to_string(limits.cpu_period_us)));
    AOS_TRY_VOID(write_control(fs, join(dir, "cpu.cfs_quota_us"), std::to_string(*limits.cpu_quota_us)));
    enforced_["cpu_quota_us"] = *limits.cpu_quota_us;
    enforced_["cpu_period_us"] = limits.cpu_period_us;
  }
  if (limits.max_pids && !dir_of("pids")) {
    ne["max_pids"] = sh_->missing.at("pids");
  } else if (limits.max_pids) {
    AOS_TRY_VOID(write_control(fs, join(*dir_of("pids"), "pids.max"), std::to_string(*limits.max_pids)));
    enforced_["max_pids"] = *limits.max_pids;
  }
  if (!dir_of("freezer"))
    ne["freezer"] = sh_->missing.at("freezer") + "; kill_all signals each process without freezing first";
  enforced_["backend"] = "v1";
  if (!ne.empty()) enforced_["not_enforced"] = std::move(ne);
  return {};
}

Result<void> V1Agent::attach(pid_t pid) {
  // Every hierarchy: a process joins each v1 hierarchy separately.
  for (const auto& dir : dirs_)
    AOS_TRY_VOID(write_control(*sh_->fs, join(dir, "cgroup.procs"), std::to_string(pid)));
  return {};
}

Result<void> V1Agent::kill_all() {
  auto freezer = dir_of("freezer");
  const std::string procs_dir = freezer.value_or(main_);
  if (!sh_->fs->exists(join(procs_dir, "cgroup.procs")))
    return make_error("kill: " + procs_dir + " does not exist", ENOENT);
  freeze_and_kill(*sh_->fs, freezer ? &*freezer : nullptr, procs_dir);
  return {};
}

Result<void> V1Agent::freeze(bool frozen) {
  auto dir = dir_of("freezer");
  if (!dir) return make_error("freeze: " + sh_->missing.at("freezer"), EOPNOTSUPP);
  return write_control(*sh_->fs, join(*dir, "freezer.state"), frozen ? "FROZEN" : "THAWED");
}

void V1Agent::read_memory(const std::string& dir, CgroupStats& s) const {
  const CgroupFs& fs = *sh_->fs;
  s.memory_current = read_u64(fs, join(dir, "memory.usage_in_bytes")).value_or(0);
  s.memory_peak = read_u64(fs, join(dir, "memory.max_usage_in_bytes")).value_or(0);
  uint64_t limit = read_u64(fs, join(dir, "memory.limit_in_bytes")).value_or(0);
  s.memory_limit = limit >= kUnlimitedV1 ? 0 : limit;
  // With swap accounting the memory+swap counter is charged first, so a
  // limit hit usually shows in memsw.failcnt, not failcnt: count both.
  s.memory_max_hits = read_u64(fs, join(dir, "memory.failcnt")).value_or(0) +
                      read_u64(fs, join(dir, "memory.memsw.failcnt")).value_or(0);
  if (auto oom = fs.read(join(dir, "memory.oom_control"))) {
    // "oom_kill N" appeared in 4.13; before that only under_oom (0/1) exists.
    auto kills = keyed_u64(*oom, "oom_kill");
    s.oom_kills_exact = kills.has_value();
    s.oom_kills = kills ? *kills : keyed_u64(*oom, "under_oom").value_or(0);
  }
}

Result<CgroupStats> V1Agent::stats() const {
  const CgroupFs& fs = *sh_->fs;
  CgroupStats s;
  auto procs = fs.read(join(main_, "cgroup.procs"));
  if (!procs) return std::unexpected(procs.error().wrap("cgroup stats"));
  s.populated = !parse_pids(*procs).empty();
  if (auto dir = dir_of("memory")) read_memory(*dir, s);
  read_usage(s);
  return s;
}

Result<CgroupStats> V1Agent::usage() const {
  // Six files instead of ten: on a busy host each cgroupfs read costs tens
  // of microseconds, and the sampler reads every agent every second.
  const CgroupFs& fs = *sh_->fs;
  CgroupStats s;
  if (auto dir = dir_of("memory")) {
    auto current = fs.read(join(*dir, "memory.usage_in_bytes"));
    if (!current) return std::unexpected(current.error().wrap("cgroup usage"));
    s.memory_current = parse_u64(*current).value_or(0);
    s.memory_peak = read_u64(fs, join(*dir, "memory.max_usage_in_bytes")).value_or(0);
    if (auto oom = fs.read(join(*dir, "memory.oom_control"))) {
      auto kills = keyed_u64(*oom, "oom_kill");
      s.oom_kills_exact = kills.has_value();
      s.oom_kills = kills ? *kills : keyed_u64(*oom, "under_oom").value_or(0);
    }
  }
  read_usage(s);
  return s;
}

void V1Agent::read_usage(CgroupStats& s) const {
  const CgroupFs& fs = *sh_->fs;
  if (auto dir = dir_of("cpuacct")) s.cpu_usage_us = read_u64(fs, join(*dir, "cpuacct.usage")).value_or(0) / 1000;
  if (auto dir = dir_of("cpu")) {
    if (auto cpu = fs.read(join(*dir, "cpu.stat"))) {
      s.nr_throttled = keyed_u64(*cpu, "nr_throttled").value_or(0);
      s.throttled_us = keyed_u64(*cpu, "throttled_time").value_or(0) / 1000;  // ns
    }
  }
  if (auto dir = dir_of("pids")) s.pids_current = read_u64(fs, join(*dir, "pids.current")).value_or(0);
}

class V1Backend final : public CgroupBackend {
 public:
  explicit V1Backend(std::shared_ptr<V1Shared> shared, std::string root)
      : sh_(std::move(shared)), root_(std::move(root)) {}
  ~V1Backend() override;

  Result<void> make_instance_dirs();
  std::string_view version() const override { return "v1"; }
  Result<std::unique_ptr<AgentCgroup>> create(std::string_view leaf, const CgroupLimits& limits,
                                              const AgentCgroup* parent) override;
  json describe() const override;
  Result<size_t> remove_stale() override;

 private:
  void remove_leaf(const std::string& leaf);

  std::shared_ptr<V1Shared> sh_;
  std::string root_;
  size_t made_ = 0;  // instance dirs this backend owns (a prefix of hierarchies)
  bool adopted_ = false;
};

Result<void> V1Backend::make_instance_dirs() {
  for (const auto& h : sh_->hierarchies) {
    if (auto r = make_cgroup_dir(*sh_->fs, h.instance_dir); !r) {
      if (r.error().code != EEXIST) return r;
      adopted_ = true;  // left by a crashed run of this instance; remove_stale() empties it
    }
    ++made_;
  }
  return {};
}

V1Backend::~V1Backend() {
  if (auto stale = remove_stale(); stale && *stale > 0)
    log::warn("cgroup v1: removed {} agent cgroup(s) left by this instance", *stale);
  for (size_t i = 0; i < made_; ++i) {
    const std::string& dir = sh_->hierarchies[i].instance_dir;
    if (auto r = remove_dir_retrying(*sh_->fs, dir); !r)
      log::warn("cgroup v1: cannot remove {}: {}", dir, r.error().message());
  }
}

Result<std::unique_ptr<AgentCgroup>> V1Backend::create(std::string_view leaf, const CgroupLimits& limits,
                                                       const AgentCgroup* parent) {
  if (!valid_name(leaf)) return make_error(fmt::format("invalid agent cgroup name \"{}\"", leaf), EINVAL);
  if (sh_->live.contains(std::string(leaf)))
    return make_error(fmt::format("agent cgroup {} is in use", leaf), EEXIST);
  const auto* above = dynamic_cast<const V1Agent*>(parent);
  if (parent && !above) return make_error("the parent cgroup is not a v1 agent cgroup", EINVAL);
  std::vector<std::string> bases;
  if (above) {
    bases = above->dirs();
  } else {
    for (const auto& h : sh_->hierarchies) bases.push_back(h.instance_dir);
  }
  // On any failure below `agent` goes out of scope and removes what it made.
  auto agent = std::make_unique<V1Agent>(sh_, std::string(leaf), bases);
  if (auto r = agent->make_dirs(); !r) return std::unexpected(r.error().wrap("cgroup " + std::string(leaf)));
  if (auto r = agent->apply(limits); !r) return std::unexpected(r.error().wrap("cgroup " + agent->path()));
  if (above) agent->nested_in(above->path());
  return std::unique_ptr<AgentCgroup>(std::move(agent));
}

json V1Backend::describe() const {
  json hierarchies = json::array();
  std::vector<std::string> available, instance_paths;
  for (const auto& h : sh_->hierarchies) {
    hierarchies.push_back({{"mount", h.mount}, {"controllers", h.controllers}, {"parent", h.parent_dir},
                           {"instance", h.instance_dir}});
    available.insert(available.end(), h.controllers.begin(), h.controllers.end());
    instance_paths.push_back(h.instance_dir);
  }
  json missing = json::object();
  for (const auto& [c, why] : sh_->missing) missing[c] = why;
  return {{"version", "v1"},          {"root", root_},
          {"hierarchies", hierarchies}, {"instance_paths", instance_paths},
          {"adopted_existing", adopted_}, {"controllers", {{"available", available}, {"missing", missing}}}};
}

void V1Backend::remove_leaf(const std::string& leaf) {
  // Freeze + kill through the freezer hierarchy first so a forking leftover
  // cannot outrun us, then remove the leaf from every hierarchy.
  CgroupFs& fs = *sh_->fs;
  if (auto it = sh_->index.find("freezer"); it != sh_->index.end()) {
    std::string dir = join(sh_->hierarchies[it->second].instance_dir, leaf);
    if (fs.exists(dir)) freeze_and_kill(fs, &dir, dir);
  }
  for (const auto& h : sh_->hierarchies) {
    std::string dir = join(h.instance_dir, leaf);
    if (!fs.exists(dir)) continue;
    if (auto r = remove_tree(fs, dir); !r) log::warn("cgroup v1: cannot remove {}: {}", dir, r.error().message());
  }
}

Result<size_t> V1Backend::remove_stale() {
  std::set<std::string> leaves;
  for (size_t i = 0; i < made_; ++i) {
    auto names = sh_->fs->subdirs(sh_->hierarchies[i].instance_dir);
    if (!names) return std::unexpected(names.error().wrap("cgroup v1 remove_stale"));
    for (auto& n : *names)
      if (!sh_->live.contains(n)) leaves.insert(std::move(n));
  }
  for (const auto& leaf : leaves) remove_leaf(leaf);
  return leaves.size();
}

/// Finds the hierarchy of each wanted controller from /proc/self/cgroup.
Result<void> find_hierarchies(const CgroupOptions& opts, V1Shared& sh) {
  auto text = opts.fs->read(opts.proc_self_cgroup);
  if (!text) return std::unexpected(text.error().wrap("cgroup v1: which cgroups is the kernel in?"));
  auto entries = AOS_TRY(parse_proc_cgroup(*text));
  std::map<std::string, size_t> by_id;  // hierarchy id -> index in sh.hierarchies
  for (auto want : kWanted) {
    std::string c(want);
    auto e = std::find_if(entries.begin(), entries.end(), [&](const ProcCgroupEntry& x) {
      return std::find(x.controllers.begin(), x.controllers.end(), c) != x.controllers.end();
    });
    if (e == entries.end()) {
      sh.missing[c] = fmt::format("no v1 hierarchy has the {} controller (not in {}): mount it, e.g. "
                                  "mount -t cgroup -o {} cgroup {}/{}",
                                  c, opts.proc_self_cgroup, c, opts.root, c);
      continue;
    }
    if (auto it = by_id.find(e->id); it != by_id.end()) {
      sh.hierarchies[it->second].controllers.push_back(c);
      sh.index[c] = it->second;
      continue;
    }
    std::string list;
    for (const auto& name : e->controllers) list += (list.empty() ? "" : ",") + name;
    std::string mount = join(opts.root, list);
    if (!opts.fs->exists(mount)) mount = join(opts.root, c);
    if (!opts.fs->exists(mount)) {
      sh.missing[c] = fmt::format("its hierarchy ({}) is not mounted at {}/{}", list, opts.root, list);
      continue;
    }
    std::string parent = join(mount, opts.parent.value_or(e->path));
    by_id[e->id] = sh.hierarchies.size();
    sh.index[c] = sh.hierarchies.size();
    sh.hierarchies.push_back({mount, {c}, parent, join(parent, opts.instance)});
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<CgroupBackend>> open_cgroup_v1(const CgroupOptions& opts) {
  auto sh = std::make_shared<V1Shared>();
  sh->fs = opts.fs;
  AOS_TRY_VOID(find_hierarchies(opts, *sh));
  if (sh->hierarchies.empty())
    return make_error(fmt::format("no cgroup found under {}: it is not a cgroup2 mount and none of the v1 "
                                  "controllers memory, cpu, cpuacct, pids, freezer is mounted there",
                                  opts.root),
                      ENOENT);
  for (const auto& h : sh->hierarchies) {
    if (!opts.fs->exists(h.parent_dir))
      return make_error(fmt::format("cgroup parent {} does not exist: create it in every hierarchy "
                                    "(mkdir -p {}/{{memory,cpu,cpuacct,pids,freezer}}{}), or omit --cgroup-parent",
                                    h.parent_dir, opts.root, opts.parent.value_or("")),
                        ENOENT);
  }
  auto backend = std::make_unique<V1Backend>(sh, opts.root);
  // On failure the backend's destructor removes the instance dirs it made.
  AOS_TRY_VOID(backend->make_instance_dirs());
  return std::unique_ptr<CgroupBackend>(std::move(backend));
}

}  // namespace agentos::runtime

#include "runtime/cgroup_v2.hpp"

#include <unistd.h>

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

constexpr std::array<std::string_view, 3> kWanted = {"memory", "cpu", "pids"};
constexpr std::string_view kKernelLeaf = "kernel";
// An agent's own processes live in <agent>/self: on cgroup v2 a cgroup that
// enables controllers for its children may hold no processes itself, and
// the agents it spawns get their cgroups beside "self", inside <agent>.
constexpr std::string_view kSelfLeaf = "self";

/// What the backend and its agents share; agents keep it alive.
struct V2Shared {
  std::shared_ptr<CgroupFs> fs;
  std::set<std::string> enabled;              // controllers agent leaves get
  std::map<std::string, std::string> missing;  // controller -> reason
  std::set<std::string> live;                 // leaves owned by a live V2Agent
};

std::string controller_list(const std::set<std::string>& names, char sign) {
  std::string out;
  for (const auto& n : names) out += fmt::format("{}{}{}", out.empty() ? "" : " ", sign, n);
  return out;
}

class V2Agent final : public AgentCgroup {
 public:
  V2Agent(std::shared_ptr<V2Shared> shared, std::string leaf, std::string dir)
      : sh_(std::move(shared)), leaf_(std::move(leaf)), dir_(std::move(dir)), self_(join(dir_, kSelfLeaf)) {
    sh_->live.insert(leaf_);
  }
  ~V2Agent() override;

  Result<void> apply(const CgroupLimits& limits);
  /// Enables the controllers for the agent's children ("self" and nested
  /// agents), makes "self" and opens it for clone3.
  Result<void> make_self();
  void nested_in(const std::string& parent) { enforced_["nested_in"] = parent; }

  Result<void> attach(pid_t pid) override {
    return write_control(*sh_->fs, join(self_, "cgroup.procs"), std::to_string(pid));
  }
  std::optional<int> clone_into_fd() const override { return fd_.get(); }
  Result<void> kill_all() override;
  Result<void> freeze(bool frozen) override {
    return write_control(*sh_->fs, file("cgroup.freeze"), frozen ? "1" : "0");
  }
  Result<CgroupStats> stats() const override;
  Result<CgroupStats> usage() const override;
  json enforced() const override { return enforced_; }
  const std::string& path() const override { return dir_; }

 private:
  std::string file(std::string_view name) const { return join(dir_, name); }
  bool has(const std::string& controller) const { return sh_->enabled.contains(controller); }
  Result<void> apply_memory(const CgroupLimits& limits, json& ne);
  Result<void> kill_by_freezing();
  void read_memory(CgroupStats& s) const;
  void read_memory_usage(CgroupStats& s) const;
  Result<void> read_cpu(CgroupStats& s) const;

  std::shared_ptr<V2Shared> sh_;
  std::string leaf_;
  std::string dir_;   // limits, and usage of the whole subtree
  std::string self_;  // the agent's own processes
  UniqueFd fd_;       // self_, for clone3
  json enforced_ = json::object();
  mutable uint64_t sampled_peak_ = 0;
};

V2Agent::~V2Agent() {
  fd_.reset();
  auto events = sh_->fs->read(file("cgroup.events"));
  if (events && keyed_u64(*events, "populated").value_or(0) != 0) (void)kill_all();
  if (auto r = remove_tree(*sh_->fs, dir_); !r)
    log::warn("cgroup {} not removed ({}); the backend retries on exit", dir_, r.error().message());
  sh_->live.erase(leaf_);
}

Result<void> V2Agent::apply_memory(const CgroupLimits& limits, json& ne) {
  CgroupFs& fs = *sh_->fs;
  if (!has("memory")) {
    if (limits.memory_bytes) ne["memory"] = sh_->missing.at("memory");
    return {};
  }
  // oom.group: an OOM kill takes the whole agent, not one random process of it.
  if (fs.exists(file("memory.oom.group"))) {
    AOS_TRY_VOID(write_control(fs, file("memory.oom.group"), "1"));
    enforced_["oom_group"] = true;
  } else {
    ne["oom_group"] = "memory.oom.group is missing (kernel < 4.19): an OOM kill may end only part of the agent";
  }
  if (!limits.memory_bytes) return {};
  AOS_TRY_VOID(write_control(fs, file("memory.max"), std::to_string(*limits.memory_bytes)));
  enforced_["memory"] = *limits.memory_bytes;
  if (fs.exists(file("memory.swap.max"))) {
    AOS_TRY_VOID(write_control(fs, file("memory.swap.max"), "0"));
    enforced_["swap"] = 0;
  } else {
    ne["swap"] = "memory.swap.max is missing: swap accounting is off (boot with swapaccount=1)";
  }
  return {};
}

Result<void> V2Agent::apply(const CgroupLimits& limits) {
  CgroupFs& fs = *sh_->fs;
  json ne = json::object();
  AOS_TRY_VOID(apply_memory(limits, ne));
  if (limits.cpu_quota_us && !has("cpu")) {
    ne["cpu_quota_us"] = sh_->missing.at("cpu");
  } else if (limits.cpu_quota_us) {
    auto value = fmt::format("{} {}", *limits.cpu_quota_us, limits.cpu_period_us);
    AOS_TRY_VOID(write_control(fs, file("cpu.max"), value));
    enforced_["cpu_quota_us"] = *limits.cpu_quota_us;
    enforced_["cpu_period_us"] = limits.cpu_period_us;
  }
  if (limits.max_pids && !has("pids")) {
    ne["max_pids"] = sh_->missing.at("pids");
  } else if (limits.max_pids) {
    AOS_TRY_VOID(write_control(fs, file("pids.max"), std::to_string(*limits.max_pids)));
    enforced_["max_pids"] = *limits.max_pids;
  }
  enforced_["backend"] = "v2";
  if (!ne.empty()) enforced_["not_enforced"] = std::move(ne);
  return {};
}

Result<void> V2Agent::make_self() {
  CgroupFs& fs = *sh_->fs;
  if (!sh_->enabled.empty())
    AOS_TRY_VOID(write_control(fs, file("cgroup.subtree_control"), controller_list(sh_->enabled, '+')));
  AOS_TRY_VOID(make_cgroup_dir(fs, self_));
  fd_ = AOS_TRY(fs.open_path(self_));
  return {};
}

Result<void> V2Agent::kill_all() {
  // cgroup.kill (Linux 5.14) kills the whole subtree atomically, forks
  // included. Older kernels: freeze so nothing forks, signal, thaw.
  if (sh_->fs->exists(file("cgroup.kill"))) return write_control(*sh_->fs, file("cgroup.kill"), "1");
  return kill_by_freezing();
}

Result<void> V2Agent::kill_by_freezing() {
  CgroupFs& fs = *sh_->fs;
  bool frozen = write_control(fs, file("cgroup.freeze"), "1").has_value();
  // Freezing completes asynchronously ("frozen 1" in cgroup.events); wait a
  // little, then kill anyway: kill_listed() re-reads for late forks.
  for (int delay_ms = 1; frozen && delay_ms <= 16; delay_ms *= 2) {
    auto events = fs.read(file("cgroup.events"));
    if (!events || keyed_u64(*events, "frozen").value_or(0) == 1) break;
    fs.pause(std::chrono::milliseconds(delay_ms));
  }
  kill_tree_listed(fs, dir_);
  // A frozen v2 task still dies from SIGKILL; thawing releases the rest.
  if (frozen) AOS_TRY_VOID(write_control(fs, file("cgroup.freeze"), "0"));
  return {};
}

void V2Agent::read_memory(CgroupStats& s) const {
  read_memory_usage(s);
  s.memory_limit = read_u64(*sh_->fs, file("memory.max")).value_or(0);  // "max" -> 0
  if (auto events = sh_->fs->read(file("memory.events"))) s.memory_max_hits = keyed_u64(*events, "max").value_or(0);
}

void V2Agent::read_memory_usage(CgroupStats& s) const {
  const CgroupFs& fs = *sh_->fs;
  s.memory_current = read_u64(fs, file("memory.current")).value_or(0);
  if (auto peak = read_u64(fs, file("memory.peak"))) {
    s.memory_peak = *peak;
  } else {  // memory.peak arrived in 5.19: keep the largest sample instead
    sampled_peak_ = std::max(sampled_peak_, s.memory_current);
    s.memory_peak = sampled_peak_;
    s.memory_peak_sampled = true;
  }
  // Kills of the agent's own processes: the agent's memory.events would
  // also count OOM kills in agents it spawned.
  if (auto events = fs.read(join(self_, "memory.events"))) s.oom_kills = keyed_u64(*events, "oom_kill").value_or(0);
}

Result<CgroupStats> V2Agent::stats() const {
  const CgroupFs& fs = *sh_->fs;
  CgroupStats s;
  auto events = fs.read(file("cgroup.events"));
  if (!events) return std::unexpected(events.error().wrap("cgroup stats"));
  s.populated = keyed_u64(*events, "populated").value_or(0) != 0;
  if (has("memory")) read_memory(s);
  (void)read_cpu(s);
  if (has("pids")) s.pids_current = read_u64(fs, file("pids.current")).value_or(0);
  return s;
}

// cpu.stat's usage_usec comes from the cgroup core, present even without the
// cpu controller; the throttling fields need the controller.
Result<void> V2Agent::read_cpu(CgroupStats& s) const {
  auto cpu = sh_->fs->read(file("cpu.stat"));
  if (!cpu) return std::unexpected(cpu.error().wrap("cgroup usage"));
  s.cpu_usage_us = keyed_u64(*cpu, "usage_usec").value_or(0);
  s.nr_throttled = keyed_u64(*cpu, "nr_throttled").value_or(0);
  s.throttled_us = keyed_u64(*cpu, "throttled_usec").value_or(0);
  return {};
}

Result<CgroupStats> V2Agent::usage() const {
  // What the sampler needs, every second for every agent: five files
  // instead of stats()' eight (no cgroup.events, memory.max or the
  // agent's memory.events). cpu.stat always
  // exists, so a failure to read it means the cgroup is gone.
  CgroupStats s;
  AOS_TRY_VOID(read_cpu(s));
  if (has("memory")) read_memory_usage(s);
  if (has("pids")) s.pids_current = read_u64(*sh_->fs, file("pids.current")).value_or(0);
  return s;
}

class V2Backend final : public CgroupBackend {
 public:
  V2Backend(const CgroupOptions& opts, std::string parent_dir)
      : sh_(std::make_shared<V2Shared>()), root_(opts.root), parent_dir_(std::move(parent_dir)),
        instance_dir_(join(parent_dir_, opts.instance)), kernel_dir_(join(instance_dir_, kKernelLeaf)) {
    sh_->fs = opts.fs;
  }
  ~V2Backend() override;

  Result<void> setup();
  std::string_view version() const override { return "v2"; }
  Result<std::unique_ptr<AgentCgroup>> create(std::string_view leaf, const CgroupLimits& limits,
                                              const AgentCgroup* parent) override;
  json describe() const override;
  Result<size_t> remove_stale() override;

 private:
  Result<std::set<std::string>> read_set(const std::string& file) const;
  bool only_self_in_parent() const;
  Result<void> move_self_to_kernel_leaf();
  void delegate(const std::set<std::string>& wanted);
  void enable_in_instance();
  void undo_delegation();

  std::shared_ptr<V2Shared> sh_;
  std::string root_;
  std::string parent_dir_;
  std::string instance_dir_;
  std::string kernel_dir_;
  bool adopted_ = false;
  bool moved_self_ = false;
  std::set<std::string> enabled_in_parent_;
  std::set<std::string> enabled_in_instance_;
};

Result<std::set<std::string>> V2Backend::read_set(const std::string& file) const {
  auto text = sh_->fs->read(file);
  if (!text) return std::unexpected(text.error());
  auto words = split_words(*text);
  return std::set<std::string>(words.begin(), words.end());
}

bool V2Backend::only_self_in_parent() const {
  auto text = sh_->fs->read(join(parent_dir_, "cgroup.procs"));
  return text && parse_pids(*text) == std::vector<pid_t>{::getpid()};
}

Result<void> V2Backend::move_self_to_kernel_leaf() {
  if (auto r = sh_->fs->make_dir(kernel_dir_); !r && r.error().code != EEXIST) return r;
  AOS_TRY_VOID(write_control(*sh_->fs, join(kernel_dir_, "cgroup.procs"), std::to_string(::getpid())));
  moved_self_ = true;
  log::info("cgroup v2: moved the kernel (pid {}) into {} so {} can delegate controllers", ::getpid(),
            kernel_dir_, parent_dir_);
  return {};
}

void V2Backend::delegate(const std::set<std::string>& wanted) {
  std::set<std::string> need;
  auto already = read_set(join(parent_dir_, "cgroup.subtree_control")).value_or(std::set<std::string>{});
  for (const auto& c : wanted)
    if (!already.contains(c)) need.insert(c);
  if (need.empty()) return;
  const std::string ctl = join(parent_dir_, "cgroup.subtree_control");
  auto r = write_control(*sh_->fs, ctl, controller_list(need, '+'));
  if (!r && r.error().code == EBUSY && only_self_in_parent()) {
    r = move_self_to_kernel_leaf();
    if (r) r = write_control(*sh_->fs, ctl, controller_list(need, '+'));
  }
  if (r) {
    enabled_in_parent_ = need;
    return;
  }
  std::string why = r.error().message();
  if (r.error().code == EBUSY)
    why = fmt::format("{} has member processes besides this kernel, so cgroup v2 cannot delegate "
                      "controllers below it; run with --cgroup-parent naming an empty cgroup this "
                      "kernel may write, or under systemd with Delegate=yes "
                      "(e.g. systemd-run --scope -p Delegate=yes agentos_kernel ...)",
                      parent_dir_);
  log::warn("cgroup v2: {} not enabled: {}", controller_list(need, '+'), why);
  for (const auto& c : need) sh_->missing[c] = why;
}

void V2Backend::enable_in_instance() {
  std::set<std::string> usable;
  for (auto c : kWanted)
    if (!sh_->missing.contains(std::string(c))) usable.insert(std::string(c));
  if (usable.empty()) return;
  auto r = write_control(*sh_->fs, join(instance_dir_, "cgroup.subtree_control"), controller_list(usable, '+'));
  if (!r) {
    for (const auto& c : usable) sh_->missing[c] = r.error().message();
    return;
  }
  enabled_in_instance_ = usable;
  sh_->enabled = usable;
}

Result<void> V2Backend::setup() {
  auto available = read_set(join(parent_dir_, "cgroup.controllers"));
  if (!available) return std::unexpected(available.error().wrap("cgroup v2 parent " + parent_dir_));
  std::set<std::string> wanted;
  for (auto c : kWanted) {
    std::string name(c);
    if (available->contains(name))
      wanted.insert(name);
    else
      sh_->missing[name] = fmt::format("not in {}/cgroup.controllers: an ancestor does not delegate it "
                                       "(enable it in the ancestors' cgroup.subtree_control, or "
                                       "systemd Delegate=yes)",
                                       parent_dir_);
  }
  if (auto r = make_cgroup_dir(*sh_->fs, instance_dir_); !r) {
    if (r.error().code != EEXIST) return r;
    adopted_ = true;  // left by a crashed run of this instance; remove_stale() empties it
  }
  delegate(wanted);
  enable_in_instance();
  return {};
}

void V2Backend::undo_delegation() {
  CgroupFs& fs = *sh_->fs;
  // Order matters: <parent> may not disable a controller that a child still
  // has in its subtree_control, and the kernel may not re-enter <parent>
  // while <parent> has any controller enabled for its children.
  if (!enabled_in_instance_.empty())
    (void)write_control(fs, join(instance_dir_, "cgroup.subtree_control"), controller_list(enabled_in_instance_, '-'));
  Result<void> r;
  if (!enabled_in_parent_.empty())
    r = write_control(fs, join(parent_dir_, "cgroup.subtree_control"), controller_list(enabled_in_parent_, '-'));
  if (r && moved_self_) r = write_control(fs, join(parent_dir_, "cgroup.procs"), std::to_string(::getpid()));
  if (!r) {
    log::warn("cgroup v2: cannot restore {} ({}); {} stays until the next start of this instance",
              parent_dir_, r.error().message(), instance_dir_);
    return;
  }
  if (moved_self_) (void)remove_dir_retrying(fs, kernel_dir_);
}

V2Backend::~V2Backend() {
  if (auto stale = remove_stale(); stale && *stale > 0)
    log::warn("cgroup v2: removed {} agent cgroup(s) left under {}", *stale, instance_dir_);
  undo_delegation();
  auto r = remove_dir_retrying(*sh_->fs, instance_dir_);
  if (!r) log::warn("cgroup v2: cannot remove {}: {}", instance_dir_, r.error().message());
}

Result<std::unique_ptr<AgentCgroup>> V2Backend::create(std::string_view leaf, const CgroupLimits& limits,
                                                       const AgentCgroup* parent) {
  if (!valid_name(leaf) || leaf == kKernelLeaf || leaf == kSelfLeaf)
    return make_error(fmt::format("invalid agent cgroup name \"{}\"", leaf), EINVAL);
  const auto* above = dynamic_cast<const V2Agent*>(parent);
  if (parent && !above) return make_error("the parent cgroup is not a v2 agent cgroup", EINVAL);
  std::string dir = join(above ? above->path() : instance_dir_, leaf);
  if (sh_->live.contains(std::string(leaf)))
    return make_error(fmt::format("agent cgroup {} is in use", dir), EEXIST);
  AOS_TRY_VOID(make_cgroup_dir(*sh_->fs, dir));
  auto agent = std::make_unique<V2Agent>(sh_, std::string(leaf), dir);
  // On failure `agent` goes out of scope and removes the directory.
  if (auto r = agent->apply(limits); !r) return std::unexpected(r.error().wrap("cgroup " + dir));
  if (auto r = agent->make_self(); !r) return std::unexpected(r.error().wrap("cgroup " + dir));
  if (above) agent->nested_in(above->path());
  return std::unique_ptr<AgentCgroup>(std::move(agent));
}

json V2Backend::describe() const {
  json missing = json::object();
  for (const auto& [c, why] : sh_->missing) missing[c] = why;
  json delegation = {{"enabled_in_parent", enabled_in_parent_},
                     {"kernel_moved_to", moved_self_ ? json(kernel_dir_) : json(nullptr)}};
  return {{"version", "v2"},
          {"root", root_},
          {"parent", parent_dir_},
          {"instance", instance_dir_},
          {"instance_paths", json::array({instance_dir_})},
          {"adopted_existing", adopted_},
          {"controllers", {{"available", sh_->enabled}, {"missing", missing}}},
          {"delegation", delegation}};
}

Result<size_t> V2Backend::remove_stale() {
  auto names = sh_->fs->subdirs(instance_dir_);
  if (!names) return std::unexpected(names.error().wrap("cgroup v2 remove_stale"));
  size_t removed = 0;
  for (const auto& name : *names) {
    if (name == kKernelLeaf || sh_->live.contains(name)) continue;
    std::string dir = join(instance_dir_, name);
    (void)write_control(*sh_->fs, join(dir, "cgroup.kill"), "1");  // absent before 5.14
    if (auto r = remove_tree(*sh_->fs, dir); !r) return std::unexpected(r.error().wrap("remove stale cgroup"));
    ++removed;
  }
  return removed;
}

}  // namespace

Result<std::unique_ptr<CgroupBackend>> open_cgroup_v2(const CgroupOptions& opts) {
  std::string parent;
  if (opts.parent) {
    parent = *opts.parent;
  } else {
    auto text = opts.fs->read(opts.proc_self_cgroup);
    if (!text) return std::unexpected(text.error().wrap("cgroup v2: which cgroup is the kernel in?"));
    auto entries = AOS_TRY(parse_proc_cgroup(*text));
    for (const auto& e : entries)
      if (e.id == "0" && e.controllers.empty()) parent = e.path;
    if (parent.empty())
      return make_error(fmt::format("cgroup v2: no \"0::\" line in {}; pass --cgroup-parent", opts.proc_self_cgroup),
                        ENOENT);
  }
  std::string parent_dir = join(opts.root, parent);
  if (!opts.fs->exists(parent_dir))
    return make_error(fmt::format("cgroup parent {} does not exist: create it (and delegate memory, cpu "
                                  "and pids to it), or omit --cgroup-parent",
                                  parent_dir),
                      ENOENT);
  auto backend = std::make_unique<V2Backend>(opts, parent_dir);
  AOS_TRY_VOID(backend->setup());
  return std::unique_ptr<CgroupBackend>(std::move(backend));
}

}  // namespace agentos::runtime

#include "runtime/agent_manager.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>

#include "ipc/socket_server.hpp"
#include "runtime/interpreter.hpp"
#include "util/log.hpp"

namespace agentos::runtime {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kMaxEndedRecords = 1000;
// PATH inside agents, and where bare interpreter names are looked up.
constexpr const char* kAgentPath = "/usr/local/bin:/usr/bin:/bin";

std::string error_json(std::string_view message) { return json{{"error", message}}.dump(); }

int64_t ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

}  // namespace

const char* state_name(AgentState s) {
  switch (s) {
    case AgentState::kStarting: return "STARTING";
    case AgentState::kRunning: return "RUNNING";
    case AgentState::kPaused: return "PAUSED";
    case AgentState::kStopping: return "STOPPING";
    case AgentState::kRestarting: return "RESTARTING";
    case AgentState::kStopped: return "STOPPED";
    case AgentState::kFailed: return "FAILED";
  }
  return "UNKNOWN";
}

json Agent::to_json(Clock::time_point now) const {
  const bool running = alive();
  const char* status = running ? "running" : oom_killed ? "oom_killed" : signal ? "killed" : "exited";
  const auto& s = last_stats;
  json limits = {{"memory", opt(req.limits.memory)},     {"max_pids", opt(req.limits.max_pids)},
                 {"cpu_quota", opt(req.limits.cpu_quota)}, {"cpu_period", req.limits.cpu_period.value_or(100000)}};
  return {{"id", id},
          {"name", req.name},
          {"pid", pid},
          {"parent_id", parent_id},
          {"state", state_name(state)},
          {"status", status},
          {"running", running},
          {"exit_code", opt(exit_code)},
          {"signal", opt(signal)},
          {"oom_killed", oom_killed},
          {"throttled", s.nr_throttled > 0},
          {"throttled_ms", s.throttled_us / 1000},
          {"restarts", 0},
          {"uptime_ms", ms_between(started, running ? now : ended)},
          {"limits", limits},
          {"sandboxed", req.sandboxed},
          {"network", req.network},
          {"memory_bytes", s.memory_current},
          {"memory_peak_bytes", s.memory_peak},
          {"cpu_usage_ms", s.cpu_usage_us / 1000},
          {"pids", s.pids_current},
          {"script", script_path},
          {"python", interpreter.path}};
}

AgentManager::AgentManager(Reactor& reactor, const KernelConfig& cfg, ipc::SocketServer& server)
    : reactor_(reactor), cfg_(cfg), server_(server) {}

AgentManager::~AgentManager() {
  // Agents still alive die with their ChildProcess (SIGKILL + reap) and
  // their cgroups are removed before the backend goes.
  for (auto& [id, a] : agents_) {
    if (a->cgroup) (void)a->cgroup->kill_all();
    a->exit_watch.reset();
    a->exec_watch.reset();
    a->child.reset();
    a->cgroup.reset();
    server_.remove_listener(id);
  }
  agents_.clear();
}

Result<std::unique_ptr<AgentManager>> AgentManager::create(Reactor& reactor, const KernelConfig& cfg,
                                                           ipc::SocketServer& server) {
  std::unique_ptr<AgentManager> m(new AgentManager(reactor, cfg, server));
  CgroupOptions opts;
  opts.instance = cfg.instance;
  if (!cfg.cgroup_parent.empty()) opts.parent = cfg.cgroup_parent;
  auto cg = open_cgroups(opts);
  if (cg) {
    m->cgroups_ = std::move(*cg);
    if (auto n = m->cgroups_->remove_stale(); n && *n > 0) {
      log::info("removed {} cgroup(s) left by a previous run of {}", *n, cfg.instance);
    }
  } else {
    m->cgroup_error_ = cg.error().message();
    log::warn("cgroups unavailable, agent limits will NOT be enforced: {}", m->cgroup_error_);
  }
  std::error_code ec;
  fs::create_directories(cfg.runtime_dir + "/agents", ec);
  if (ec) return make_error("create " + cfg.runtime_dir + "/agents", ec.value());
  fs::create_directories(cfg.state_dir + "/logs", ec);
  if (ec) return make_error("create " + cfg.state_dir + "/logs", ec.value());
  return m;
}

json AgentManager::describe() const {
  if (cgroups_) return cgroups_->describe();
  return {{"available", false}, {"error", cgroup_error_}};
}

size_t AgentManager::alive_count() const {
  size_t n = 0;
  for (const auto& [id, a] : agents_) n += a->alive();
  return n;
}

std::string AgentManager::socket_path(const Agent& a) const {
  return fmt::format("{}/agents/{}.sock", cfg_.runtime_dir, a.id);
}

std::optional<uid_t> AgentManager::sandbox_uid(const Agent& a) const {
  if (::geteuid() != 0 || !a.req.sandboxed || !cfg_.enable_sandboxing) return std::nullopt;
  return cfg_.uid_base + a.id % cfg_.uid_count;
}

bool AgentManager::name_in_use(const std::string& name) const {
  for (const auto& [id, a] : agents_) {
    if (a->alive() && a->req.name == name) return true;
  }
  return false;
}

bool AgentManager::visible_to(const Agent& a, const ipc::Caller& caller) const {
  if (caller.agent_id == 0) return true;
  // Walk up the parent chain: an agent sees only its own descendants.
  for (uint32_t p = a.parent_id; p != 0;) {
    if (p == caller.agent_id) return true;
    auto it = agents_.find(p);
    if (it == agents_.end()) return false;
    p = it->second->parent_id;
  }
  return false;
}

Result<std::string> AgentManager::resolve_script(const std::string& script, const ipc::Caller& caller) const {
  fs::path p(script);
  if (p.is_relative()) {
    // Relative to the operator's working directory, as a shell would; the
    // peer's cwd is known through SO_PEERCRED's pid.
    std::error_code ec;
    fs::path cwd = caller.agent_id == 0 && caller.cred.pid > 0
                       ? fs::read_symlink(fmt::format("/proc/{}/cwd", caller.cred.pid), ec)
                       : fs::current_path(ec);
    if (ec) cwd = fs::current_path();
    p = cwd / p;
  }
  std::error_code ec;
  fs::path canon = fs::canonical(p, ec);
  if (ec) return make_error(fmt::format("invalid field 'script': {}: {}", p.string(), ec.message()), ec.value());
  struct stat st;
  if (::stat(canon.c_str(), &st) < 0) return sys_error("invalid field 'script': " + canon.string());
  if (!S_ISREG(st.st_mode)) return make_error("invalid field 'script': " + canon.string() + " is not a regular file", EINVAL);
  if (::access(canon.c_str(), R_OK) < 0) return sys_error("invalid field 'script': cannot read " + canon.string());
  return canon.string();
}

void AgentManager::spawn(const ipc::Caller& caller, const json& payload, ipc::Responder reply) {
  auto req = parse_spawn_request(payload);
  if (!req) return reply.reply(error_json(req.error().message()));
  if (caller.agent_id != 0) {
    auto it = agents_.find(caller.agent_id);
    if (it == agents_.end() || !it->second->req.allow_spawn) {
      return reply.reply(error_json("this agent may not spawn agents (spawn it with \"allow_spawn\": true)"));
    }
  }
  if (name_in_use(req->name)) {
    return reply.reply(error_json(fmt::format("an agent named '{}' is already running", req->name)));
  }
  auto script = resolve_script(req->script, caller);
  if (!script) return reply.reply(error_json(script.error().message()));
  auto interp = resolve_interpreter(req->python, kAgentPath);
  if (!interp) return reply.reply(error_json("invalid field 'python': " + interp.error().message()));

  auto agent = std::make_unique<Agent>();
  Agent& a = *agent;
  a.id = next_id_++;
  a.parent_id = caller.agent_id;
  a.req = std::move(*req);
  a.script_path = std::move(*script);
  a.interpreter = std::move(*interp);
  a.started = reactor_.now();
  agents_.emplace(a.id, std::move(agent));
  if (auto r = start_agent(a); !r) {
    log::warn("spawn {}: {}", a.req.name, r.error().message());
    release(a);
    agents_.erase(a.id);
    return reply.reply(error_json(fmt::format("spawn '{}': {}", payload.value("name", ""), r.error().message())));
  }
  a.spawn_reply.emplace(std::move(reply));
}

Result<void> AgentManager::start_agent(Agent& a) {
  auto& lim = a.req.limits;
  if (!lim.memory) lim.memory = cfg_.default_memory_bytes;
  if (!lim.max_pids) lim.max_pids = cfg_.default_max_pids;
  if (!lim.cpu_quota && cfg_.default_cpu_quota_us) lim.cpu_quota = cfg_.default_cpu_quota_us;
  json cgroup_report;
  if (cgroups_) {
    CgroupLimits cl{lim.memory, lim.max_pids, lim.cpu_quota, lim.cpu_period.value_or(100000)};
    a.cgroup = AOS_TRY(cgroups_->create(fmt::format("agent-{}", a.id), cl));
    cgroup_report = a.cgroup->enforced();
  } else {
    cgroup_report = {{"not_enforced", {{"all", "cgroups unavailable: " + cgroup_error_}}}};
  }

  ipc::ListenOptions lo;
  lo.owner = sandbox_uid(a);
  lo.group = lo.owner;
  AOS_TRY_VOID(server_.add_listener(socket_path(a), a.id, lo));

  const std::string log_path = fmt::format("{}/logs/{}-{}.log", cfg_.state_dir, a.req.name, a.id);
  UniqueFd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!log_fd) return sys_error("open " + log_path);

  SpawnSpec spec = AOS_TRY(build_spec(a, log_fd.get()));
  Spawned sp = AOS_TRY(runtime::spawn(std::move(spec)));
  a.pid = sp.child.pid();
  a.child.emplace(std::move(sp.child));
  a.exec_status = std::move(sp.exec_status);
  a.enforced = {{"sandbox", sp.report.applied}, {"cgroup", cgroup_report}};
  if (!sp.report.not_applied.empty()) a.enforced["not_applied"] = sp.report.not_applied;
  a.enforced["uid"] = lo.owner ? json(*lo.owner) : json(::geteuid());

  const uint32_t id = a.id;
  a.exec_watch = AOS_TRY(reactor_.watch(a.exec_status.get(), EPOLLIN, [this, id](uint32_t) { exec_status_ready(id); }));
  a.exit_watch = AOS_TRY(reactor_.watch(a.child->pidfd(), EPOLLIN, [this, id](uint32_t) { child_exited(id); }));
  log::info("agent {} '{}' started: pid {}, log {}", a.id, a.req.name, a.pid, log_path);
  return {};
}

Result<SpawnSpec> AgentManager::build_spec(Agent& a, int log_fd) {
  const bool sandboxed = a.req.sandboxed && cfg_.enable_sandboxing;
  const std::string host_sock = socket_path(a);
  // Inside the sandbox the agent's own socket appears at the operator
  // socket's path, so scripts that default to it just work.
  const std::string agent_sock = sandboxed ? cfg_.socket_path : host_sock;
  const Interpreter& interp = a.interpreter;

  SpawnSpec spec;
  spec.name = a.req.name;
  spec.exe = interp.path;
  spec.argv = {interp.path, a.script_path, agent_sock};
  spec.argv.insert(spec.argv.end(), a.req.args.begin(), a.req.args.end());
  std::map<std::string, std::string> env = {
      {"PATH", kAgentPath}, {"HOME", "/tmp"}, {"LANG", "C.UTF-8"}};
  if (!cfg_.sdk_dir.empty()) env["PYTHONPATH"] = cfg_.sdk_dir;
  for (const auto& [k, v] : a.req.env) env[k] = v;
  env["AGENTOS_SOCKET"] = agent_sock;
  env["AGENTOS_AGENT_ID"] = std::to_string(a.id);
  env["AGENTOS_AGENT_NAME"] = a.req.name;
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);

  spec.sandboxed = sandboxed;
  spec.network = a.req.network;
  spec.ro_paths = interp.ro_dirs;
  spec.ro_paths.push_back(fs::path(a.script_path).parent_path().string());
  if (!cfg_.sdk_dir.empty()) spec.ro_paths.push_back(cfg_.sdk_dir);
  spec.socket_host_path = host_sock;
  spec.socket_sandbox_path = cfg_.socket_path;
  spec.uid = sandbox_uid(a);
  spec.gid = spec.uid;
  spec.stdout_fd = log_fd;
  spec.stderr_fd = log_fd;
  if (a.cgroup) {
    spec.cgroup_fd = a.cgroup->clone_into_fd();
    if (!spec.cgroup_fd) {
      AgentCgroup* cg = a.cgroup.get();
      spec.before_run = [cg](pid_t pid) { return cg->attach(pid); };
    }
  }
  return spec;
}

void AgentManager::exec_status_ready(uint32_t id) {
  auto it = agents_.find(id);
  if (it == agents_.end()) return;
  Agent& a = *it->second;
  auto r = read_exec_status(a.exec_status.get());
  if (!r && (r.error().code == EAGAIN || r.error().code == EWOULDBLOCK)) return;
  a.exec_watch.reset();
  a.exec_status.reset();
  finish_spawn(a, std::move(r));
}

void AgentManager::finish_spawn(Agent& a, Result<void> exec) {
  if (!a.spawn_reply) return;
  ipc::Responder reply = std::move(*a.spawn_reply);
  a.spawn_reply.reset();
  if (!exec) {
    log::warn("agent {} '{}' failed to start: {}", a.id, a.req.name, exec.error().message());
    a.state = AgentState::kFailed;
    reply.reply(error_json(fmt::format("spawn '{}': {}", a.req.name, exec.error().message())));
    a.spawn_failed = true;  // the record is dropped when the child is reaped
    force_kill(a);
    return;
  }
  if (a.state == AgentState::kStarting) a.state = AgentState::kRunning;
  if (on_start_) on_start_(a.id, a.req.limits);
  json r = {{"id", a.id}, {"name", a.req.name}, {"pid", a.pid}, {"status", "running"},
            {"state", state_name(a.state)}, {"sandboxed", a.req.sandboxed && cfg_.enable_sandboxing},
            {"network", a.req.network}, {"python", a.interpreter.path}, {"script", a.script_path},
            {"limits", a.to_json(reactor_.now())["limits"]}, {"enforced", a.enforced}};
  reply.reply(r.dump());
}

void AgentManager::child_exited(uint32_t id) {
  auto it = agents_.find(id);
  if (it == agents_.end() || !it->second->child) return;
  Agent& a = *it->second;
  auto reaped = a.child->try_reap();
  if (!reaped) {
    log::warn("agent {}: reap: {}", id, reaped.error().message());
    return;
  }
  if (!*reaped) return;  // not yet: spurious wake-up
  const siginfo_t& si = **reaped;
  if (si.si_code == CLD_EXITED) {
    a.exit_code = si.si_status;
  } else {
    a.signal = si.si_status;
  }
  a.ended = reactor_.now();
  if (a.cgroup) {
    if (auto st = a.cgroup->stats()) a.last_stats = *st;
    a.oom_killed = a.last_stats.oom_kills > 0;
  }
  // Exec status and exit can arrive in one epoll batch; settle SPAWN first.
  if (a.exec_status) exec_status_ready(id);
  a.state = (a.kill_requested || a.exit_code == 0) && !a.oom_killed && !a.spawn_failed
                ? AgentState::kStopped
                : AgentState::kFailed;
  log::info("agent {} '{}' ended: {}", a.id, a.req.name,
            a.oom_killed ? "OOM-killed"
            : a.signal   ? fmt::format("killed by signal {}", *a.signal)
                         : fmt::format("exit code {}", a.exit_code.value_or(-1)));
  release(a);
  for (auto& r : a.kill_replies) r.reply(json{{"killed", true}}.dump());
  a.kill_replies.clear();
  if (on_exit_) on_exit_(id);
  if (a.spawn_failed) agents_.erase(id);
  prune_ended();
  if (all_stopped_ && alive_count() == 0) std::exchange(all_stopped_, nullptr)();
}

void AgentManager::release(Agent& a) {
  a.kill_timer.cancel();
  a.exec_watch.reset();
  a.exit_watch.reset();
  a.exec_status.reset();
  a.child.reset();   // SIGKILLs and reaps if still alive
  a.cgroup.reset();  // kills leftovers, removes the directories
  server_.remove_listener(a.id);
  if (a.spawn_reply) finish_spawn(a, make_error("the agent ended before it started", ECHILD));
}

void AgentManager::terminate(Agent& a, std::chrono::milliseconds grace) {
  if (!a.alive()) return;
  a.kill_requested = true;
  if (a.state != AgentState::kStopping) {
    a.state = AgentState::kStopping;
    // The init forwards SIGTERM to the agent; unsandboxed agents get it
    // directly. Whatever is left after the grace period is SIGKILLed.
    if (auto r = a.child->signal(SIGTERM); !r) log::warn("agent {}: SIGTERM: {}", a.id, r.error().message());
    const uint32_t id = a.id;
    a.kill_timer = reactor_.after(grace, [this, id] {
      auto it = agents_.find(id);
      if (it != agents_.end()) force_kill(*it->second);
    });
  }
}

void AgentManager::force_kill(Agent& a) {
  if (!a.alive()) return;
  if (a.cgroup) {
    if (auto r = a.cgroup->kill_all(); !r) log::warn("agent {}: cgroup kill: {}", a.id, r.error().message());
  }
  if (auto r = a.child->signal(SIGKILL); !r) log::warn("agent {}: SIGKILL: {}", a.id, r.error().message());
}

Agent* AgentManager::find(const json& sel, const ipc::Caller& caller, std::string& error) {
  if (!sel.is_object()) {
    error = "expected a JSON object with \"name\" or \"id\"";
    return nullptr;
  }
  Agent* best = nullptr;
  if (sel.contains("id")) {
    if (!sel["id"].is_number_unsigned()) {
      error = "invalid field 'id': expected a positive integer";
      return nullptr;
    }
    auto it = agents_.find(sel["id"].get<uint32_t>());
    if (it != agents_.end() && visible_to(*it->second, caller)) best = it->second.get();
    if (!best) error = fmt::format("no agent with id {}", sel["id"].get<uint64_t>());
    return best;
  }
  if (!sel.contains("name") || !sel["name"].is_string()) {
    error = "expected \"name\" (string) or \"id\" (integer)";
    return nullptr;
  }
  const auto name = sel["name"].get<std::string>();
  // Prefer the live agent of that name, else the most recent record.
  for (auto& [id, a] : agents_) {
    if (a->req.name != name || !visible_to(*a, caller)) continue;
    if (!best || a->alive() || !best->alive()) best = a.get();
    if (best->alive()) break;
  }
  if (!best) error = fmt::format("no agent named '{}'", name);
  return best;
}

void AgentManager::kill(const ipc::Caller& caller, const json& payload, ipc::Responder reply) {
  std::string error;
  Agent* a = find(payload, caller, error);
  if (!a) return reply.reply(json{{"killed", false}, {"error", error}}.dump());
  if (!a->alive()) {
    return reply.reply(json{{"killed", false},
                            {"error", fmt::format("agent '{}' is not running ({})", a->req.name,
                                                  a->to_json(reactor_.now())["status"].get<std::string>())}}
                           .dump());
  }
  std::chrono::milliseconds grace(cfg_.kill_grace_ms);
  if (payload.contains("timeout_ms")) {
    if (!payload["timeout_ms"].is_number_unsigned() || payload["timeout_ms"].get<uint64_t>() > 3'600'000) {
      return reply.reply(json{{"killed", false}, {"error", "invalid field 'timeout_ms': expected 0..3600000"}}.dump());
    }
    grace = std::chrono::milliseconds(payload["timeout_ms"].get<uint64_t>());
  }
  a->kill_replies.push_back(std::move(reply));
  if (grace.count() == 0) {
    a->kill_requested = true;
    a->state = AgentState::kStopping;
    force_kill(*a);
  } else {
    terminate(*a, grace);
  }
}

json AgentManager::list(const ipc::Caller& caller, bool all) {
  const auto now = reactor_.now();
  json out = json::array();
  for (auto& [id, a] : agents_) {
    if (!visible_to(*a, caller) || (!all && !a->alive())) continue;
    if (a->alive() && a->cgroup) {
      if (auto st = a->cgroup->stats()) a->last_stats = *st;
    }
    out.push_back(a->to_json(now));
  }
  return out;
}

void AgentManager::stop_all(std::move_only_function<void()> done) {
  all_stopped_ = std::move(done);
  for (auto& [id, a] : agents_) terminate(*a, std::chrono::milliseconds(cfg_.kill_grace_ms));
  if (alive_count() == 0) std::exchange(all_stopped_, nullptr)();
}

void AgentManager::prune_ended() {
  size_t ended = 0;
  for (auto& [id, a] : agents_) ended += !a->alive();
  for (auto it = agents_.begin(); ended > kMaxEndedRecords && it != agents_.end();) {
    if (!it->second->alive()) {
      it = agents_.erase(it);
      --ended;
    } else {
      ++it;
    }
  }
}

}  // namespace agentos::runtime

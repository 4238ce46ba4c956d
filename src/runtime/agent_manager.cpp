#include "runtime/agent_manager.hpp"

#include <signal.h>
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

std::string describe_end(const Agent& a) {
  if (a.oom_killed) return "OOM-killed";
  if (a.signal) return fmt::format("killed by signal {}", *a.signal);
  return fmt::format("exit code {}", a.exit_code.value_or(-1));
}

}  // namespace

AgentManager::AgentManager(Reactor& reactor, const KernelConfig& cfg, ipc::SocketServer& server)
    : reactor_(reactor), cfg_(cfg), server_(server), polls_(reactor) {}

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
  ::rmdir((cfg_.runtime_dir + "/agents").c_str());  // empty now; the kernel removes its parent
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
  // Sockets of agents of a crashed run of this instance: the directory is
  // this instance's alone and its lock is held, so anything here is stale.
  for (const auto& e : fs::directory_iterator(cfg.runtime_dir + "/agents", ec)) {
    if (e.path().extension() == ".sock") fs::remove(e.path(), ec);
  }
  fs::create_directories(cfg.state_dir + "/logs", ec);
  if (ec) return make_error("create " + cfg.state_dir + "/logs", ec.value());
  m->sample_all();
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

void AgentManager::record(const Agent& a, std::string type, json detail) {
  events_.record(a.id, a.req.name, std::move(type), std::move(detail), reactor_.now(),
                 std::chrono::system_clock::now());
  polls_.poke(ipc::poll_topic(ipc::PollKind::kEvents));
}

void AgentManager::note(std::string type, json detail) {
  events_.record(0, "", std::move(type), std::move(detail), reactor_.now(), std::chrono::system_clock::now());
  polls_.poke(ipc::poll_topic(ipc::PollKind::kEvents));
}

void AgentManager::spawn(const ipc::Caller& caller, const json& payload, SpawnDone done, bool declared) {
  auto req = parse_spawn_request(payload);
  if (!req) return done(error_json(req.error().message()));
  if (caller.agent_id != 0) {
    auto it = agents_.find(caller.agent_id);
    if (it == agents_.end() || !it->second->req.allow_spawn) {
      return done(error_json("this agent may not spawn agents (spawn it with \"allow_spawn\": true)"));
    }
    // Each level nests a cgroup inside its parent's; keep the tree shallow.
    if (const int depth = nesting_of(*it->second); depth + 1 >= kMaxNesting) {
      return done(error_json(fmt::format("agents nest at most {} deep: this agent is {} levels below one an "
                                         "operator spawned, so it may not spawn",
                                         kMaxNesting, depth)));
    }
  }
  if (name_in_use(req->name)) {
    return done(error_json(fmt::format("an agent named '{}' is already running", req->name)));
  }
  auto script = resolve_script(req->script, caller);
  if (!script) return done(error_json(script.error().message()));
  auto interp = resolve_interpreter(req->python, kAgentPath);
  if (!interp) return done(error_json("invalid field 'python': " + interp.error().message()));

  auto agent = std::make_unique<Agent>();
  Agent& a = *agent;
  a.id = next_id_++;
  a.parent_id = caller.agent_id;
  a.declared = declared;
  a.spec = payload;
  a.req = std::move(*req);
  a.restarts = RestartTracker(a.req.restart);
  a.script_path = std::move(*script);
  a.interpreter = std::move(*interp);
  agents_.emplace(a.id, std::move(agent));
  if (auto r = start_agent(a); !r) {
    log::warn("spawn {}: {}", a.req.name, r.error().message());
    release(a);
    agents_.erase(a.id);
    return done(error_json(fmt::format("spawn '{}': {}", payload.value("name", ""), r.error().message())));
  }
  if (declared) declared_order_.push_back(a.id);
  a.spawn_done.emplace(std::move(done));
}

Result<void> AgentManager::start_agent(Agent& a) {
  ++a.runs;
  a.state = AgentState::kStarting;
  a.started = reactor_.now();
  a.exit_code.reset();
  a.signal.reset();
  a.oom_killed = a.kill_requested = a.exec_failed = false;
  a.last_stats = {};
  a.prev_cpu_us = 0;
  a.prev_sample = {};
  a.cpu_percent = 0;
  a.oom_kills_seen = 0;

  auto& lim = a.req.limits;
  if (!lim.memory) lim.memory = cfg_.default_memory_bytes;
  if (!lim.max_pids) lim.max_pids = cfg_.default_max_pids;
  if (!lim.cpu_quota && cfg_.default_cpu_quota_us) lim.cpu_quota = cfg_.default_cpu_quota_us;
  json cgroup_report;
  if (cgroups_) {
    CgroupLimits cl{lim.memory, lim.max_pids, lim.cpu_quota, lim.cpu_period.value_or(100000)};
    // An agent's agents live inside its cgroup, bound by its limits too.
    const AgentCgroup* above = nullptr;
    if (a.parent_id != 0) {
      auto it = agents_.find(a.parent_id);
      if (it == agents_.end() || !it->second->alive())
        return make_error(fmt::format("agent {}, which spawned it, is not running", a.parent_id), ESRCH);
      above = it->second->cgroup.get();
    }
    a.cgroup = AOS_TRY(cgroups_->create(fmt::format("agent-{}", a.id), cl, above));
    cgroup_report = a.cgroup->enforced();
  } else {
    cgroup_report = {{"not_enforced", {{"all", "cgroups unavailable: " + cgroup_error_}}}};
  }

  ipc::ListenOptions lo;
  lo.owner = sandbox_uid(a);
  lo.group = lo.owner;
  AOS_TRY_VOID(server_.add_listener(socket_path(a), a.id, lo));

  AOS_TRY_VOID(open_log(a));
  // The write ends close when this scope ends: from then on only the child
  // holds them, so EOF on the pipes means the whole agent is gone.
  StdioPipes stdio = AOS_TRY(a.log->attach());
  SpawnSpec spec = AOS_TRY(build_spec(a, stdio));
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
  log::info("agent {} '{}' started (run {}): pid {}, log {}", a.id, a.req.name, a.runs, a.pid, a.log->path());
  return {};
}

Result<void> AgentManager::open_log(Agent& a) {
  if (a.log) return {};
  LogOptions opts;
  opts.max_file_bytes = cfg_.log_max_bytes;
  opts.max_files = cfg_.log_max_files;
  a.log = AOS_TRY(AgentLog::open(reactor_, fmt::format("{}/logs/{}-{}.log", cfg_.state_dir, a.req.name, a.id), opts));
  return {};
}

Result<SpawnSpec> AgentManager::build_spec(Agent& a, const StdioPipes& stdio) {
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
  spec.stdout_fd = stdio.out.get();
  spec.stderr_fd = stdio.err.get();
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
  if (!exec) {
    log::warn("agent {} '{}' failed to start: {}", a.id, a.req.name, exec.error().message());
    a.exec_failed = true;
    record(a, "spawn_failed", {{"error", exec.error().message()}, {"run", a.runs}});
    if (a.spawn_done) {
      std::exchange(a.spawn_done, std::nullopt).value()(
          error_json(fmt::format("spawn '{}': {}", a.req.name, exec.error().message())));
    }
    force_kill(a);
    return;
  }
  if (a.state == AgentState::kStarting) a.state = AgentState::kRunning;
  (void)a.sample(reactor_.now());  // LIST shows usage from samples: have one from the start
  if (on_start_) on_start_(a.id, a.req.limits);
  record(a, a.runs == 1 ? "spawned" : "restarted",
         {{"pid", a.pid}, {"run", a.runs}, {"restarts", a.restarts.restarts()}});
  if (!a.spawn_done) return;
  json r = {{"id", a.id}, {"name", a.req.name}, {"pid", a.pid}, {"status", "running"},
            {"state", state_name(a.state)}, {"sandboxed", a.req.sandboxed && cfg_.enable_sandboxing},
            {"network", a.req.network}, {"python", a.interpreter.path}, {"script", a.script_path},
            {"restart", restart_mode_name(a.req.restart.mode)}, {"limits", a.limits_json()},
            {"enforced", a.enforced}};
  std::exchange(a.spawn_done, std::nullopt).value()(r.dump());
  a.enforced = nullptr;  // reported; not worth ~15 KiB in every record
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
    const uint64_t fresh_ooms = a.sample(a.ended);
    a.oom_killed = a.last_stats.oom_kills > 0;
    if (fresh_ooms) record(a, "oom_killed", {{"oom_kills", a.last_stats.oom_kills}, {"ended", true}});
  }
  // Exec status and exit can arrive in one epoll batch; settle SPAWN first.
  if (a.exec_status) exec_status_ready(id);
  log::info("agent {} '{}' ended: {}", a.id, a.req.name, describe_end(a));
  release(a);
  if (a.log) a.log->drain();  // after release: nothing of the agent is left to write
  record(a, "exited", {{"status", a.status()}, {"exit_code", a.exit_code ? json(*a.exit_code) : json(nullptr)},
                       {"signal", a.signal ? json(*a.signal) : json(nullptr)}, {"oom_killed", a.oom_killed},
                       {"requested", a.kill_requested}, {"run", a.runs}});
  for (auto& r : a.kill_replies) r.reply(json{{"killed", true}}.dump());
  a.kill_replies.clear();
  if (a.exec_failed && a.runs == 1) {
    // The SPAWN reply said why; no record of an agent that never ran.
    if (on_exit_) on_exit_(id, true);
    agents_.erase(id);
  } else {
    after_run(a, a.exit_code != 0 || a.oom_killed || a.exec_failed);
  }
  prune_ended();
  if (all_stopped_ && alive_count() == 0) {
    polls_.flush_all();
    std::exchange(all_stopped_, nullptr)();
  } else if (stopping_all_) {
    stop_next_declared();
  }
}

void AgentManager::after_run(Agent& a, bool failed) {
  if (a.kill_requested || stopping_all_) {
    return ended_for_good(a, failed && !a.kill_requested ? AgentState::kFailed : AgentState::kStopped);
  }
  const auto d = a.restarts.on_exit(failed, reactor_.now(), a.ended - a.started);
  if (d.gave_up) {
    a.end_reason = d.reason;
    log::warn("agent {} '{}': not restarted: {}", a.id, a.req.name, d.reason);
    record(a, "gave_up", {{"reason", d.reason}, {"restarts", a.restarts.restarts()}});
  }
  if (!d.restart) return ended_for_good(a, failed ? AgentState::kFailed : AgentState::kStopped);
  a.state = AgentState::kRestarting;
  record(a, "restarting", {{"delay_ms", d.delay.count()}, {"attempt", d.attempt}});
  log::info("agent {} '{}': restarting in {} ms (attempt {})", a.id, a.req.name, d.delay.count(), d.attempt);
  if (on_exit_) on_exit_(a.id, false);
  const uint32_t id = a.id;
  a.restart_timer = reactor_.after(d.delay, [this, id] { restart_agent(id); });
}

void AgentManager::restart_agent(uint32_t id) {
  auto it = agents_.find(id);
  if (it == agents_.end() || it->second->state != AgentState::kRestarting) return;
  Agent& a = *it->second;
  if (auto r = start_agent(a); !r) {
    log::warn("agent {} '{}': restart failed: {}", a.id, a.req.name, r.error().message());
    record(a, "spawn_failed", {{"error", r.error().message()}, {"run", a.runs}});
    release(a);
    a.ended = reactor_.now();
    a.exec_failed = true;
    after_run(a, true);
  }
}

void AgentManager::ended_for_good(Agent& a, AgentState state) {
  a.state = state;
  a.restart_timer.cancel();
  if (a.log) a.log->notify_waiters();  // LOGS followers learn that it ended
  if (on_exit_) on_exit_(a.id, true);
  polls_.poke(ipc::poll_topic(ipc::PollKind::kAgentEnd, a.id));
  for (auto [b, e] = on_gone_.equal_range(a.id); b != e;) {
    auto cb = std::move(b->second);
    b = on_gone_.erase(b);
    cb();
  }
}

void AgentManager::release(Agent& a) {
  a.kill_timer.cancel();
  a.exec_watch.reset();
  a.exit_watch.reset();
  a.exec_status.reset();
  a.child.reset();   // SIGKILLs and reaps if still alive
  end_descendants(a);
  a.cgroup.reset();  // kills leftovers, removes the directories (nested ones too)
  server_.remove_listener(a.id);
  if (a.spawn_done) finish_spawn(a, make_error("the agent ended before it started", ECHILD));
}

void AgentManager::end_descendants(const Agent& a) {
  std::vector<uint32_t> ids;
  for (const auto& [id, d] : agents_)
    if (d->active() && descends_from(*d, a.id)) ids.push_back(id);
  for (uint32_t id : ids) {
    auto it = agents_.find(id);
    if (it == agents_.end()) continue;
    Agent& d = *it->second;
    d.end_reason = fmt::format("agent {} '{}' ended, and the agents it spawned end with it", a.id, a.req.name);
    log::info("agent {} '{}': stopped: {}", d.id, d.req.name, d.end_reason);
    terminate(d, std::chrono::milliseconds(0));
  }
}

void AgentManager::terminate(Agent& a, std::chrono::milliseconds grace) {
  if (a.state == AgentState::kRestarting) {
    a.kill_requested = true;
    return ended_for_good(a, AgentState::kStopped);
  }
  if (!a.alive()) return;
  a.kill_requested = true;
  if (a.state == AgentState::kStopping) return;
  if (a.state == AgentState::kPaused && a.cgroup) (void)a.cgroup->freeze(false);  // so it can handle SIGTERM
  a.state = AgentState::kStopping;
  if (grace.count() == 0) return force_kill(a);
  // The init forwards SIGTERM to the agent; unsandboxed agents get it
  // directly. Whatever is left after the grace period is SIGKILLed.
  if (auto r = a.child->signal(SIGTERM); !r) log::warn("agent {}: SIGTERM: {}", a.id, r.error().message());
  const uint32_t id = a.id;
  a.kill_timer = reactor_.after(grace, [this, id] {
    auto it = agents_.find(id);
    if (it != agents_.end()) force_kill(*it->second);
  });
}

void AgentManager::force_kill(Agent& a) {
  if (!a.alive()) return;
  if (a.cgroup) {
    if (auto r = a.cgroup->kill_all(); !r) log::warn("agent {}: cgroup kill: {}", a.id, r.error().message());
  }
  if (auto r = a.child->signal(SIGKILL); !r) log::warn("agent {}: SIGKILL: {}", a.id, r.error().message());
}

void AgentManager::kill(const ipc::Caller& caller, const json& payload, ipc::Responder reply) {
  std::string error;
  Agent* a = find(payload, caller, error);
  if (!a) return reply.reply(json{{"killed", false}, {"error", error}}.dump());
  if (!a->active()) {
    return reply.reply(
        json{{"killed", false}, {"error", fmt::format("agent '{}' is not running ({})", a->req.name, a->status())}}
            .dump());
  }
  std::chrono::milliseconds grace(cfg_.kill_grace_ms);
  if (payload.contains("timeout_ms")) {
    if (!payload["timeout_ms"].is_number_unsigned() || payload["timeout_ms"].get<uint64_t>() > 3'600'000) {
      return reply.reply(json{{"killed", false}, {"error", "invalid field 'timeout_ms': expected 0..3600000"}}.dump());
    }
    grace = std::chrono::milliseconds(payload["timeout_ms"].get<uint64_t>());
  }
  record(*a, "killed", {{"by", caller.agent_id == 0 ? "operator" : "agent"}, {"caller_id", caller.agent_id}});
  if (!a->alive()) {  // waiting to restart: it just stays down
    terminate(*a, grace);
    return reply.reply(json{{"killed", true}}.dump());
  }
  a->kill_replies.push_back(std::move(reply));
  terminate(*a, grace);
}

void AgentManager::stop(const std::string& name, std::move_only_function<void()> done) {
  for (auto& [id, a] : agents_) {
    if (a->req.name != name || !a->active()) continue;
    if (a->alive()) {
      on_gone_.emplace(id, std::move(done));
      terminate(*a, std::chrono::milliseconds(cfg_.kill_grace_ms));
    } else {
      terminate(*a, std::chrono::milliseconds(0));
      done();
    }
    return;
  }
  done();
}

void AgentManager::stop_all(std::move_only_function<void()> done) {
  all_stopped_ = std::move(done);
  stopping_all_ = true;
  const std::chrono::milliseconds grace(cfg_.kill_grace_ms);
  for (auto& [id, a] : agents_) {
    if (!a->declared || !a->alive()) terminate(*a, grace);
  }
  stop_next_declared();
  if (all_stopped_ && alive_count() == 0) {
    polls_.flush_all();
    std::exchange(all_stopped_, nullptr)();
  }
}

void AgentManager::stop_next_declared() {
  // Config-file agents stop one at a time, the last started first (like
  // systemd's reverse start order), so later agents may rely on earlier ones.
  while (!declared_order_.empty()) {
    auto it = agents_.find(declared_order_.back());
    if (it == agents_.end() || !it->second->alive()) {
      declared_order_.pop_back();
      continue;
    }
    terminate(*it->second, std::chrono::milliseconds(cfg_.kill_grace_ms));
    return;
  }
}

void AgentManager::prune_ended() {
  size_t ended = 0;
  for (auto& [id, a] : agents_) ended += !a->active();
  for (auto it = agents_.begin(); ended > kMaxEndedRecords && it != agents_.end();) {
    if (!it->second->active()) {
      it = agents_.erase(it);
      --ended;
    } else {
      ++it;
    }
  }
}

void AgentManager::sample_all() {
  const auto t0 = Clock::now();
  size_t n = 0;
  for (auto& [id, a] : agents_) {
    if (!a->alive() || !a->cgroup) continue;
    ++n;
    if (const uint64_t fresh = a->sample(t0)) {
      record(*a, "oom_killed", {{"oom_kills", a->last_stats.oom_kills}, {"ended", false}});
    }
  }
  sample_cost_us_ = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  sample_count_ = n;
  sample_timer_ = reactor_.after(std::chrono::milliseconds(std::max<uint32_t>(cfg_.stats_interval_ms, 50)),
                                 [this] { sample_all(); });
}

json AgentManager::sampler_cost() const {
  return {{"last_pass_us", sample_cost_us_}, {"agents", sample_count_}, {"interval_ms", cfg_.stats_interval_ms}};
}

}  // namespace agentos::runtime

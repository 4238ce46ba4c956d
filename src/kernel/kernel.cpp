#include "kernel/kernel.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kernel/config_file.hpp"
#include "util/log.hpp"

namespace agentos {
namespace {

using nlohmann::json;

constexpr auto kShutdownGrace = std::chrono::seconds(5);

std::string error_json(std::string_view message) { return json{{"error", message}}.dump(); }

Result<void> make_dir(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return make_error("create directory " + path, ec.value());
  if (::chmod(path.c_str(), mode) < 0) return sys_error("chmod " + path);
  return {};
}

// Raises the soft fd limit to the hard one: each connection, agent (pidfd,
// pipes, socket, cgroup files) and HTTP transfer is an fd, and the usual
// soft limit of 1024 is below --max-connections' default.
void raise_fd_limit(size_t max_connections) {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) < 0) return log::warn("cannot raise the fd limit: {}", std::strerror(errno));
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max_connections + 256) {
    log::warn("fd limit {} is low for --max-connections {}: raise the hard limit (LimitNOFILE=)", rl.rlim_cur,
              max_connections);
  }
}

}  // namespace

json kernel_features() {
  return json::array({"noop", "think", "spawn", "kill", "list", "logs", "stats", "pause", "resume", "wait",
                      "events", "hello", "exit", "sandbox", "cgroups", "llm-scheduler", "restart-policies"});
}

Result<json> parse_json_payload(std::string_view payload, const json& empty_value) {
  if (payload.find_first_not_of(" \t\r\n") == std::string_view::npos) return empty_value;
  try {
    return json::parse(payload);
  } catch (const json::parse_error& e) {
    return make_error(fmt::format("payload is not valid JSON (at byte {} of {})", e.byte, payload.size()));
  } catch (const json::exception&) {  // e.g. a number out of range: 1e999
    return make_error("payload is not valid JSON (a number is out of range)");
  }
}

Kernel::Kernel(KernelConfig cfg) : cfg_(std::move(cfg)) {}

Kernel::~Kernel() {
  agents_.reset();  // kills what is left, removes cgroups and agent sockets
  llm_.reset();
  server_.reset();  // removes the socket files before the lock goes
  if (!cfg_.runtime_dir.empty()) ::rmdir(cfg_.runtime_dir.c_str());
}

Result<std::unique_ptr<Kernel>> Kernel::create(KernelConfig cfg) {
  resolve_paths(cfg);
  std::unique_ptr<Kernel> k(new Kernel(std::move(cfg)));
  AOS_TRY_VOID(k->init());
  return k;
}

Result<void> Kernel::init() {
  started_ = Clock::now();
  raise_fd_limit(cfg_.max_connections);
  reactor_ = AOS_TRY(Reactor::create({SIGINT, SIGTERM, SIGHUP, SIGCHLD}));
  lock_.emplace(AOS_TRY(ipc::PathLock::acquire(cfg_.socket_path)));
  AOS_TRY_VOID(make_dir(cfg_.runtime_dir, 0755));
  AOS_TRY_VOID(make_dir(cfg_.state_dir, 0700));

  ipc::ServerLimits limits;
  limits.max_connections = cfg_.max_connections;
  limits.connection.max_output_bytes = cfg_.max_output_bytes;
  limits.connection.max_pending_requests = cfg_.max_pending_requests;
  server_ = std::make_unique<ipc::SocketServer>(
      *reactor_, limits,
      [this](const ipc::Caller& c, uint8_t op, std::string_view p, ipc::Responder r) {
        dispatch(c, op, p, std::move(r));
      });
  ipc::ListenOptions opts;
  opts.mode = static_cast<mode_t>(cfg_.socket_mode);
  AOS_TRY_VOID(server_->add_listener(cfg_.socket_path, 0, opts));
  server_->on_closed([this](const ipc::Caller& c) { connection_closed(c); });

  llm_ = AOS_TRY(llm::LlmService::create(*reactor_, cfg_.llm));
  agents_ = AOS_TRY(runtime::AgentManager::create(*reactor_, cfg_, *server_));
  agents_->on_agent_start([this](uint32_t id, const runtime::SpawnLimits& l) {
    llm::FlowLimits fl;
    fl.weight = l.llm_weight.value_or(1.0);
    fl.rpm = l.llm_rpm.value_or(0);
    fl.tpm = l.llm_tpm.value_or(0);
    fl.token_budget = l.llm_tokens.value_or(0);
    llm_->set_flow_limits(id, fl);
    ended_llm_stats_.erase(id);
  });
  agents_->on_agent_exit([this](uint32_t id, bool final) {
    // A run's requests went with its connections. A restart keeps the flow,
    // so accounting and the token budget span the agent's runs. When the
    // agent ends for good, keep its accounting for LIST {"all": true} and
    // let the scheduler forget the flow (bounded like the ended records).
    if (!final) return;
    ended_llm_stats_[id] = llm_->flow_stats(id);
    while (ended_llm_stats_.size() > 2000) ended_llm_stats_.erase(ended_llm_stats_.begin());
    llm_->cancel_flow(id);
  });

  register_syscalls();
  declared_ = cfg_.declared_agents;
  for (const auto& spec : declared_) spawn_declared(spec);
  reactor_->on_signal(SIGINT, [this](int s) { begin_shutdown(s); });
  reactor_->on_signal(SIGTERM, [this](int s) { begin_shutdown(s); });
  reactor_->on_signal(SIGHUP, [this](int) { reload_config(); });
  reactor_->on_signal(SIGCHLD, [](int) {});  // children are watched by pidfd
  return {};
}

void Kernel::register_syscalls() {
  auto set = [this](ipc::Op op, Handler h) { table_[static_cast<uint8_t>(op)] = h; };
  set(ipc::Op::kNoop, &Kernel::sys_noop);
  set(ipc::Op::kThink, &Kernel::sys_think);
  set(ipc::Op::kSpawn, &Kernel::sys_spawn);
  set(ipc::Op::kKill, &Kernel::sys_kill);
  set(ipc::Op::kList, &Kernel::sys_list);
  set(ipc::Op::kLogs, &Kernel::sys_logs);
  set(ipc::Op::kStats, &Kernel::sys_stats);
  set(ipc::Op::kPause, &Kernel::sys_pause);
  set(ipc::Op::kResume, &Kernel::sys_resume);
  set(ipc::Op::kWait, &Kernel::sys_wait);
  set(ipc::Op::kEvents, &Kernel::sys_events);
  set(ipc::Op::kHello, &Kernel::sys_hello);
  set(ipc::Op::kExit, &Kernel::sys_exit);
}

Result<void> Kernel::run() {
  log::info("agentos_kernel {} listening on {} (instance {}, state {}, runtime {})", AGENTOS_VERSION,
            cfg_.socket_path, cfg_.instance, cfg_.state_dir, cfg_.runtime_dir);
  log::info("llm: {}", cfg_.llm.describe().dump());
  return reactor_->run();
}

llm::FlowId Kernel::flow_of(const ipc::Caller& caller) {
  return caller.agent_id != 0 ? caller.agent_id : (llm::FlowId{1} << 40) + caller.connection_id;
}

void Kernel::connection_closed(const ipc::Caller& caller) {
  if (agents_) agents_->connection_closed(caller.connection_id);
  if (!llm_) return;
  llm_->cancel_connection(caller.connection_id);
  if (caller.agent_id == 0) llm_->cancel_flow(flow_of(caller));
}

void Kernel::begin_shutdown(int signo) {
  if (shutting_down_) {
    log::warn("second signal {}: stopping now", signo);
    reactor_->stop();
    return;
  }
  shutting_down_ = true;
  log::info("signal {}: shutting down", signo);
  // Agents get their grace period (SIGTERM, then SIGKILL), config-file
  // agents one after another; then queued replies get kShutdownGrace to
  // reach clients that read.
  const auto agent_grace =
      (std::chrono::milliseconds(cfg_.kill_grace_ms) + std::chrono::seconds(1)) * (declared_.size() + 1);
  shutdown_deadline_ = reactor_->after(agent_grace + kShutdownGrace, [this] { reactor_->stop(); });
  // Two things must finish: agents gone, and every connection flushed.
  auto pending = std::make_shared<int>(2);
  auto one_done = [this, pending] {
    if (--*pending == 0) reactor_->stop();
  };
  server_->shutdown(one_done);
  agents_->stop_all(one_done);
}

void Kernel::spawn_declared(const json& spec) {
  const std::string name = spec.value("name", "");
  agents_->spawn(ipc::Caller{}, spec,
                 [name](std::string reply) {
                   auto j = json::parse(reply, nullptr, false);
                   if (j.is_object() && j.contains("error")) {
                     log::error("config agent '{}' did not start: {}", name, j["error"].get<std::string>());
                   }
                 },
                 /*declared=*/true);
}

void Kernel::reload_config() {
  if (cfg_.config_path.empty()) return log::info("SIGHUP: no config file to reload (start with --config)");
  if (shutting_down_) return;
  auto reject = [this](const std::string& why) {
    log::error("SIGHUP: {}; keeping the running agents", why);
    agents_->note("config_rejected", {{"path", cfg_.config_path}, {"error", why}});
  };
  auto file = load_config_file(cfg_.config_path);
  if (!file) return reject(file.error().message());
  auto plan = plan_reload(declared_, file->agents);
  if (!plan) return reject(plan.error().message());
  // Only the agents are reloaded; [kernel] settings (socket, directories,
  // LLM provider) take effect on the next start, as with most daemons.
  for (const auto& name : plan->stop) agents_->stop(name, [] {});
  for (const auto& spec : plan->restart) {
    agents_->stop(spec["name"].get<std::string>(), [this, spec] { spawn_declared(spec); });
  }
  for (const auto& spec : plan->start) spawn_declared(spec);
  declared_ = std::move(file->agents);
  log::info("SIGHUP: reloaded {}: {} started, {} stopped, {} restarted, {} unchanged", cfg_.config_path,
            plan->start.size(), plan->stop.size(), plan->restart.size(), plan->keep.size());
  agents_->note("config_reloaded", {{"path", cfg_.config_path},
                                    {"started", plan->start.size()},
                                    {"stopped", plan->stop.size()},
                                    {"restarted", plan->restart.size()},
                                    {"kept", plan->keep.size()}});
}

void Kernel::dispatch(const ipc::Caller& caller, uint8_t opcode, std::string_view payload,
                      ipc::Responder r) {
  Handler h = table_[opcode];
  if (!h) {
    r.reply(error_json(fmt::format("unknown opcode 0x{:02x}", opcode)));
    return;
  }
  // Handlers turn bad input into {"error"} themselves; this catch is the
  // last line so that no exception escapes into the event loop.
  try {
    (this->*h)(caller, payload, std::move(r));
  } catch (const std::exception& e) {
    log::error("syscall 0x{:02x}: {}", opcode, e.what());
  }
}

void Kernel::sys_noop(const ipc::Caller&, std::string_view payload, ipc::Responder r) {
  r.reply(payload);
}

void Kernel::sys_think(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  llm_->submit(flow_of(caller), caller.connection_id, payload,
               [r = std::move(r)](std::string reply) mutable { r.reply(reply); });
}

void Kernel::sys_spawn(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  if (shutting_down_) return r.reply(error_json("the kernel is shutting down"));
  auto j = parse_json_payload(payload, json::object());
  if (!j) return r.reply(error_json("SPAWN: " + j.error().message()));
  agents_->spawn(caller, *j, [r = std::move(r)](std::string reply) mutable { r.reply(reply); });
}

void Kernel::sys_kill(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = parse_json_payload(payload, json::object());
  if (!j) return r.reply(json{{"killed", false}, {"error", "KILL: " + j.error().message()}}.dump());
  agents_->kill(caller, *j, std::move(r));
}

void Kernel::sys_list(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = parse_json_payload(payload, json::object());
  if (!j || !j->is_object()) return r.reply(error_json("LIST expects nothing or a JSON object like {\"all\": true}"));
  bool all = false;
  if (j->contains("all")) {
    if (!(*j)["all"].is_boolean()) return r.reply(error_json("invalid field 'all': expected true or false"));
    all = (*j)["all"].get<bool>();
  }
  json agents = agents_->list(caller, all);
  for (auto& a : agents) a["llm"] = llm_stats_of(a["id"].get<uint32_t>());
  r.reply(agents.dump());
}

json Kernel::llm_stats_of(uint32_t agent_id) const {
  auto ended = ended_llm_stats_.find(agent_id);
  return ended != ended_llm_stats_.end() ? ended->second : llm_->flow_stats(agent_id);
}

namespace {

// Resident set size of this process, from /proc/self/statm (in pages).
uint64_t self_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "re");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

size_t self_fd_count() {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != decltype(it){};
       it.increment(ec)) {
    ++n;
  }
  return n > 0 ? n - 1 : 0;  // minus the directory iterator's own fd
}

}  // namespace

json Kernel::kernel_stats() const {
  return {{"pid", ::getpid()},
          {"version", AGENTOS_VERSION},
          {"uptime_ms", std::chrono::duration_cast<std::chrono::milliseconds>(reactor_->now() - started_).count()},
          {"rss_bytes", self_rss_bytes()},
          {"fds", self_fd_count()},
          {"connections", server_->connection_count()},
          {"agents_running", agents_->alive_count()},
          {"agents_total", agents_->record_count()},
          {"sampler", agents_->sampler_cost()},
          {"llm", llm_->stats()}};
}

// A JSON-object payload (empty = {}); otherwise answers the error and
// returns nullopt.
std::optional<json> object_payload(std::string_view payload, const char* op, ipc::Responder& r) {
  auto j = parse_json_payload(payload, json::object());
  if (j && j->is_object()) return std::move(*j);
  r.reply(error_json(fmt::format("{} expects nothing or a JSON object", op)));
  return std::nullopt;
}

void Kernel::sys_logs(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = object_payload(payload, "LOGS", r);
  if (!j) return;
  agents_->logs(caller, *j, std::move(r));
}

void Kernel::sys_stats(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = object_payload(payload, "STATS", r);
  if (!j) return;
  json agents = agents_->stats(caller, *j);
  if (agents.is_object()) return r.reply(agents.dump());  // {"error": ...}
  for (auto& a : agents) a["llm"] = llm_stats_of(a["id"].get<uint32_t>());
  json out = {{"agents", std::move(agents)}, {"interval_ms", cfg_.stats_interval_ms}};
  if (caller.agent_id == 0) out["kernel"] = kernel_stats();
  r.reply(out.dump());
}

void Kernel::sys_pause(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = object_payload(payload, "PAUSE", r);
  if (!j) return;
  agents_->pause(caller, *j, std::move(r), true);
}

void Kernel::sys_resume(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = object_payload(payload, "RESUME", r);
  if (!j) return;
  agents_->pause(caller, *j, std::move(r), false);
}

void Kernel::sys_wait(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = object_payload(payload, "WAIT", r);
  if (!j) return;
  agents_->wait(caller, *j, std::move(r));
}

void Kernel::sys_events(const ipc::Caller& caller, std::string_view payload, ipc::Responder r) {
  auto j = object_payload(payload, "EVENTS", r);
  if (!j) return;
  agents_->events(caller, *j, std::move(r));
}

void Kernel::sys_hello(const ipc::Caller& caller, std::string_view, ipc::Responder r) {
  // The dispatch table itself, so a client (and the test that sends every
  // opcode bad payloads) learns of opcodes added later.
  json opcodes = json::object();
  for (size_t op = 0; op < table_.size(); ++op) {
    if (table_[op]) opcodes[std::string(ipc::op_name(static_cast<ipc::Op>(op)))] = op;
  }
  r.reply(json{{"protocol", ipc::kProtocolVersion},
               {"kernel", AGENTOS_VERSION},
               {"features", kernel_features()},
               {"opcodes", std::move(opcodes)},
               {"agent_id", caller.agent_id},
               {"max_payload", ipc::kMaxPayload},
               {"llm", llm_->stats()}}
              .dump());
}

void Kernel::sys_exit(const ipc::Caller&, std::string_view, ipc::Responder r) {
  r.reply_and_close("goodbye");
}

}  // namespace agentos

// AgentManager, second half: finding agents and the syscalls that read or
// steer them without starting or ending a run (LIST, STATS, PAUSE, RESUME,
// WAIT, EVENTS). Payload rules: docs/PROTOCOL.md.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <initializer_list>

#include <fmt/format.h>

#include "runtime/agent_manager.hpp"
#include "util/log.hpp"

namespace agentos::runtime {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kMaxWaitMs = 60'000;
constexpr uint64_t kMaxLogPage = 768 << 10;
// Room for the reply's other fields and JSON escaping within the frame limit.
constexpr size_t kMaxReply = (1 << 20) - 4096;

std::string error_json(std::string_view message) { return json{{"error", message}}.dump(); }

/// Refuses fields other than `known`, naming the first stranger.
std::optional<std::string> unknown_field(const json& payload, std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : payload.items()) {
    bool ok = false;
    for (auto name : known) ok = ok || k == name;
    if (!ok) return fmt::format("unknown field '{}'", k);
  }
  return std::nullopt;
}

/// An optional whole number in [0, max]; `error` says what is wrong.
std::optional<uint64_t> get_uint(const json& payload, const char* field, uint64_t fallback, uint64_t max,
                                 std::string& error) {
  if (!payload.contains(field)) return fallback;
  const json& v = payload[field];
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
    error = fmt::format("invalid field '{}': expected a whole number from 0 to {}", field, max);
    return std::nullopt;
  }
  return v.get<uint64_t>();
}

bool has_selector(const json& p) { return p.contains("name") || p.contains("id"); }

}  // namespace

std::string AgentManager::socket_path(const Agent& a) const {
  return fmt::format("{}/agents/{}.sock", cfg_.runtime_dir, a.id);
}

std::optional<uid_t> AgentManager::sandbox_uid(const Agent& a) const {
  if (::geteuid() != 0 || !a.req.sandboxed || !cfg_.enable_sandboxing) return std::nullopt;
  return cfg_.uid_base + a.id % cfg_.uid_count;
}

bool AgentManager::name_in_use(const std::string& name) const {
  for (const auto& [id, a] : agents_) {
    if (a->active() && a->req.name == name) return true;
  }
  return false;
}

bool AgentManager::visible_to(const Agent& a, const ipc::Caller& caller) const {
  // An agent sees only its own descendants.
  return caller.agent_id == 0 || descends_from(a, caller.agent_id);
}

bool AgentManager::descends_from(const Agent& a, uint32_t ancestor) const {
  for (uint32_t p = a.parent_id; p != 0;) {
    if (p == ancestor) return true;
    auto it = agents_.find(p);
    if (it == agents_.end()) return false;
    p = it->second->parent_id;
  }
  return false;
}

int AgentManager::nesting_of(const Agent& a) const {
  int depth = 0;
  for (uint32_t p = a.parent_id; p != 0; ++depth) {
    auto it = agents_.find(p);
    if (it == agents_.end()) break;
    p = it->second->parent_id;
  }
  return depth;
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
  if (ec) return make_error("invalid field 'script': " + p.string(), ec.value());  // adds the errno's text
  struct stat st;
  if (::stat(canon.c_str(), &st) < 0) return sys_error("invalid field 'script': " + canon.string());
  if (!S_ISREG(st.st_mode)) return make_error("invalid field 'script': " + canon.string() + " is not a regular file", EINVAL);
  if (::access(canon.c_str(), R_OK) < 0) return sys_error("invalid field 'script': cannot read " + canon.string());
  return canon.string();
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
  // Prefer the active agent of that name, else the most recent record.
  for (auto& [id, a] : agents_) {
    if (a->req.name != name || !visible_to(*a, caller)) continue;
    if (!best || a->active() || !best->active()) best = a.get();
    if (best->active()) break;
  }
  if (!best) error = fmt::format("no agent named '{}'", name);
  return best;
}

json AgentManager::list(const ipc::Caller& caller, bool all) {
  const auto now = reactor_.now();
  json out = json::array();
  for (auto& [id, a] : agents_) {
    if (!visible_to(*a, caller) || (!all && !a->active())) continue;
    // Its SPAWN already failed; the record goes when the child is reaped.
    if (a->exec_failed && a->runs == 1) continue;
    // Usage comes from the stats timer's last sample (at most one interval
    // old; exact at exit): reading every cgroup on each LIST cost ~130 µs of
    // loop time per agent.
    out.push_back(a->to_json(now));
  }
  return out;
}

json AgentManager::stats(const ipc::Caller& caller, const json& payload) {
  if (auto bad = unknown_field(payload, {"name", "id", "all"})) return {{"error", *bad}};
  std::optional<uint32_t> only;
  if (has_selector(payload)) {
    std::string error;
    Agent* a = find(payload, caller, error);
    if (!a) return {{"error", error}};
    only = a->id;
  }
  const bool all = payload.value("all", false);
  const auto now = reactor_.now();
  json out = json::array();
  for (auto& [id, a] : agents_) {
    if ((only && id != *only) || (!only && !all && !a->active()) || !visible_to(*a, caller)) continue;
    if (a->exec_failed && a->runs == 1) continue;
    const auto& s = a->last_stats;
    out.push_back({{"id", id},
                   {"name", a->req.name},
                   {"state", state_name(a->state)},
                   {"pid", a->pid},
                   {"cpu_usage_ms", s.cpu_usage_us / 1000},
                   {"cpu_percent", a->alive() ? a->cpu_percent : 0.0},
                   {"throttled_count", s.nr_throttled},
                   {"throttled_ms", s.throttled_us / 1000},
                   {"memory_bytes", s.memory_current},
                   {"memory_peak_bytes", s.memory_peak},
                   {"memory_limit", a->req.limits.memory ? json(*a->req.limits.memory) : json(nullptr)},
                   {"pids", s.pids_current},
                   {"pids_limit", a->req.limits.max_pids ? json(*a->req.limits.max_pids) : json(nullptr)},
                   {"oom_kills", s.oom_kills},
                   {"restarts", a->restarts.restarts()},
                   {"uptime_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                     (a->alive() ? now : a->ended) - a->started)
                                     .count()}});
  }
  return out;
}

void AgentManager::pause(const ipc::Caller& caller, const json& payload, ipc::Responder reply, bool frozen) {
  const char* verb = frozen ? "pause" : "resume";
  if (auto bad = unknown_field(payload, {"name", "id"})) return reply.reply(error_json(*bad));
  std::string error;
  Agent* a = find(payload, caller, error);
  if (!a) return reply.reply(error_json(error));
  const AgentState from = frozen ? AgentState::kRunning : AgentState::kPaused;
  if (!a->alive() || a->state != from) {
    return reply.reply(error_json(fmt::format("cannot {} '{}': it is {}", verb, a->req.name, state_name(a->state))));
  }
  if (!a->cgroup) {
    return reply.reply(error_json(fmt::format("cannot {} '{}': no cgroup ({})", verb, a->req.name, cgroup_error_)));
  }
  if (auto r = a->cgroup->freeze(frozen); !r) {
    return reply.reply(error_json(fmt::format("cannot {} '{}': {}", verb, a->req.name, r.error().message())));
  }
  a->state = frozen ? AgentState::kPaused : AgentState::kRunning;
  record(*a, frozen ? "paused" : "resumed");
  reply.reply(json{{frozen ? "paused" : "resumed", true}, {"id", a->id}, {"name", a->req.name}}.dump());
}

void AgentManager::wait(const ipc::Caller& caller, const json& payload, ipc::Responder reply) {
  if (auto bad = unknown_field(payload, {"name", "id", "timeout_ms"})) return reply.reply(error_json(*bad));
  std::string error;
  auto timeout = get_uint(payload, "timeout_ms", 0, 24ull * 3600 * 1000, error);
  if (!timeout) return reply.reply(error_json(error));
  Agent* a = find(payload, caller, error);
  if (!a) return reply.reply(error_json(error));
  const uint32_t id = a->id;
  auto attempt = [this, id](bool timed_out) -> std::optional<std::string> {
    auto it = agents_.find(id);
    if (it == agents_.end()) return error_json("the agent's record is gone");
    if (!it->second->active()) return it->second->to_json(reactor_.now()).dump();
    if (timed_out) return json{{"error", "timeout: the agent is still running"}, {"timed_out", true}}.dump();
    return std::nullopt;
  };
  std::optional<Clock::duration> deadline;
  if (*timeout > 0) deadline = std::chrono::milliseconds(*timeout);
  polls_.park(ipc::poll_topic(ipc::PollKind::kAgentEnd, id), caller.connection_id, deadline, std::move(attempt),
              std::move(reply));
}

void AgentManager::events(const ipc::Caller& caller, const json& payload, ipc::Responder reply) {
  if (auto bad = unknown_field(payload, {"name", "id", "since", "limit", "wait_ms"})) {
    return reply.reply(error_json(*bad));
  }
  std::string error;
  auto since = get_uint(payload, "since", 0, UINT64_MAX, error);
  auto limit = since ? get_uint(payload, "limit", 1000, 10000, error) : std::nullopt;
  auto wait_ms = limit ? get_uint(payload, "wait_ms", 0, kMaxWaitMs, error) : std::nullopt;
  if (!wait_ms) return reply.reply(error_json(error));
  if (payload.contains("name") && !payload["name"].is_string()) {
    return reply.reply(error_json("invalid field 'name': expected a string"));
  }
  if (payload.contains("id") && !payload["id"].is_number_unsigned()) {
    return reply.reply(error_json("invalid field 'id': expected a positive integer"));
  }
  // By name, not id: a name's events span its records (a re-spawn after an
  // end gets a new id). Agents see only their descendants' events.
  auto filter = [this, payload, caller](const Event& e) {
    if (payload.contains("name") && e.name != payload["name"].get<std::string>()) return false;
    if (payload.contains("id") && e.agent_id != payload["id"].get<uint32_t>()) return false;
    if (caller.agent_id == 0) return true;
    auto it = agents_.find(e.agent_id);
    return it != agents_.end() && visible_to(*it->second, caller);
  };
  auto attempt = [this, since = *since, limit = *limit, wait = *wait_ms, filter](bool timed_out) -> std::optional<std::string> {
    if (wait == 0 || timed_out || events_.has_since(since, filter)) return events_.query(since, filter, limit).dump();
    return std::nullopt;
  };
  polls_.park(ipc::poll_topic(ipc::PollKind::kEvents), caller.connection_id, std::chrono::milliseconds(*wait_ms),
              std::move(attempt), std::move(reply));
}

namespace {

json page_json(const Agent& a, const LogPage& page) {
  json lines = json::array();
  for (const auto& l : page.lines) lines.push_back({{"ts", l.ts}, {"stream", l.stream}, {"text", l.text}});
  return {{"id", a.id},           {"name", a.req.name},           {"lines", std::move(lines)},
          {"start", page.start},  {"next", page.next},            {"truncated", page.truncated},
          {"running", a.alive()}, {"state", state_name(a.state)}, {"dropped_lines", a.log->dropped_lines()}};
}

}  // namespace

void AgentManager::logs(const ipc::Caller& caller, const json& payload, ipc::Responder reply) {
  if (auto bad = unknown_field(payload, {"name", "id", "tail", "since", "max_bytes", "wait_ms"})) {
    return reply.reply(error_json(*bad));
  }
  std::string error;
  auto tail = get_uint(payload, "tail", 100, 10000, error);
  auto max_bytes = tail ? get_uint(payload, "max_bytes", 256 << 10, kMaxLogPage, error) : std::nullopt;
  auto wait_ms = max_bytes ? get_uint(payload, "wait_ms", 0, kMaxWaitMs, error) : std::nullopt;
  auto since = wait_ms ? get_uint(payload, "since", 0, UINT64_MAX, error) : std::nullopt;
  if (!since) return reply.reply(error_json(error));
  Agent* a = find(payload, caller, error);
  if (!a) return reply.reply(error_json(error));
  if (auto r = open_log(*a); !r) return reply.reply(error_json("LOGS: " + r.error().message()));

  LogQuery q;
  if (payload.contains("since")) q.since = *since;
  else q.tail_lines = *tail;
  q.max_bytes = std::max<size_t>(*max_bytes, 1);
  const bool follow = q.since && *wait_ms > 0;
  const uint32_t id = a->id;
  auto attempt = [this, id, q, follow](bool timed_out) mutable -> std::optional<std::string> {
    auto it = agents_.find(id);
    if (it == agents_.end()) return error_json("the agent's record is gone");
    Agent& ag = *it->second;
    if (auto r = open_log(ag); !r) return error_json("LOGS: " + r.error().message());
    // Output bytes are the agent's: invalid UTF-8 is replaced, not refused,
    // and a page is halved until its JSON fits in one frame.
    for (;;) {
      auto page = ag.log->read(q);
      if (!page) return error_json("LOGS: " + page.error().message());
      if (follow && page->lines.empty() && ag.active() && !timed_out) return std::nullopt;
      std::string out = page_json(ag, *page).dump(-1, ' ', false, json::error_handler_t::replace);
      if (out.size() <= kMaxReply || q.max_bytes <= 1) return out;
      q.max_bytes /= 2;
    }
  };
  if (follow && !a->log_waiter.pending()) {
    a->log_waiter = a->log->on_append([this, id] { polls_.poke(ipc::poll_topic(ipc::PollKind::kAgentLog, id)); });
  }
  polls_.park(ipc::poll_topic(ipc::PollKind::kAgentLog, id), caller.connection_id,
              std::chrono::milliseconds(*wait_ms), std::move(attempt), std::move(reply));
}

}  // namespace agentos::runtime

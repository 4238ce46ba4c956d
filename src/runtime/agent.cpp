#include "runtime/agent.hpp"

namespace agentos::runtime {
namespace {

using nlohmann::json;

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

const char* Agent::status() const {
  if (alive()) return "running";
  return oom_killed ? "oom_killed" : signal ? "killed" : "exited";
}

json Agent::limits_json() const {
  const auto& l = req.limits;
  return {{"memory", opt(l.memory)},
          {"max_pids", opt(l.max_pids)},
          {"cpu_quota", opt(l.cpu_quota)},
          {"cpu_period", l.cpu_period.value_or(100000)}};
}

json Agent::to_json(Clock::time_point now) const {
  const auto& s = last_stats;
  json j = {{"id", id},
            {"name", req.name},
            {"pid", pid},
            {"parent_id", parent_id},
            {"state", state_name(state)},
            {"status", status()},
            {"running", alive()},
            {"exit_code", opt(exit_code)},
            {"signal", opt(signal)},
            {"oom_killed", oom_killed},
            {"throttled", s.nr_throttled > 0},
            {"throttled_ms", s.throttled_us / 1000},
            {"restarts", restarts.restarts()},
            {"restart", restart_mode_name(req.restart.mode)},
            {"uptime_ms", ms_between(started, alive() ? now : ended)},
            {"limits", limits_json()},
            {"sandboxed", req.sandboxed},
            {"network", req.network},
            {"memory_bytes", s.memory_current},
            {"memory_peak_bytes", s.memory_peak},
            {"cpu_usage_ms", s.cpu_usage_us / 1000},
            {"pids", s.pids_current},
            {"script", script_path},
            {"python", interpreter.path},
            {"declared", declared}};
  if (!end_reason.empty()) j["reason"] = end_reason;
  return j;
}

uint64_t Agent::sample(Clock::time_point now) {
  if (!cgroup) return 0;
  auto st = cgroup->usage();
  if (!st) return 0;
  const auto elapsed_us = std::chrono::duration_cast<std::chrono::microseconds>(now - prev_sample).count();
  if (prev_sample != Clock::time_point{} && elapsed_us > 0 && st->cpu_usage_us >= prev_cpu_us) {
    cpu_percent = 100.0 * static_cast<double>(st->cpu_usage_us - prev_cpu_us) / static_cast<double>(elapsed_us);
  }
  prev_cpu_us = st->cpu_usage_us;
  prev_sample = now;
  last_stats = *st;
  const uint64_t fresh = st->oom_kills > oom_kills_seen ? st->oom_kills - oom_kills_seen : 0;
  oom_kills_seen = st->oom_kills;
  return fresh;
}

}  // namespace agentos::runtime

// One agent's record: what LIST shows, and the resources it owns while a
// run of it is alive. The AgentManager drives its lifecycle.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/connection.hpp"
#include "kernel/reactor.hpp"
#include "runtime/agent_log.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/restart_policy.hpp"
#include "runtime/spawn_request.hpp"
#include "runtime/spawner.hpp"

namespace agentos::runtime {

enum class AgentState { kStarting, kRunning, kPaused, kStopping, kRestarting, kStopped, kFailed };
const char* state_name(AgentState s);

/// Answers a SPAWN with its reply JSON.
using SpawnDone = std::move_only_function<void(std::string reply)>;

struct Agent {
  uint32_t id = 0;
  uint32_t parent_id = 0;  // 0: spawned by an operator or the config file
  bool declared = false;   // started from the config file
  SpawnRequest req;
  nlohmann::json spec;     // the SPAWN payload as given (for config reloads)
  std::string script_path;  // absolute, resolved on the host
  Interpreter interpreter;  // resolved on the host once, at SPAWN
  AgentState state = AgentState::kStarting;
  RestartTracker restarts;
  uint32_t runs = 0;        // 1 for the first run
  std::string end_reason;   // why the agent ended for good, if not obvious

  // The current (or last) run.
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool oom_killed = false;
  bool kill_requested = false;
  bool exec_failed = false;  // execve never happened in this run
  pid_t pid = 0;
  Clock::time_point started{};
  Clock::time_point ended{};
  nlohmann::json enforced;   // what the sandbox and cgroups applied

  // Usage, sampled on the stats timer, by LIST and once at exit.
  CgroupStats last_stats;
  uint64_t prev_cpu_us = 0;
  Clock::time_point prev_sample{};
  double cpu_percent = 0;
  uint64_t oom_kills_seen = 0;

  std::unique_ptr<AgentLog> log;  // stdout/stderr of every run
  LogWaiter log_waiter;            // wakes LOGS requests waiting for lines

  // Owned while a run is alive.
  std::unique_ptr<AgentCgroup> cgroup;
  std::optional<ChildProcess> child;
  UniqueFd exec_status;
  FdWatch exec_watch;
  FdWatch exit_watch;
  Timer kill_timer;
  Timer restart_timer;  // while RESTARTING
  std::optional<SpawnDone> spawn_done;       // until exec succeeds or fails
  std::vector<ipc::Responder> kill_replies;  // until the agent is gone

  /// A process of this agent exists.
  [[nodiscard]] bool alive() const { return child.has_value(); }
  /// Alive, or waiting to be restarted: the name is taken.
  [[nodiscard]] bool active() const { return alive() || state == AgentState::kRestarting; }
  /// Exit status of the last run, as LIST's `status` names it.
  [[nodiscard]] const char* status() const;
  [[nodiscard]] nlohmann::json limits_json() const;
  [[nodiscard]] nlohmann::json to_json(Clock::time_point now) const;
  /// Samples the cgroup: usage, CPU % since the last sample. Returns the
  /// number of new OOM kills seen.
  uint64_t sample(Clock::time_point now);
};

}  // namespace agentos::runtime

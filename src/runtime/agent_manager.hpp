// Agents: their records, lifecycle (spawn, exit, kill) and the cgroup,
// sandbox and socket that each one owns.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/connection.hpp"
#include "kernel/config.hpp"
#include "kernel/reactor.hpp"
#include "runtime/cgroup.hpp"
#include "runtime/interpreter.hpp"
#include "runtime/spawn_request.hpp"
#include "runtime/spawner.hpp"

namespace agentos::ipc {
class SocketServer;
}

namespace agentos::runtime {

enum class AgentState { kStarting, kRunning, kPaused, kStopping, kRestarting, kStopped, kFailed };
const char* state_name(AgentState s);

/// One agent: the record LIST shows, plus the resources it owns while alive.
struct Agent {
  uint32_t id = 0;
  uint32_t parent_id = 0;  // 0: spawned by an operator
  SpawnRequest req;
  std::string script_path;   // absolute, resolved on the host
  Interpreter interpreter;    // resolved on the host once, at SPAWN
  AgentState state = AgentState::kStarting;
  std::optional<int> exit_code;
  std::optional<int> signal;
  bool oom_killed = false;
  bool kill_requested = false;
  bool spawn_failed = false;  // exec never happened: the record is dropped
  pid_t pid = 0;
  Clock::time_point started{};
  Clock::time_point ended{};
  nlohmann::json enforced;    // what the sandbox and cgroups applied
  CgroupStats last_stats;     // sampled while running and once at exit

  // Owned while alive.
  std::unique_ptr<AgentCgroup> cgroup;
  std::optional<ChildProcess> child;
  UniqueFd exec_status;
  FdWatch exec_watch;
  FdWatch exit_watch;
  Timer kill_timer;
  std::optional<ipc::Responder> spawn_reply;  // until exec succeeds or fails
  std::vector<ipc::Responder> kill_replies;   // until the agent is gone

  [[nodiscard]] bool alive() const { return child.has_value(); }
  [[nodiscard]] nlohmann::json to_json(Clock::time_point now) const;
};

class AgentManager {
 public:
  /// Opens the cgroup backend (cleaning leftovers of a crashed run of the
  /// same instance). Without cgroups the manager still runs agents and says
  /// in every SPAWN reply that limits are not enforced.
  static Result<std::unique_ptr<AgentManager>> create(Reactor& reactor, const KernelConfig& cfg,
                                                      ipc::SocketServer& server);
  ~AgentManager();

  /// SPAWN: replies once the agent's program is running, or with an error.
  void spawn(const ipc::Caller& caller, const nlohmann::json& payload, ipc::Responder reply);
  /// KILL: replies {"killed": true} once the agent is gone.
  void kill(const ipc::Caller& caller, const nlohmann::json& payload, ipc::Responder reply);
  /// LIST entries visible to `caller` (operators: all; agents: descendants).
  nlohmann::json list(const ipc::Caller& caller, bool all);

  /// Terminates every agent (SIGTERM, then SIGKILL after the grace period)
  /// and calls `done` when none is left.
  void stop_all(std::move_only_function<void()> done);

  /// Called when an agent's program started (LLM flow limits etc.).
  void on_agent_start(std::move_only_function<void(uint32_t id, const SpawnLimits&)> cb) {
    on_start_ = std::move(cb);
  }
  /// Called when an agent ended (LLM cancellation etc.).
  void on_agent_exit(std::move_only_function<void(uint32_t id)> cb) { on_exit_ = std::move(cb); }

  [[nodiscard]] nlohmann::json describe() const;
  [[nodiscard]] size_t alive_count() const;

 private:
  AgentManager(Reactor& reactor, const KernelConfig& cfg, ipc::SocketServer& server);
  Result<void> start_agent(Agent& a);
  Result<SpawnSpec> build_spec(Agent& a, int log_fd);
  void exec_status_ready(uint32_t id);
  void child_exited(uint32_t id);
  void finish_spawn(Agent& a, Result<void> exec);
  void terminate(Agent& a, std::chrono::milliseconds grace);
  void force_kill(Agent& a);
  void release(Agent& a);
  void prune_ended();
  Agent* find(const nlohmann::json& selector, const ipc::Caller& caller, std::string& error);
  bool visible_to(const Agent& a, const ipc::Caller& caller) const;
  bool name_in_use(const std::string& name) const;
  /// The agent's listening socket on the host.
  std::string socket_path(const Agent& a) const;
  /// The agent's own uid when it runs sandboxed under a root kernel.
  std::optional<uid_t> sandbox_uid(const Agent& a) const;
  Result<std::string> resolve_script(const std::string& script, const ipc::Caller& caller) const;

  Reactor& reactor_;
  const KernelConfig& cfg_;
  ipc::SocketServer& server_;
  std::unique_ptr<CgroupBackend> cgroups_;
  std::string cgroup_error_;  // why there are no cgroups, if so
  std::map<uint32_t, std::unique_ptr<Agent>> agents_;
  uint32_t next_id_ = 1;
  std::move_only_function<void(uint32_t, const SpawnLimits&)> on_start_;
  std::move_only_function<void(uint32_t)> on_exit_;
  std::move_only_function<void()> all_stopped_;
};

}  // namespace agentos::runtime

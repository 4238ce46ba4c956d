// Agents: their lifecycle (spawn, exit, restart, kill, pause), the cgroup,
// sandbox and socket each one owns, usage sampling, lifecycle events and the
// requests that wait on agents (WAIT, EVENTS). Implementation in two files:
// agent_manager.cpp (lifecycle) and agent_manager_ops.cpp (queries).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ipc/connection.hpp"
#include "ipc/long_poll.hpp"
#include "kernel/config.hpp"
#include "kernel/reactor.hpp"
#include "runtime/agent.hpp"
#include "runtime/event_log.hpp"

namespace agentos::ipc {
class SocketServer;
}

namespace agentos::runtime {

class AgentManager {
 public:
  /// Opens the cgroup backend (cleaning leftovers of a crashed run of the
  /// same instance). Without cgroups the manager still runs agents and says
  /// in every SPAWN reply that limits are not enforced.
  static Result<std::unique_ptr<AgentManager>> create(Reactor& reactor, const KernelConfig& cfg,
                                                      ipc::SocketServer& server);
  ~AgentManager();

  /// SPAWN: `done` gets the reply once the agent's program is running, or
  /// an error. `declared`: the agent comes from the config file.
  void spawn(const ipc::Caller& caller, const nlohmann::json& payload, SpawnDone done, bool declared = false);
  /// KILL: replies {"killed": true} once the agent is gone.
  void kill(const ipc::Caller& caller, const nlohmann::json& payload, ipc::Responder reply);
  /// Stops the active agent `name` (no restart) and calls `done` once it
  /// has ended; at once if there is none. For config reloads.
  void stop(const std::string& name, std::move_only_function<void()> done);
  /// LIST entries visible to `caller` (operators: all; agents: descendants).
  nlohmann::json list(const ipc::Caller& caller, bool all);
  /// STATS: per-agent usage from the last sample, visible to `caller`.
  nlohmann::json stats(const ipc::Caller& caller, const nlohmann::json& payload);
  void pause(const ipc::Caller& caller, const nlohmann::json& payload, ipc::Responder reply, bool frozen);
  /// WAIT: answers with the LIST entry once the agent ended for good.
  void wait(const ipc::Caller& caller, const nlohmann::json& payload, ipc::Responder reply);
  /// LOGS: a page of the agent's captured output; with `wait_ms`, waits
  /// for lines to come.
  void logs(const ipc::Caller& caller, const nlohmann::json& payload, ipc::Responder reply);
  void events(const ipc::Caller& caller, const nlohmann::json& payload, ipc::Responder reply);
  /// Requests of a closed connection stop waiting.
  void connection_closed(uint64_t connection_id) { polls_.connection_closed(connection_id); }

  /// Records a kernel-level event (agent id 0), e.g. config_reloaded.
  void note(std::string type, nlohmann::json detail);

  /// Terminates every agent (SIGTERM, then SIGKILL after the grace period;
  /// agents from the config file one at a time in reverse order) and calls
  /// `done` when none is left.
  void stop_all(std::move_only_function<void()> done);

  /// Called when a run of an agent started (LLM flow limits etc.).
  void on_agent_start(std::move_only_function<void(uint32_t id, const SpawnLimits&)> cb) {
    on_start_ = std::move(cb);
  }
  /// Called when a run ended; `final` is false when a restart follows.
  void on_agent_exit(std::move_only_function<void(uint32_t id, bool final)> cb) { on_exit_ = std::move(cb); }

  [[nodiscard]] nlohmann::json describe() const;
  [[nodiscard]] size_t alive_count() const;
  [[nodiscard]] size_t record_count() const { return agents_.size(); }
  /// Microseconds the last sampling pass took, and over how many agents.
  [[nodiscard]] nlohmann::json sampler_cost() const;

 private:
  AgentManager(Reactor& reactor, const KernelConfig& cfg, ipc::SocketServer& server);
  // Lifecycle (agent_manager.cpp).
  Result<void> start_agent(Agent& a);
  Result<SpawnSpec> build_spec(Agent& a, const StdioPipes& stdio);
  /// Opens (or reopens) the agent's log.
  Result<void> open_log(Agent& a);
  void exec_status_ready(uint32_t id);
  void child_exited(uint32_t id);
  void finish_spawn(Agent& a, Result<void> exec);
  void after_run(Agent& a, bool failed);
  void restart_agent(uint32_t id);
  void ended_for_good(Agent& a, AgentState state);
  void terminate(Agent& a, std::chrono::milliseconds grace);
  void force_kill(Agent& a);
  void release(Agent& a);
  /// Stops, for good, every agent `a` spawned and theirs: they live in its
  /// cgroup and end with its run.
  void end_descendants(const Agent& a);
  void prune_ended();
  void stop_next_declared();
  void sample_all();
  void record(const Agent& a, std::string type, nlohmann::json detail = nlohmann::json::object());
  // Lookup (agent_manager_ops.cpp).
  Agent* find(const nlohmann::json& selector, const ipc::Caller& caller, std::string& error);
  bool visible_to(const Agent& a, const ipc::Caller& caller) const;
  /// True if `ancestor` spawned `a`, or spawned an agent that did, ...
  bool descends_from(const Agent& a, uint32_t ancestor) const;
  /// How many agents up the chain of spawners `a` is from an operator's.
  int nesting_of(const Agent& a) const;
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
  EventLog events_;
  ipc::LongPolls polls_;
  Timer sample_timer_;
  int64_t sample_cost_us_ = 0;
  size_t sample_count_ = 0;
  bool stopping_all_ = false;
  std::vector<uint32_t> declared_order_;  // ids of declared agents, in start order
  std::move_only_function<void(uint32_t, const SpawnLimits&)> on_start_;
  std::move_only_function<void(uint32_t, bool)> on_exit_;
  std::move_only_function<void()> all_stopped_;
  std::multimap<uint32_t, std::move_only_function<void()>> on_gone_;  // stop() callbacks by id
};

}  // namespace agentos::runtime

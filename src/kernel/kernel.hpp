// The kernel: wires the reactor, the socket server and the subsystems, and
// owns the syscall table.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string_view>

#include <map>

#include <nlohmann/json.hpp>

#include "ipc/socket_server.hpp"
#include "ipc/unix_socket.hpp"
#include "kernel/config.hpp"
#include "kernel/reactor.hpp"
#include "llm/llm_service.hpp"
#include "runtime/agent_manager.hpp"

namespace agentos {

class Kernel {
 public:
  /// Takes the socket lock, binds the operator socket and prepares
  /// directories. Fails with a message for the operator.
  static Result<std::unique_ptr<Kernel>> create(KernelConfig cfg);
  ~Kernel();

  /// Serves until SIGINT/SIGTERM, then shuts down gracefully.
  Result<void> run();

 private:
  using Handler = void (Kernel::*)(const ipc::Caller&, std::string_view, ipc::Responder);

  explicit Kernel(KernelConfig cfg);
  Result<void> init();
  void register_syscalls();
  void dispatch(const ipc::Caller& caller, uint8_t opcode, std::string_view payload, ipc::Responder r);
  void begin_shutdown(int signo);
  /// Starts one [[agent]] of the config file.
  void spawn_declared(const nlohmann::json& spec);
  /// SIGHUP: re-reads the config file and reconciles the declared agents
  /// (new ones start, removed ones stop, changed ones restart). An invalid
  /// file is rejected and the running set kept.
  void reload_config();
  void connection_closed(const ipc::Caller& caller);
  /// THINK flow of a caller: each agent is one flow, each operator
  /// connection another.
  static llm::FlowId flow_of(const ipc::Caller& caller);
  /// The agent's LLM accounting: live, or kept from its last run.
  nlohmann::json llm_stats_of(uint32_t agent_id) const;
  /// Kernel-wide figures for STATS: process, connections, agents, LLM.
  nlohmann::json kernel_stats() const;

  void sys_noop(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_think(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_spawn(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_kill(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_list(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_logs(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_stats(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_pause(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_resume(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_wait(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_events(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_hello(const ipc::Caller&, std::string_view payload, ipc::Responder r);
  void sys_exit(const ipc::Caller&, std::string_view payload, ipc::Responder r);

  KernelConfig cfg_;
  std::unique_ptr<Reactor> reactor_;
  std::optional<ipc::PathLock> lock_;
  std::unique_ptr<ipc::SocketServer> server_;
  // Declared after server_: both hold replies for its connections and the
  // manager owns listeners on it, so they must go first.
  std::unique_ptr<llm::LlmService> llm_;
  std::unique_ptr<runtime::AgentManager> agents_;
  std::array<Handler, 256> table_{};
  std::map<uint32_t, nlohmann::json> ended_llm_stats_;
  std::vector<nlohmann::json> declared_;  // the config file's agents, as last applied  // agent id -> final LLM accounting
  Clock::time_point started_{};
  Timer shutdown_deadline_;
  bool shutting_down_ = false;
};

/// Features this build offers, for HELLO and --check.
nlohmann::json kernel_features();

/// Parses a JSON payload; an empty payload is `empty_value`.
Result<nlohmann::json> parse_json_payload(std::string_view payload, const nlohmann::json& empty_value);

}  // namespace agentos

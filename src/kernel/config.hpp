// Every setting of the kernel in one place. Flags, environment and (later)
// the config file fill it; nothing else reads the environment.
#pragma once

#include <cstdint>
#include <string>

#include "llm/llm_config.hpp"
#include "util/result.hpp"

namespace agentos {

struct KernelConfig {
  std::string socket_path = "/tmp/agentos.sock";
  std::string log_level = "info";
  std::string state_dir;    // empty: derived (see resolve_paths)
  std::string runtime_dir;  // empty: derived
  std::string instance;     // derived from socket_path
  std::string sdk_dir;      // Python SDK exposed read-only to agents (PYTHONPATH)

  // Socket server.
  size_t max_connections = 1024;
  size_t max_output_bytes = 4 * 1024 * 1024;
  size_t max_pending_requests = 4096;
  unsigned socket_mode = 0600;

  // Agents.
  bool enable_sandboxing = true;
  std::string cgroup_parent;  // empty: the kernel's own cgroup
  uint64_t default_memory_bytes = 256ull << 20;
  uint64_t default_max_pids = 64;
  uint64_t default_cpu_quota_us = 0;  // 0: no CPU cap
  uint32_t uid_base = 200000;         // agents get uid_base + id when the kernel is root
  uint32_t uid_count = 65536;
  int kill_grace_ms = 5000;

  // LLM provider and scheduler settings (environment, then flags).
  llm::LlmConfig llm;
};

/// Fills instance, state_dir and runtime_dir when not set: the instance name
/// is derived from the socket path so several kernels can run side by side.
void resolve_paths(KernelConfig& cfg);

/// Applies --llm-provider/--llm-model/--llm-base-url over the environment's
/// choice (a provider named on the command line resets model and URL to its
/// defaults unless given too), then validates.
Result<void> apply_llm_flags(llm::LlmConfig& llm, const std::string& provider, const std::string& model,
                             const std::string& base_url);

/// The SDK shipped with this binary: <exe>/../agents/python_sdk (build
/// tree) or <prefix>/share/agentos/python_sdk (installed); "" if neither.
std::string default_sdk_dir();

/// "agentos-<8 hex digits>" from the absolute socket path.
std::string instance_name(const std::string& socket_path);

}  // namespace agentos

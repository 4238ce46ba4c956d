// Every setting of the kernel in one place. Flags, environment and (later)
// the config file fill it; nothing else reads the environment.
#pragma once

#include <cstdint>
#include <string>

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

  // LLM (see llm/llm_config.hpp for the provider settings read from env).
  std::string llm_provider;
  std::string llm_model;
  std::string llm_base_url;
  unsigned llm_max_inflight = 8;
  double llm_rpm = 0;
  double llm_tpm = 0;
  double llm_timeout_s = 60;
};

/// Fills instance, state_dir and runtime_dir when not set: the instance name
/// is derived from the socket path so several kernels can run side by side.
void resolve_paths(KernelConfig& cfg);

/// "agentos-<8 hex digits>" from the absolute socket path.
std::string instance_name(const std::string& socket_path);

}  // namespace agentos

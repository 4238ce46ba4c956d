// Every setting of the kernel in one place. The config file, the environment
// and the flags fill it, in that order of priority (lowest first, see
// layered_config); nothing else reads the environment.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/config_file.hpp"
#include "llm/llm_config.hpp"
#include "util/result.hpp"

namespace agentos {

// Bounds shared by the flags and the config file's [kernel] keys.
inline constexpr size_t kMaxConnectionsMax = size_t{1} << 20;
inline constexpr size_t kOutputBytesMin = 64 * 1024;
inline constexpr size_t kOutputBytesMax = size_t{1} << 32;
inline constexpr int kKillGraceMsMax = 3'600'000;
inline constexpr unsigned kLlmInflightMax = 4096;
inline constexpr uint32_t kStatsIntervalMsMin = 100;
inline constexpr uint32_t kStatsIntervalMsMax = 3'600'000;
inline constexpr uint64_t kLogMaxBytesMin = 64 * 1024;
inline constexpr uint64_t kLogMaxBytesMax = uint64_t{1} << 40;
inline constexpr uint32_t kLogMaxFilesMax = 1000;

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

  // Observability: STATS sampling period; agent log rotation (PROTOCOL.md).
  uint32_t stats_interval_ms = 1000;
  uint64_t log_max_bytes = 10ull << 20;
  uint32_t log_max_files = 3;

  // The config file (--config / AGENTOS_CONFIG): its absolute path, empty
  // without one, for re-reading on SIGHUP; and its [[agent]] tables as SPAWN
  // payloads (see ConfigFile::agents), to start at boot.
  std::string config_path;
  std::vector<nlohmann::json> declared_agents;

  // LLM provider and scheduler settings (environment, then flags).
  llm::LlmConfig llm;
};

using GetenvFn = std::function<const char*(const char*)>;

/// The settings below the command line, lowest priority first: built-in
/// defaults < the config file's [kernel] table < the environment
/// (AGENTOS_SOCKET; the LLM variables of LlmConfig::from_env, whose
/// AGENTOS_LLM_PROVIDER, _MODEL, GEMINI/OPENAI_BASE_URL, _MAX_INFLIGHT, _RPM,
/// _TPM, _TIMEOUT_S and _SCHEDULER the file's llm_* keys stand in for). Also
/// records the file's path and declared agents. Command-line flags go on top
/// (main.cpp). Fails on an unparsable LLM environment variable.
Result<KernelConfig> layered_config(const std::optional<ConfigFile>& file, const GetenvFn& getenv_fn);

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

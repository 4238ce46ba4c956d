// SPAWN payload: parsing and validation (DESIGN.md §2). Pure: no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/restart_policy.hpp"
#include "util/result.hpp"

namespace agentos::runtime {

struct SpawnLimits {
  std::optional<uint64_t> memory;     // bytes
  std::optional<uint64_t> max_pids;
  std::optional<uint64_t> cpu_quota;  // µs per cpu_period
  std::optional<uint64_t> cpu_period; // µs (default 100,000)
  // LLM limits, passed to the LLM scheduler as the agent's flow limits.
  std::optional<double> llm_rpm;
  std::optional<double> llm_tpm;
  std::optional<uint64_t> llm_tokens;
  std::optional<double> llm_weight;
};

struct SpawnRequest {
  std::string name;
  std::string script;
  std::string python = "python3";
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  bool sandboxed = true;
  bool network = false;
  bool allow_spawn = false;  // may this agent spawn agents of its own
  SpawnLimits limits;
  RestartPolicy restart;  // restart, max_restarts, restart_window, restart_delay_ms, restart_max_delay_ms
};

inline constexpr uint64_t kMinMemoryBytes = 8ull << 20;

/// Parses a SPAWN payload. Every field has one type; unknown fields, wrong
/// types and impossible values are refused with a message naming the field.
Result<SpawnRequest> parse_spawn_request(const nlohmann::json& payload);

/// 1–63 of [A-Za-z0-9._-], starting with a letter or digit (it is also the
/// sandbox's hostname).
bool valid_agent_name(const std::string& name);

}  // namespace agentos::runtime

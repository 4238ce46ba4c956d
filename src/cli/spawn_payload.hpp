// `agentos spawn` options and the SPAWN request they make. Pure code.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace agentos::cli {

struct SpawnOptions {
  std::string name;
  std::string script;
  std::optional<std::string> memory;  // "256M"
  std::optional<std::string> cpu;     // "50%", "0.5"
  std::optional<uint64_t> pids;
  bool no_sandbox = false;
  bool network = false;
  std::optional<std::string> restart;  // no | on-failure | always
  std::optional<uint64_t> max_restarts;
  std::optional<std::string> python;
  std::vector<std::string> env;  // "K=V"
  std::vector<std::string> args;
};

/// The SPAWN payload for `opts`: only the fields the user gave (the kernel
/// applies its defaults to the rest), sizes and CPU shares converted to
/// bytes and µs, relative script/interpreter paths made absolute against
/// `cwd`. Errors name the option.
Result<nlohmann::json> build_spawn_payload(const SpawnOptions& opts,
                                           const std::filesystem::path& cwd);

/// Checks one --env value: "NAME=value" with a non-empty NAME.
Result<void> check_env_assignment(std::string_view text);

}  // namespace agentos::cli

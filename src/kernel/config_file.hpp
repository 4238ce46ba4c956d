// The declarative configuration file (agentos.toml, TOML): a [kernel] table
// of settings and [[agent]] tables that declare the agents the kernel keeps
// running. Parsing is pure; load_config_file() adds the file system checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/result.hpp"

namespace agentos {

/// The [kernel] table. Keys mirror the long flags with '_' for '-'; each
/// member is set only when the file names it. Relative paths (socket,
/// state_dir, runtime_dir, sdk_dir) are made absolute against the file's
/// directory. Values are range-checked as the flags are.
struct KernelSettings {
  std::optional<std::string> socket, log_level, state_dir, runtime_dir, cgroup_parent, sdk_dir;
  std::optional<size_t> max_connections;
  std::optional<size_t> max_output_bytes;  // integer or "4M"
  std::optional<bool> sandbox;             // `sandbox = false` or `no_sandbox = true`
  std::optional<int> kill_grace_ms;
  std::optional<std::string> llm_provider, llm_model, llm_base_url, llm_scheduler;
  std::optional<unsigned> llm_max_inflight;
  std::optional<double> llm_rpm, llm_tpm, llm_timeout;
  std::optional<uint32_t> stats_interval_ms;
  std::optional<uint64_t> log_max_bytes;  // integer or "10M"
  std::optional<uint32_t> log_max_files;

  /// For a reload to tell whether [kernel] changed (it applies only at start).
  bool operator==(const KernelSettings&) const = default;
};

struct ConfigFile {
  /// Absolute path of the file (lexically normalised, symlinks kept so a
  /// reload follows a swapped link). Empty for parse_config_text().
  std::string path;
  KernelSettings kernel;
  /// The [[agent]] tables in file order, as SPAWN payloads: keys exactly
  /// SPAWN's, limits.memory in bytes, limits.cpu ("50%") turned into
  /// limits.cpu_quota, script (and a python path with a '/') absolute. Each
  /// passed runtime::parse_spawn_request(); names are unique.
  std::vector<nlohmann::json> agents;
};

/// Reads and parses `path` (at most 1 MiB). Besides parse_config_text()'s
/// checks: the file must not be writable by group or others (it decides
/// what runs, possibly unsandboxed), and every script must be a regular
/// file. Errors read "<path>:<line>:<column>: <reason>" (I/O errors
/// "<path>: <reason>").
Result<ConfigFile> load_config_file(const std::string& path);

/// Parses TOML text. `source_name` names the file in errors, and its
/// directory (made absolute against the working directory) is the base of
/// relative paths. Unknown top-level tables or keys, unknown [kernel] keys,
/// out-of-range values, agents that SPAWN would refuse and duplicate agent
/// names are errors with the line and column of the offending node.
Result<ConfigFile> parse_config_text(std::string_view text, std::string_view source_name);

/// Docker-style byte sizes: "1048576", "512k", "256M", "1.5G", "1GiB",
/// "64 mb" (units are powers of 1024, case-insensitive: b k m g t p, with
/// an optional "i" and "b"). The result must be a whole number of bytes.
Result<uint64_t> parse_byte_size(std::string_view text);

/// What a reload does to the declared agents, matched by name.
struct ReloadPlan {
  std::vector<nlohmann::json> start;    ///< new names, in file order
  std::vector<std::string> stop;        ///< removed names, in reverse of their running order
  std::vector<nlohmann::json> restart;  ///< same name, different spec (the new spec), in file order
  std::vector<std::string> keep;        ///< same name, identical spec, in file order
};

/// Compares the specs now running (as last declared) with the wanted ones.
/// Specs are compared as JSON values, so any change to an agent's table —
/// even spelling out a default — restarts it. Fails if an entry has no
/// string "name" or a name appears twice in one list.
Result<ReloadPlan> plan_reload(const std::vector<nlohmann::json>& running_declared,
                               const std::vector<nlohmann::json>& wanted);

}  // namespace agentos

// The `agentos` commands. Each returns the process's exit code, or an Error
// that main() prints as "agentos: <message>" and exits 1 for.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/spawn_payload.hpp"
#include "util/result.hpp"

namespace agentos::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitTimeout = 124;  // `agentos wait --timeout` expired, as timeout(1)

struct GlobalOptions {
  std::string socket;
  bool json = false;
};

struct KillOptions {
  std::vector<std::string> names;
  std::optional<uint64_t> timeout_ms;
};

struct LogsOptions {
  std::string name;
  bool follow = false;
  bool timestamps = false;
  std::optional<uint64_t> tail;
};

struct EventsOptions {
  bool follow = false;
  uint64_t since = 0;
  std::optional<std::string> name;
};

struct ThinkOptions {
  std::string prompt;  // "-": read it from stdin
  std::optional<std::string> system;
  std::optional<std::string> model;
  std::optional<uint64_t> max_tokens;
  std::optional<double> temperature;
};

struct TopOptions {
  std::optional<uint64_t> iterations;  // set: print this many snapshots, no screen
  uint64_t interval_ms = 1000;
};

/// The socket to use: $AGENTOS_SOCKET, else /tmp/agentos.sock.
std::string default_socket_path();

Result<int> cmd_ps(const GlobalOptions& g, bool all);
Result<int> cmd_spawn(const GlobalOptions& g, const SpawnOptions& o);
Result<int> cmd_kill(const GlobalOptions& g, const KillOptions& o);
Result<int> cmd_pause(const GlobalOptions& g, const std::vector<std::string>& names);
Result<int> cmd_resume(const GlobalOptions& g, const std::vector<std::string>& names);
Result<int> cmd_wait(const GlobalOptions& g, const std::string& name,
                     std::optional<uint64_t> timeout_ms);
Result<int> cmd_logs(const GlobalOptions& g, const LogsOptions& o);
Result<int> cmd_events(const GlobalOptions& g, const EventsOptions& o);
Result<int> cmd_think(const GlobalOptions& g, const ThinkOptions& o);
Result<int> cmd_info(const GlobalOptions& g);
Result<int> cmd_top(const GlobalOptions& g, const TopOptions& o);

/// Writes `text` to a stdio stream and flushes it, so output interleaves in
/// order with the other stream and reaches a pipe at once.
void emit(std::FILE* stream, std::string_view text);

}  // namespace agentos::cli

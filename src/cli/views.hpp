// What the CLI prints for the kernel's replies: tables, status words, log
// and event lines. Pure functions of the reply JSON, so they are unit tested
// with canned replies.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace agentos::cli {

using nlohmann::json;

/// "SIGKILL" for 9; "signal 70" for a number without a name.
std::string signal_name(int signo);

/// How an agent is or ended, from its LIST entry: "running", "exited (3)",
/// "killed (SIGTERM)", "oom-killed".
std::string status_text(const json& agent);

/// The shell convention for an ended agent's LIST entry: its exit code, or
/// 128 + the signal that ended it.
int exit_code_of(const json& agent);

/// One sentence for `agentos wait`: "worker exited with code 3",
/// "worker was killed by SIGKILL (out of memory)".
std::string describe_end(const json& agent);

/// The `agentos ps` table from a LIST reply (an array). `stats` is a STATS
/// reply whose per-agent cpu_percent fills CPU%; null (or a reply without
/// agents) leaves the column "-".
std::string render_ps(const json& agents, const json& stats);

/// The `agentos top` screen from a STATS reply: two header lines (kernel,
/// LLM), a blank line, then the agents. Lines are cut to `width` (0: no cut).
std::string render_top(const json& stats, size_t width);

/// A LOGS line for the terminal: its text, prefixed by its timestamp when asked.
std::string format_log_line(const json& line, bool timestamps);

/// An EVENTS entry on one line: "<ts>  <name>[<id>]  <type>  key=value ...".
std::string format_event(const json& event);

/// `agentos info`: HELLO, plus the kernel section of STATS and the LIST
/// {"all": true} reply when they are available (else null).
std::string render_info(const std::string& socket_path, const json& hello, const json& stats,
                        const json& agents);

}  // namespace agentos::cli

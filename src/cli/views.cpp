#include "cli/views.hpp"

#include <string.h>  // sigabbrev_np (glibc)

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "cli/json_fields.hpp"
#include "cli/table.hpp"
#include "cli/units.hpp"

namespace agentos::cli {
namespace {

std::string or_dash(const std::optional<uint64_t>& v, std::string (*format)(uint64_t)) {
  return v ? format(*v) : "-";
}

std::string plain(uint64_t n) { return fmt::format("{}", n); }

// "12.3MiB / 256MiB"; the limit is "-" when there is none.
std::string mem_over_limit(std::optional<uint64_t> used, std::optional<uint64_t> limit) {
  return or_dash(used, format_bytes) + " / " + or_dash(limit, format_bytes);
}

// Prompt plus completion tokens of an agent's "llm" accounting.
std::optional<uint64_t> llm_tokens(const json& agent) {
  const json& llm = get_object(agent, "llm");
  auto in = get_uint(llm, "prompt_tokens");
  auto out = get_uint(llm, "completion_tokens");
  if (!in && !out) return std::nullopt;
  return in.value_or(0) + out.value_or(0);
}

// cpu_percent of each agent in a STATS reply, by id.
std::map<int64_t, double> cpu_by_id(const json& stats) {
  std::map<int64_t, double> out;
  for (const auto& a : get_array(stats, "agents")) {
    auto id = get_int(a, "id");
    auto cpu = get_number(a, "cpu_percent");
    if (id && cpu) out[*id] = *cpu;
  }
  return out;
}

std::string id_text(const json& agent) {
  auto id = get_int(agent, "id");
  return id ? fmt::format("{}", *id) : "?";
}

// A value of an event's detail field as it reads on a line.
std::string detail_value(const json& v) {
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    return s.find_first_of(" \t\"=") == std::string::npos && !s.empty() ? s : json(s).dump();
  }
  return v.dump();
}

}  // namespace

std::string signal_name(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signo);
}

std::string status_text(const json& agent) {
  const std::string status = get_string(agent, "status", "?");
  const auto code = get_int(agent, "exit_code");
  const auto sig = get_int(agent, "signal");
  if (status == "oom_killed" || get_bool(agent, "oom_killed")) return "oom-killed";
  if (status == "exited") return code ? fmt::format("exited ({})", *code) : "exited";
  if (status == "killed")
    return sig ? fmt::format("killed ({})", signal_name(static_cast<int>(*sig))) : "killed";
  return status;
}

int exit_code_of(const json& agent) {
  if (auto code = get_int(agent, "exit_code")) return static_cast<int>(*code & 0xFF);
  if (auto sig = get_int(agent, "signal")) return 128 + static_cast<int>(*sig);
  if (get_bool(agent, "oom_killed")) return 128 + 9;
  return 1;  // ended without a recorded cause: not a success
}

std::string describe_end(const json& agent) {
  const std::string name = get_string(agent, "name", "agent");
  if (auto code = get_int(agent, "exit_code"))
    return fmt::format("{} exited with code {}", name, *code);
  const auto sig = get_int(agent, "signal");
  const std::string by = sig ? signal_name(static_cast<int>(*sig)) : "a signal";
  if (get_bool(agent, "oom_killed"))
    return fmt::format("{} was killed by {} (out of memory)", name, by);
  if (sig) return fmt::format("{} was killed by {}", name, by);
  return fmt::format("{} ended ({})", name, get_string(agent, "status", "unknown status"));
}

std::string render_ps(const json& agents, const json& stats) {
  Table t({{"ID", Align::kRight},
           {"NAME"},
           {"PID", Align::kRight},
           {"STATE"},
           {"STATUS"},
           {"UPTIME", Align::kRight},
           {"CPU%", Align::kRight},
           {"MEM / LIMIT"},
           {"RESTARTS", Align::kRight},
           {"LLM-TOKENS", Align::kRight}});
  const auto cpu = cpu_by_id(stats);
  if (!agents.is_array()) return t.render();
  for (const auto& a : agents) {
    const bool running = get_bool(a, "running");
    const auto id = get_int(a, "id");
    const auto c = id ? cpu.find(*id) : cpu.end();
    t.add_row(
        {id_text(a), get_string(a, "name", "?"), running ? or_dash(get_uint(a, "pid"), plain) : "-",
         get_string(a, "state", "?"), status_text(a),
         or_dash(get_uint(a, "uptime_ms"), format_duration),
         running && c != cpu.end() ? format_percent(c->second) : "-",
         mem_over_limit(get_uint(a, "memory_bytes"), get_uint(get_object(a, "limits"), "memory")),
         or_dash(get_uint(a, "restarts"), plain), or_dash(llm_tokens(a), format_count)});
  }
  return t.render();
}

namespace {

std::string top_kernel_line(const json& k) {
  return fmt::format(
      "agentos_kernel pid {} · up {} · rss {} · fds {} · connections {} · agents {} running / {}",
      or_dash(get_uint(k, "pid"), plain), or_dash(get_uint(k, "uptime_ms"), format_duration),
      or_dash(get_uint(k, "rss_bytes"), format_bytes), or_dash(get_uint(k, "fds"), plain),
      or_dash(get_uint(k, "connections"), plain), or_dash(get_uint(k, "agents_running"), plain),
      or_dash(get_uint(k, "agents_total"), plain));
}

std::string top_llm_line(const json& llm) {
  return fmt::format(
      "LLM: queue {} · in flight {} · requests {} · errors {} · tokens {} in / {} out",
      or_dash(get_uint(llm, "queued"), plain), or_dash(get_uint(llm, "inflight"), plain),
      or_dash(get_uint(llm, "requests"), plain), or_dash(get_uint(llm, "errors"), plain),
      or_dash(get_uint(llm, "prompt_tokens"), format_count),
      or_dash(get_uint(llm, "completion_tokens"), format_count));
}

std::string throttled_text(const json& a) {
  const auto count = get_uint(a, "throttled_count");
  if (!count) return "-";
  if (*count == 0) return "0";
  return fmt::format("{} ({}ms)", *count, get_uint(a, "throttled_ms").value_or(0));
}

std::string pids_text(const json& a) {
  const auto limit = get_uint(a, "pids_limit");
  return or_dash(get_uint(a, "pids"), plain) + (limit ? fmt::format(" / {}", *limit) : "");
}

}  // namespace

std::string render_top(const json& stats, size_t width) {
  Table t({{"ID", Align::kRight},
           {"NAME"},
           {"STATE"},
           {"CPU%", Align::kRight},
           {"MEM / LIMIT"},
           {"PIDS"},
           {"THROTTLED", Align::kRight},
           {"OOM", Align::kRight},
           {"RESTARTS", Align::kRight},
           {"LLM-TOKENS", Align::kRight}});
  for (const auto& a : get_array(stats, "agents")) {
    const auto cpu = get_number(a, "cpu_percent");
    t.add_row({id_text(a), get_string(a, "name", "?"), get_string(a, "state", "?"),
               cpu ? format_percent(*cpu) : "-",
               mem_over_limit(get_uint(a, "memory_bytes"), get_uint(a, "memory_limit")),
               pids_text(a), throttled_text(a), or_dash(get_uint(a, "oom_kills"), plain),
               or_dash(get_uint(a, "restarts"), plain), or_dash(llm_tokens(a), format_count)});
  }
  const json& kernel = get_object(stats, "kernel");
  std::string out;
  for (const std::string& line :
       {top_kernel_line(kernel), top_llm_line(get_object(kernel, "llm"))}) {
    std::string_view shown = width > 0 ? cut_to_width(line, width) : std::string_view(line);
    while (!shown.empty() && shown.back() == ' ') shown.remove_suffix(1);
    out += shown;
    out += '\n';
  }
  out += '\n';
  return out + t.render(width);
}

std::string format_log_line(const json& line, bool timestamps) {
  const std::string text = get_string(line, "text");
  return timestamps ? get_string(line, "ts", "-") + " " + text : text;
}

std::string format_event(const json& event) {
  std::string out =
      fmt::format("{}  {}[{}]  {}", get_string(event, "ts", "-"), get_string(event, "name", "?"),
                  id_text(event), get_string(event, "type", "?"));
  static constexpr std::string_view kShown[] = {"seq", "ts", "mono_ms", "id", "name", "type"};
  if (!event.is_object()) return out;
  for (const auto& [key, value] : event.items()) {
    if (value.is_null() || std::find(std::begin(kShown), std::end(kShown), key) != std::end(kShown))
      continue;
    out += fmt::format("  {}={}", key, detail_value(value));
  }
  return out;
}

namespace {

std::string join(const json& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item.is_string() ? item.get<std::string>() : item.dump();
  }
  return out;
}

std::string llm_summary(const json& llm) {
  const std::string provider = get_string(llm, "provider");
  const std::string model = get_string(llm, "model");
  if (!get_bool(llm, "configured", true) || provider.empty()) {
    return "not configured (no API key): THINK answers with an error";
  }
  return model.empty() ? provider : fmt::format("{}, model {}", provider, model);
}

std::string kernel_process(const json& k) {
  return fmt::format(
      "pid {}, up {}, rss {}, fds {}, connections {}", or_dash(get_uint(k, "pid"), plain),
      or_dash(get_uint(k, "uptime_ms"), format_duration),
      or_dash(get_uint(k, "rss_bytes"), format_bytes), or_dash(get_uint(k, "fds"), plain),
      or_dash(get_uint(k, "connections"), plain));
}

// "2 running, 5 known" from STATS' kernel section, else by counting LIST.
std::string agent_counts(const json& kernel, const json& agents) {
  auto running = get_uint(kernel, "agents_running");
  auto total = get_uint(kernel, "agents_total");
  if ((!running || !total) && agents.is_array()) {
    running = static_cast<uint64_t>(std::count_if(
        agents.begin(), agents.end(), [](const json& a) { return get_bool(a, "running"); }));
    total = agents.size();
  }
  return fmt::format("{} running, {} known", or_dash(running, plain), or_dash(total, plain));
}

}  // namespace

std::string render_info(const std::string& socket_path, const json& hello, const json& stats,
                        const json& agents) {
  const json& kernel = get_object(stats, "kernel");
  const json& llm = get_object(hello, "llm");
  const auto agent_id = get_uint(hello, "agent_id").value_or(0);
  std::string out;
  auto row = [&](std::string_view key, const std::string& value) {
    out += fmt::format("{:<13}{}\n", key, value);
  };
  row("Socket:", socket_path);
  row("Kernel:", fmt::format("agentos_kernel {}, protocol {}", get_string(hello, "kernel", "?"),
                             or_dash(get_uint(hello, "protocol"), plain)));
  row("Caller:", agent_id == 0 ? "operator" : fmt::format("agent {}", agent_id));
  row("Features:", join(get_array(hello, "features"), " "));
  row("Max payload:", or_dash(get_uint(hello, "max_payload"), format_bytes));
  if (!kernel.empty()) row("Process:", kernel_process(kernel));
  row("Agents:", agent_counts(kernel, agents));
  row("LLM:", llm_summary(llm));
  row("LLM queue:",
      fmt::format("{} queued, {} in flight (at most {})", or_dash(get_uint(llm, "queued"), plain),
                  or_dash(get_uint(llm, "inflight"), plain),
                  or_dash(get_uint(llm, "max_inflight"), plain)));
  row("LLM usage:", fmt::format("{} requests, {} errors, {} prompt + {} completion tokens",
                                or_dash(get_uint(llm, "requests"), plain),
                                or_dash(get_uint(llm, "errors"), plain),
                                or_dash(get_uint(llm, "prompt_tokens"), plain),
                                or_dash(get_uint(llm, "completion_tokens"), plain)));
  return out;
}

}  // namespace agentos::cli

// agentos_kernel: read the config file, the environment and the flags into a
// KernelConfig, then run the Kernel. Nothing else lives here.
//
// Where a setting comes from, lowest priority first:
//   built-in defaults < config file [kernel] (--config FILE or AGENTOS_CONFIG)
//   < environment (AGENTOS_SOCKET, the AGENTOS_LLM_* / *_BASE_URL variables)
//   < flags given on the command line.
// A flag counts only when it is on the command line; its default never
// overrides the file or the environment.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "kernel/check.hpp"
#include "kernel/config_file.hpp"
#include "kernel/kernel.hpp"

namespace {

using agentos::KernelConfig;

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : fallback;
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("agentos");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

// The command line. Each setting given records how it changes the
// KernelConfig; they are applied after the file and the environment.
struct CommandLine {
  std::string config_path;
  std::string llm_provider, llm_model, llm_base_url;
  bool check = false;
  std::vector<std::function<void(KernelConfig&)>> overrides;
};

template <class T>
CLI::Option* add_setting(CLI::App& app, CommandLine& cl, const std::string& name,
                         std::function<void(KernelConfig&, const T&)> set,
                         const std::string& help) {
  return app.add_option_function<T>(
      name,
      [&cl, set](const T& value) {
        cl.overrides.push_back([set, value](KernelConfig& c) { set(c, value); });
      },
      help);
}

// "10M", "512k", "1048576" -> bytes, within [lo, hi].
CLI::Validator byte_size(uint64_t lo, uint64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        auto bytes = agentos::parse_byte_size(text);
        if (!bytes) return bytes.error().message();
        if (*bytes < lo || *bytes > hi)
          return fmt::format("{} bytes is not between {} and {}", *bytes, lo, hi);
        text = std::to_string(*bytes);
        return {};
      },
      "SIZE", "byte size");
}

void add_server_options(CLI::App& app, CommandLine& cl, const KernelConfig& d) {
  add_setting<std::string>(
      app, cl, "--socket", [](KernelConfig& c, const std::string& v) { c.socket_path = v; },
      "operator socket path (env AGENTOS_SOCKET)")
      ->default_str(d.socket_path);
  add_setting<std::string>(
      app, cl, "--log-level", [](KernelConfig& c, const std::string& v) { c.log_level = v; },
      "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->default_str(d.log_level);
  add_setting<std::string>(
      app, cl, "--state-dir", [](KernelConfig& c, const std::string& v) { c.state_dir = v; },
      "state directory (logs, database)");
  add_setting<std::string>(
      app, cl, "--runtime-dir", [](KernelConfig& c, const std::string& v) { c.runtime_dir = v; },
      "runtime directory (agent sockets)");
  add_setting<size_t>(
      app, cl, "--max-connections", [](KernelConfig& c, const size_t& v) { c.max_connections = v; },
      "connection limit")
      ->check(CLI::Range(size_t{1}, agentos::kMaxConnectionsMax))
      ->default_str(std::to_string(d.max_connections));
  add_setting<size_t>(
      app, cl, "--max-output-bytes",
      [](KernelConfig& c, const size_t& v) { c.max_output_bytes = v; },
      "per-connection queued output before reading pauses (bytes or 4M)")
      ->transform(byte_size(agentos::kOutputBytesMin, agentos::kOutputBytesMax))
      ->default_str(std::to_string(d.max_output_bytes));
  add_setting<uint32_t>(
      app, cl, "--stats-interval-ms",
      [](KernelConfig& c, const uint32_t& v) { c.stats_interval_ms = v; }, "STATS sampling period")
      ->check(CLI::Range(agentos::kStatsIntervalMsMin, agentos::kStatsIntervalMsMax))
      ->default_str(std::to_string(d.stats_interval_ms));
  add_setting<uint64_t>(
      app, cl, "--log-max-bytes", [](KernelConfig& c, const uint64_t& v) { c.log_max_bytes = v; },
      "agent log size before rotation (bytes or 10M)")
      ->transform(byte_size(agentos::kLogMaxBytesMin, agentos::kLogMaxBytesMax))
      ->default_str("10M");
  add_setting<uint32_t>(
      app, cl, "--log-max-files", [](KernelConfig& c, const uint32_t& v) { c.log_max_files = v; },
      "rotated agent log files kept")
      ->check(CLI::Range(uint32_t{1}, agentos::kLogMaxFilesMax))
      ->default_str(std::to_string(d.log_max_files));
}

void add_agent_options(CLI::App& app, CommandLine& cl, const KernelConfig& d) {
  app.add_flag_function(
      "--no-sandbox",
      [&cl](int64_t) {
        cl.overrides.push_back([](KernelConfig& c) { c.enable_sandboxing = false; });
      },
      "run every agent without the sandbox");
  add_setting<std::string>(
      app, cl, "--cgroup-parent",
      [](KernelConfig& c, const std::string& v) { c.cgroup_parent = v; },
      "cgroup under which agent cgroups are made (default: the kernel's own)");
  add_setting<std::string>(
      app, cl, "--sdk-dir", [](KernelConfig& c, const std::string& v) { c.sdk_dir = v; },
      "Python SDK directory exposed read-only to agents (PYTHONPATH)");
  add_setting<int>(
      app, cl, "--kill-grace-ms", [](KernelConfig& c, const int& v) { c.kill_grace_ms = v; },
      "SIGTERM→SIGKILL grace period for KILL and shutdown")
      ->check(CLI::Range(0, agentos::kKillGraceMsMax))
      ->default_str(std::to_string(d.kill_grace_ms));
}

void add_llm_options(CLI::App& app, CommandLine& cl, const KernelConfig& d) {
  app.add_option("--llm-provider", cl.llm_provider,
                 "gemini or openai (env AGENTOS_LLM_PROVIDER; default: from the API key present)")
      ->check(CLI::IsMember({"gemini", "openai"}));
  app.add_option("--llm-model", cl.llm_model, "default model (env AGENTOS_LLM_MODEL)");
  app.add_option("--llm-base-url", cl.llm_base_url,
                 "provider base URL (env GEMINI_BASE_URL / OPENAI_BASE_URL)");
  add_setting<unsigned>(
      app, cl, "--llm-max-inflight",
      [](KernelConfig& c, const unsigned& v) { c.llm.max_inflight = v; },
      "requests in flight to the provider")
      ->check(CLI::Range(1u, agentos::kLlmInflightMax))
      ->default_str(std::to_string(d.llm.max_inflight));
  add_setting<double>(
      app, cl, "--llm-rpm", [](KernelConfig& c, const double& v) { c.llm.rpm = v; },
      "global requests per minute (0: unlimited)")
      ->check(CLI::NonNegativeNumber);
  add_setting<double>(
      app, cl, "--llm-tpm", [](KernelConfig& c, const double& v) { c.llm.tpm = v; },
      "global tokens per minute (0: unlimited)")
      ->check(CLI::NonNegativeNumber);
  add_setting<double>(
      app, cl, "--llm-timeout", [](KernelConfig& c, const double& v) { c.llm.timeout_s = v; },
      "seconds per provider request")
      ->check(CLI::PositiveNumber);
  add_setting<std::string>(
      app, cl, "--llm-scheduler",
      [](KernelConfig& c, const std::string& v) { c.llm.scheduler = v; },
      "fair (token-fair queuing) or fifo (env AGENTOS_LLM_SCHEDULER)")
      ->check(CLI::IsMember({"fair", "fifo"}))
      ->default_str(d.llm.scheduler);
  add_setting<double>(
      app, cl, "--llm-anticipation-ms",
      [](KernelConfig& c, const double& v) { c.llm.anticipation_ms = v; },
      "fair scheduler: ms a freed slot is held for its flow's next request (0: off; env "
      "AGENTOS_LLM_ANTICIPATION_MS)")
      ->check(CLI::Range(0.0, 100.0))
      ->default_str(fmt::format("{}", d.llm.anticipation_ms));
}

// Defaults, then the config file, then the environment, then the flags.
agentos::Result<KernelConfig> configure(const CommandLine& cl) {
  std::optional<agentos::ConfigFile> file;
  const std::string path = !cl.config_path.empty() ? cl.config_path : env_or("AGENTOS_CONFIG", "");
  if (!path.empty()) file = AOS_TRY(agentos::load_config_file(path));
  auto cfg =
      AOS_TRY(agentos::layered_config(file, [](const char* name) { return std::getenv(name); }));
  for (const auto& set : cl.overrides) set(cfg);
  AOS_TRY_VOID(agentos::apply_llm_flags(cfg.llm, cl.llm_provider, cl.llm_model, cl.llm_base_url));
  if (cfg.sdk_dir.empty()) cfg.sdk_dir = agentos::default_sdk_dir();
  agentos::resolve_paths(cfg);
  return cfg;
}

std::string describe_config_file(const KernelConfig& cfg) {
  if (cfg.config_path.empty()) return "none (--config FILE or AGENTOS_CONFIG)";
  return fmt::format("{} ({} agents declared)", cfg.config_path, cfg.declared_agents.size());
}

// The reactor reads these through a signalfd; they must be blocked first.
void block_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int main(int argc, char** argv) {
  CommandLine cl;
  const KernelConfig defaults;
  CLI::App app{
      "agentos_kernel: runs AI agents as isolated processes and shares one LLM between them"};
  app.set_version_flag("--version", std::string("agentos_kernel ") + AGENTOS_VERSION);
  app.footer(
      "Priority: built-in defaults < config file [kernel] < environment < command-line flags.");
  app.add_option(
         "--config", cl.config_path,
         "TOML file: [kernel] settings (keys as the flags, '_' for '-') and [[agent]] declarations "
         "(env AGENTOS_CONFIG)")
      ->type_name("FILE");
  add_server_options(app, cl, defaults);
  add_agent_options(app, cl, defaults);
  add_llm_options(app, cl, defaults);
  app.add_flag("--check", cl.check,
               "print what this machine supports and the config file in use, then exit");
  CLI11_PARSE(app, argc, argv);

  auto configured = configure(cl);
  if (!configured) {
    std::cerr << "agentos_kernel: " << configured.error().message() << "\n";
    return 2;
  }
  const KernelConfig& cfg = *configured;
  if (cl.check) {
    auto report = agentos::check_machine(cfg);
    report["config_file"] = describe_config_file(cfg);
    std::cout << agentos::render_check(report);
    return 0;
  }
  setup_logging(cfg.log_level);
  spdlog::info("config file: {}", describe_config_file(cfg));

  block_signals();
  auto kernel = agentos::Kernel::create(cfg);
  if (!kernel) {
    spdlog::error("cannot start: {}", kernel.error().message());
    return 1;
  }
  if (auto r = (*kernel)->run(); !r) {
    spdlog::error("event loop failed: {}", r.error().message());
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}

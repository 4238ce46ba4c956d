// agentos_kernel: parse flags and environment into a KernelConfig, then run
// the Kernel. Nothing else lives here.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "kernel/check.hpp"
#include "kernel/kernel.hpp"

namespace {

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

}  // namespace

int main(int argc, char** argv) {
  agentos::KernelConfig cfg;
  cfg.socket_path = env_or("AGENTOS_SOCKET", cfg.socket_path.c_str());
  auto llm_env = agentos::llm::LlmConfig::from_env([](const char* n) { return std::getenv(n); });
  if (!llm_env) {
    std::cerr << "agentos_kernel: " << llm_env.error().message() << "\n";
    return 2;
  }
  cfg.llm = std::move(*llm_env);
  std::string llm_provider, llm_model, llm_base_url;
  bool check = false;
  bool no_sandbox = false;

  CLI::App app{"agentos_kernel: runs AI agents as isolated processes and shares one LLM between them"};
  app.set_version_flag("--version", std::string("agentos_kernel ") + AGENTOS_VERSION);
  app.add_option("--socket", cfg.socket_path, "operator socket path (env AGENTOS_SOCKET)")->capture_default_str();
  app.add_option("--log-level", cfg.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--state-dir", cfg.state_dir, "state directory (logs, database)");
  app.add_option("--runtime-dir", cfg.runtime_dir, "runtime directory (agent sockets)");
  app.add_option("--max-connections", cfg.max_connections, "connection limit")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))->capture_default_str();
  app.add_option("--max-output-bytes", cfg.max_output_bytes, "per-connection queued output before reading pauses")
      ->check(CLI::Range(size_t{64 * 1024}, size_t{1} << 32))->capture_default_str();
  app.add_flag("--no-sandbox", no_sandbox, "run every agent without the sandbox");
  app.add_option("--cgroup-parent", cfg.cgroup_parent, "cgroup under which agent cgroups are made (default: the kernel's own)");
  app.add_option("--sdk-dir", cfg.sdk_dir, "Python SDK directory exposed read-only to agents (PYTHONPATH)");
  app.add_option("--kill-grace-ms", cfg.kill_grace_ms, "SIGTERM→SIGKILL grace period for KILL and shutdown")
      ->check(CLI::Range(0, 3600000))->capture_default_str();
  app.add_option("--llm-provider", llm_provider, "gemini or openai (env AGENTOS_LLM_PROVIDER; default: from the API key present)")
      ->check(CLI::IsMember({"gemini", "openai"}));
  app.add_option("--llm-model", llm_model, "default model (env AGENTOS_LLM_MODEL)");
  app.add_option("--llm-base-url", llm_base_url, "provider base URL (env GEMINI_BASE_URL / OPENAI_BASE_URL)");
  app.add_option("--llm-max-inflight", cfg.llm.max_inflight, "requests in flight to the provider")
      ->check(CLI::Range(1u, 4096u))->capture_default_str();
  app.add_option("--llm-rpm", cfg.llm.rpm, "global requests per minute (0: unlimited)")->check(CLI::NonNegativeNumber);
  app.add_option("--llm-tpm", cfg.llm.tpm, "global tokens per minute (0: unlimited)")->check(CLI::NonNegativeNumber);
  app.add_option("--llm-timeout", cfg.llm.timeout_s, "seconds per provider request")->check(CLI::PositiveNumber);
  app.add_option("--llm-scheduler", cfg.llm.scheduler, "fair (token-fair queuing) or fifo (env AGENTOS_LLM_SCHEDULER)")
      ->check(CLI::IsMember({"fair", "fifo"}))->capture_default_str();
  app.add_flag("--check", check, "print what this machine supports and exit");
  CLI11_PARSE(app, argc, argv);
  cfg.enable_sandboxing = !no_sandbox;
  if (auto r = agentos::apply_llm_flags(cfg.llm, llm_provider, llm_model, llm_base_url); !r) {
    std::cerr << "agentos_kernel: " << r.error().message() << "\n";
    return 2;
  }
  if (cfg.sdk_dir.empty()) cfg.sdk_dir = agentos::default_sdk_dir();
  agentos::resolve_paths(cfg);

  if (check) {
    std::cout << agentos::render_check(agentos::check_machine(cfg));
    return 0;
  }
  setup_logging(cfg.log_level);

  // The reactor reads these through a signalfd; they must be blocked first.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

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

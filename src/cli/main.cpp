// agentos: the command-line client of agentos_kernel. Only CLI11 wiring
// here; the commands are in cmd_*.cpp and top.cpp.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <string_view>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "cli/spawn_payload.hpp"
#include "cli/units.hpp"

namespace {

using namespace agentos::cli;
using Run = std::function<agentos::Result<int>()>;

// Sets `out` when the option is given (CLI11 2.1 has no std::optional).
template <class T>
CLI::Option* add_optional(CLI::App* app, const std::string& flags, std::optional<T>& out,
                          const std::string& help) {
  return app->add_option_function<T>(
      flags, [&out](const T& v) { out = v; }, help);
}

// A CLI11 check from one of our parsers: usage errors name the bad value.
template <class F>
CLI::Validator checked_by(F parse, const std::string& what) {
  return CLI::Validator(
      [parse](std::string& s) -> std::string {
        auto r = parse(s);
        return r ? std::string() : r.error().context;
      },
      what);
}

void add_ps(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub = app.add_subcommand("ps", "List agents: running ones, or all with -a");
  auto all = std::make_shared<bool>(false);
  sub->add_flag("-a,--all", *all, "Include agents that have ended");
  sub->callback([&g, &run, all] { run = [&g, all] { return cmd_ps(g, *all); }; });
}

void add_spawn(CLI::App& app, const GlobalOptions& g, Run& run,
               const std::vector<std::string>& passthrough) {
  auto* sub = app.add_subcommand(
      "spawn", "Start an agent: agentos spawn NAME SCRIPT [options] [-- ARGS...]");
  auto o = std::make_shared<SpawnOptions>();
  sub->add_option("name", o->name, "Agent name (1-63 of [A-Za-z0-9._-])")->required();
  sub->add_option("script", o->script,
                  "Python script; a relative path is taken from the current directory")
      ->required();
  sub->add_option("args", o->args, "Arguments for the script (after --)");
  add_optional(sub, "-m,--memory", o->memory, "Memory limit: 512K, 256M, 1.5G or bytes")
      ->check(checked_by(parse_memory, "SIZE"));
  add_optional(sub, "-c,--cpu", o->cpu, "CPU limit: 50%, 150%, or CPUs such as 0.5")
      ->check(checked_by(parse_cpu, "CPU"));
  add_optional(sub, "-p,--pids", o->pids, "Maximum number of processes")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--no-sandbox", o->no_sandbox, "Run without namespaces, seccomp and Landlock");
  sub->add_flag("--network", o->network, "Keep the host network (default: none)");
  add_optional(sub, "--restart", o->restart, "Restart policy")
      ->check(CLI::IsMember({"no", "on-failure", "always"}));
  add_optional(sub, "--max-restarts", o->max_restarts,
               "Restarts allowed within the restart window");
  add_optional(sub, "--python", o->python, "Interpreter: a path or a name such as python3.11");
  sub->add_option("-e,--env", o->env, "Environment variable NAME=VALUE (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(checked_by(check_env_assignment, "NAME=VALUE"));
  sub->callback([&g, &run, o, &passthrough] {
    o->args.insert(o->args.end(), passthrough.begin(), passthrough.end());
    run = [&g, o] { return cmd_spawn(g, *o); };
  });
}

void add_kill(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub =
      app.add_subcommand("kill", "Stop agents: SIGTERM, then SIGKILL after the grace period");
  auto o = std::make_shared<KillOptions>();
  sub->add_option("names", o->names, "Agent names")->required();
  add_optional(sub, "-t,--timeout", o->timeout_ms,
               "Grace period in ms before SIGKILL (0: at once)");
  sub->callback([&g, &run, o] { run = [&g, o] { return cmd_kill(g, *o); }; });
}

void add_pause_resume(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto names = std::make_shared<std::vector<std::string>>();
  auto* pause = app.add_subcommand("pause", "Freeze agents (cgroup freezer)");
  pause->add_option("names", *names, "Agent names")->required();
  pause->callback([&g, &run, names] { run = [&g, names] { return cmd_pause(g, *names); }; });
  auto* resume = app.add_subcommand("resume", "Thaw paused agents");
  resume->add_option("names", *names, "Agent names")->required();
  resume->callback([&g, &run, names] { run = [&g, names] { return cmd_resume(g, *names); }; });
}

void add_wait(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub = app.add_subcommand(
      "wait", "Wait for an agent to end; exit with its exit code (128+signal if killed)");
  auto name = std::make_shared<std::string>();
  auto timeout = std::make_shared<std::optional<uint64_t>>();
  sub->add_option("name", *name, "Agent name")->required();
  add_optional(sub, "-t,--timeout", *timeout, "Give up after this many ms (exit code 124)");
  sub->callback([&g, &run, name, timeout] {
    run = [&g, name, timeout] { return cmd_wait(g, *name, *timeout); };
  });
}

void add_logs(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub = app.add_subcommand("logs", "Print an agent's output (stdout and stderr)");
  auto o = std::make_shared<LogsOptions>();
  sub->add_option("name", o->name, "Agent name")->required();
  sub->add_flag("-f,--follow", o->follow,
                "Keep printing new lines until the agent ends (Ctrl-C stops)");
  sub->add_flag("-t,--timestamps", o->timestamps, "Prefix each line with its UTC timestamp");
  add_optional(sub, "-n,--tail", o->tail, "Lines from the end (default 100, at most 10000)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{10000}));
  sub->callback([&g, &run, o] { run = [&g, o] { return cmd_logs(g, *o); }; });
}

void add_events(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub =
      app.add_subcommand("events", "Print lifecycle events (spawned, exited, restarted, ...)");
  auto o = std::make_shared<EventsOptions>();
  add_optional(sub, "name", o->name, "Only this agent's events");
  sub->add_flag("-f,--follow", o->follow, "Keep printing new events (Ctrl-C stops)");
  sub->add_option("--since", o->since, "Start at this sequence number");
  sub->callback([&g, &run, o] { run = [&g, o] { return cmd_events(g, *o); }; });
}

void add_top(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub =
      app.add_subcommand("top", "Live resource usage of the kernel and its agents (q quits)");
  auto o = std::make_shared<TopOptions>();
  add_optional(sub, "-n,--iterations", o->iterations,
               "Print this many snapshots and exit (no screen)")
      ->check(CLI::PositiveNumber);
  sub->add_option("-d,--interval", o->interval_ms, "Refresh interval in ms (default 1000)")
      ->check(CLI::Range(uint64_t{100}, uint64_t{3'600'000}));
  sub->callback([&g, &run, o] { run = [&g, o] { return cmd_top(g, *o); }; });
}

void add_think(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub =
      app.add_subcommand("think", "Ask the kernel's LLM; prints the answer (\"-\" reads stdin)");
  auto o = std::make_shared<ThinkOptions>();
  sub->add_option("prompt", o->prompt, "The prompt, or - to read it from stdin")->required();
  add_optional(sub, "--system", o->system, "System instruction");
  add_optional(sub, "--model", o->model, "Model (default: the kernel's)");
  add_optional(sub, "--max-tokens", o->max_tokens, "Completion token limit");
  add_optional(sub, "--temperature", o->temperature, "Sampling temperature");
  sub->callback([&g, &run, o] { run = [&g, o] { return cmd_think(g, *o); }; });
}

void add_info(CLI::App& app, const GlobalOptions& g, Run& run) {
  auto* sub =
      app.add_subcommand("info", "Kernel version, protocol, features, LLM and resource summary");
  sub->callback([&g, &run] { run = [&g] { return cmd_info(g); }; });
}

// CLI11 says "A subcommand is required" for a misspelt command too.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e) {
  if (app.get_subcommands().empty()) {
    const auto rest = app.remaining();
    if (!rest.empty()) return fmt::format("unknown command '{}'", rest.front());
    return "a command is required";
  }
  return e.what();
}

int run_cli(int argc, char** argv) {
  CLI::App app("agentos: control agents running under agentos_kernel", "agentos");
  GlobalOptions g{default_socket_path(), false};
  app.add_option("-s,--socket", g.socket,
                 "Kernel socket (default: $AGENTOS_SOCKET, else /tmp/agentos.sock)");
  app.add_flag("--json", g.json, "Print the kernel's JSON replies instead of tables");
  app.set_version_flag("--version", AGENTOS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the command
  Run run;
  // For spawn, everything after the first "--" is the agent's argv: CLI11
  // would read a "--" that follows a repeatable option (--env) as the end of
  // that option. Other commands leave "--" to CLI11 (think -- "-x").
  int own_argc = static_cast<int>(std::find(argv, argv + argc, std::string_view("--")) - argv);
  if (std::find(argv, argv + own_argc, std::string_view("spawn")) == argv + own_argc)
    own_argc = argc;
  const std::vector<std::string> passthrough(argv + std::min(own_argc + 1, argc), argv + argc);
  add_spawn(app, g, run, passthrough);
  for (auto add : {add_ps, add_kill, add_pause_resume, add_wait, add_logs, add_events, add_top,
                   add_think, add_info}) {
    add(app, g, run);
  }
  if (argc <= 1) {
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  try {
    app.parse(own_argc, argv);
    if (own_argc < argc && !app.got_subcommand("spawn")) throw CLI::ExtrasError({passthrough});
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "agentos: %s (see agentos --help)\n", usage_message(app, e).c_str());
    return kExitUsage;
  }
  auto result = run();
  if (!result) {
    std::fprintf(stderr, "agentos: %s\n", result.error().message().c_str());
    return kExitFailure;
  }
  return *result;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agentos: internal error: %s\n", e.what());
    return kExitFailure;
  }
}

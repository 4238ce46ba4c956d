#include "cli/spawn_payload.hpp"

#include <fmt/format.h>

#include "cli/units.hpp"

namespace agentos::cli {
namespace {

using nlohmann::json;

// A path as the kernel must see it: the kernel's cwd is not ours. "." parts
// are dropped; ".." is kept, since through a symlink it is not lexical.
std::string absolute_from(const std::string& path, const std::filesystem::path& cwd) {
  const std::filesystem::path given(path);
  const std::filesystem::path p = given.is_absolute() ? given : cwd / given;
  std::filesystem::path out;
  for (const auto& part : p) {
    if (part != ".") out /= part;
  }
  return out.string();
}

Result<json> build_limits(const SpawnOptions& opts) {
  json limits = json::object();
  if (opts.memory) {
    auto bytes = parse_memory(*opts.memory);
    if (!bytes) return std::unexpected(bytes.error().wrap("--memory"));
    limits["memory"] = *bytes;
  }
  if (opts.cpu) {
    auto quota = parse_cpu(*opts.cpu);
    if (!quota) return std::unexpected(quota.error().wrap("--cpu"));
    limits["cpu_quota"] = *quota;
  }
  if (opts.pids) {
    if (*opts.pids == 0) return make_error("--pids: must be greater than zero", EINVAL);
    limits["max_pids"] = *opts.pids;
  }
  return limits;
}

Result<json> build_env(const std::vector<std::string>& assignments) {
  json env = json::object();
  for (const auto& a : assignments) {
    if (auto ok = check_env_assignment(a); !ok) return std::unexpected(ok.error().wrap("--env"));
    const size_t eq = a.find('=');
    env[a.substr(0, eq)] = a.substr(eq + 1);  // a later --env of the same name wins
  }
  return env;
}

}  // namespace

Result<void> check_env_assignment(std::string_view text) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return make_error(fmt::format("expected NAME=VALUE, got '{}'", text), EINVAL);
  }
  return {};
}

Result<json> build_spawn_payload(const SpawnOptions& opts, const std::filesystem::path& cwd) {
  json p = {{"name", opts.name}, {"script", absolute_from(opts.script, cwd)}};
  json limits = AOS_TRY(build_limits(opts));
  if (!limits.empty()) p["limits"] = std::move(limits);
  json env = AOS_TRY(build_env(opts.env));
  if (!env.empty()) p["env"] = std::move(env);
  if (!opts.args.empty()) p["args"] = opts.args;
  if (opts.no_sandbox) p["sandboxed"] = false;
  if (opts.network) p["network"] = true;
  if (opts.restart) p["restart"] = *opts.restart;
  if (opts.max_restarts) p["max_restarts"] = *opts.max_restarts;
  if (opts.python) {
    // A bare name ("python3.11") is looked up by the kernel; a path is ours.
    const bool is_path = opts.python->find('/') != std::string::npos;
    p["python"] = is_path ? absolute_from(*opts.python, cwd) : *opts.python;
  }
  return p;
}

}  // namespace agentos::cli

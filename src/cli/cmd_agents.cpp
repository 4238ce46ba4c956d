// ps, spawn, kill, pause, resume, wait: the agent life-cycle commands.
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/views.hpp"

namespace agentos::cli {
namespace {

using ipc::Op;

constexpr const char* kDefaultSocket = "/tmp/agentos.sock";

// Prints the limits and sandbox steps the kernel could not apply, so that a
// limit asked for and silently missing is never mistaken for one in force.
void warn_not_enforced(const json& reply, bool sandbox_requested) {
  const json& enforced = get_object(reply, "enforced");
  for (const auto& [limit, why] :
       get_object(get_object(enforced, "cgroup"), "not_enforced").items()) {
    emit(stderr, fmt::format("agentos: warning: {} not enforced: {}\n", limit,
                             why.is_string() ? why.get<std::string>() : why.dump()));
  }
  if (!sandbox_requested) return;
  for (const auto& [step, why] : get_object(enforced, "not_applied").items()) {
    emit(stderr, fmt::format("agentos: warning: sandbox step {} not applied: {}\n", step,
                             why.is_string() ? why.get<std::string>() : why.dump()));
  }
}

// Sends `op` for each name; prints each name done (or its reply with
// --json), reports each failure and goes on with the next name.
Result<int> for_each_agent(const GlobalOptions& g, Op op, const std::vector<std::string>& names,
                           const json& extra, std::string_view done_field) {
  Client c = AOS_TRY(Client::connect(g.socket));
  int status = kExitOk;
  for (const auto& name : names) {
    json req = extra;
    req["name"] = name;
    auto reply = request(c, op, req);
    if (reply && !get_bool(*reply, done_field))
      reply = make_error(fmt::format("{} {}: refused", op_name(op), name));
    if (!reply) {
      emit(stderr, fmt::format("agentos: {}\n", reply.error().message()));
      status = kExitFailure;
      continue;
    }
    emit(stdout, (g.json ? reply->dump() : name) + "\n");
  }
  return status;
}

}  // namespace

std::string default_socket_path() {
  const char* env = std::getenv("AGENTOS_SOCKET");
  return env && *env ? env : kDefaultSocket;
}

void emit(std::FILE* stream, std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stream);
  std::fflush(stream);
}

Result<int> cmd_ps(const GlobalOptions& g, bool all) {
  Client c = AOS_TRY(Client::connect(g.socket));
  const std::string raw =
      AOS_TRY(c.call(Op::kList, all ? json{{"all", true}}.dump() : std::string()));
  json list = json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (list.is_discarded()) return make_error("the kernel's LIST reply is not JSON");
  AOS_TRY_VOID(check_reply(list, Op::kList, g.socket));
  if (g.json) {
    emit(stdout, raw + "\n");  // exactly what the kernel said
    return kExitOk;
  }
  // CPU% needs STATS; a kernel without it still gets its table.
  auto stats = request(c, Op::kStats, json::object());
  emit(stdout, render_ps(list, stats ? *stats : json()));
  return kExitOk;
}

Result<int> cmd_spawn(const GlobalOptions& g, const SpawnOptions& o) {
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  if (ec) return make_error("cannot read the current directory", ec.value());
  json payload = AOS_TRY(build_spawn_payload(o, cwd));
  Client c = AOS_TRY(Client::connect(g.socket));
  json reply = AOS_TRY(request(c, Op::kSpawn, payload));
  if (get_string(reply, "status") != "running")
    return make_error("SPAWN did not start the agent: " + reply.dump());
  warn_not_enforced(reply, !o.no_sandbox);
  if (g.json) {
    emit(stdout, reply.dump() + "\n");
  } else {
    emit(stdout, fmt::format("{} started: id {}, pid {}\n", get_string(reply, "name", o.name),
                             get_int(reply, "id").value_or(0), get_int(reply, "pid").value_or(0)));
  }
  return kExitOk;
}

Result<int> cmd_kill(const GlobalOptions& g, const KillOptions& o) {
  json extra = json::object();
  if (o.timeout_ms) extra["timeout_ms"] = *o.timeout_ms;
  return for_each_agent(g, Op::kKill, o.names, extra, "killed");
}

Result<int> cmd_pause(const GlobalOptions& g, const std::vector<std::string>& names) {
  return for_each_agent(g, Op::kPause, names, json::object(), "paused");
}

Result<int> cmd_resume(const GlobalOptions& g, const std::vector<std::string>& names) {
  return for_each_agent(g, Op::kResume, names, json::object(), "resumed");
}

Result<int> cmd_wait(const GlobalOptions& g, const std::string& name,
                     std::optional<uint64_t> timeout_ms) {
  Client c = AOS_TRY(Client::connect(g.socket));
  json req = {{"name", name}};
  if (timeout_ms) req["timeout_ms"] = *timeout_ms;
  json reply = AOS_TRY(c.call_json(Op::kWait, req));
  if (get_bool(reply, "timed_out")) {
    emit(stderr, fmt::format("agentos: {}\n", get_string(reply, "error", "timed out")));
    return kExitTimeout;
  }
  reply = AOS_TRY(check_reply(std::move(reply), Op::kWait, g.socket));
  emit(stdout, (g.json ? reply.dump() : describe_end(reply)) + "\n");
  return exit_code_of(reply);
}

}  // namespace agentos::cli

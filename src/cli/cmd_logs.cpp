// logs and events: reading what the kernel recorded, and following it.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/views.hpp"

namespace agentos::cli {
namespace {

using ipc::Op;

// How long one follow request may be held by the kernel (its maximum is
// 60 s); the reply then comes back empty and we ask again.
constexpr uint64_t kFollowWaitMs = 30000;

// Prints a LOGS reply: stdout lines to stdout, stderr lines to stderr (as
// `docker logs` does), or each line as one JSON object with --json.
void print_lines(const json& reply, const GlobalOptions& g, bool timestamps) {
  std::string out;
  std::string err;
  for (const auto& line : get_array(reply, "lines")) {
    if (g.json) {
      out += line.dump() + "\n";
    } else {
      (get_string(line, "stream") == "stderr" ? err : out) +=
          format_log_line(line, timestamps) + "\n";
    }
  }
  if (!err.empty()) emit(stderr, err);
  if (!out.empty()) emit(stdout, out);
}

Result<json> next_offset(const json& reply, std::string_view what) {
  const json* next = field(reply, "next");
  if (!next || next->is_null())
    return make_error(fmt::format("the kernel's {} reply has no 'next'", what));
  return *next;
}

}  // namespace

Result<int> cmd_logs(const GlobalOptions& g, const LogsOptions& o) {
  Client c = AOS_TRY(Client::connect(g.socket));
  json req = {{"name", o.name}};
  if (o.tail) req["tail"] = *o.tail;
  json reply = AOS_TRY(request(c, Op::kLogs, req));
  print_lines(reply, g, o.timestamps);
  if (!o.follow) return kExitOk;
  // Follow this agent record by id: a new agent taking the name is not it.
  json follow = {{"wait_ms", kFollowWaitMs}};
  if (auto id = get_int(reply, "id")) {
    follow["id"] = *id;
  } else {
    follow["name"] = o.name;
  }
  for (;;) {
    if (!get_bool(reply, "running") && get_array(reply, "lines").empty()) return kExitOk;
    follow["since"] = AOS_TRY(next_offset(reply, "LOGS"));
    reply = AOS_TRY(request(c, Op::kLogs, follow));
    if (get_bool(reply, "truncated")) {
      emit(stderr, "agentos: some lines were rotated out of the log before they could be read\n");
    }
    print_lines(reply, g, o.timestamps);
  }
}

Result<int> cmd_events(const GlobalOptions& g, const EventsOptions& o) {
  Client c = AOS_TRY(Client::connect(g.socket));
  json req = {{"since", o.since}};
  if (o.name) req["name"] = *o.name;
  if (o.follow) req["wait_ms"] = kFollowWaitMs;
  for (;;) {
    json reply = AOS_TRY(request(c, Op::kEvents, req));
    const json& events = get_array(reply, "events");
    std::string out;
    for (const auto& e : events) out += (g.json ? e.dump() : format_event(e)) + "\n";
    emit(stdout, out);
    // Without -f, page on until the kernel has nothing more.
    if (!o.follow && events.empty()) return kExitOk;
    req["since"] = AOS_TRY(next_offset(reply, "EVENTS"));
  }
}

}  // namespace agentos::cli

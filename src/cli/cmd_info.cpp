// info and think.
#include <iostream>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/json_fields.hpp"
#include "cli/views.hpp"

namespace agentos::cli {
namespace {

using ipc::Op;

Result<std::string> read_stdin() {
  std::string text{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  if (std::cin.bad()) return make_error("cannot read the prompt from stdin");
  return text;
}

Result<json> think_payload(const ThinkOptions& o) {
  json p = {{"prompt", o.prompt == "-" ? AOS_TRY(read_stdin()) : o.prompt}};
  if (get_string(p, "prompt").empty()) return make_error("the prompt is empty");
  if (o.system) p["system"] = *o.system;
  if (o.model) p["model"] = *o.model;
  if (o.max_tokens) p["max_tokens"] = *o.max_tokens;
  if (o.temperature) p["temperature"] = *o.temperature;
  return p;
}

}  // namespace

Result<int> cmd_info(const GlobalOptions& g) {
  Client c = AOS_TRY(Client::connect(g.socket));
  json hello = AOS_TRY(request(c, Op::kHello, nullptr));
  // STATS and LIST add to the picture; a kernel without STATS still answers.
  auto stats = request(c, Op::kStats, json::object());
  auto agents = request(c, Op::kList, json{{"all", true}});
  if (g.json) {
    json out = {{"socket", g.socket}, {"hello", hello}};
    if (stats) out["kernel"] = get_object(*stats, "kernel");
    emit(stdout, out.dump() + "\n");
  } else {
    emit(stdout, render_info(g.socket, hello, stats ? *stats : json(), agents ? *agents : json()));
  }
  return kExitOk;
}

Result<int> cmd_think(const GlobalOptions& g, const ThinkOptions& o) {
  json payload = AOS_TRY(think_payload(o));
  Client c = AOS_TRY(Client::connect(g.socket));
  json reply = AOS_TRY(request(c, Op::kThink, payload));
  if (g.json) {
    emit(stdout, reply.dump() + "\n");
    return kExitOk;
  }
  std::string content = get_string(reply, "content");
  if (content.empty() || content.back() != '\n') content += '\n';
  emit(stdout, content);
  return kExitOk;
}

}  // namespace agentos::cli

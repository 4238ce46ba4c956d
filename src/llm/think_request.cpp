#include "llm/think_request.hpp"

#include <nlohmann/json.hpp>

namespace agentos::llm {
namespace {

using nlohmann::json;

constexpr size_t kMaxModelName = 128;

std::unexpected<Error> field_error(std::string_view field, std::string_view expected, const json& got) {
  return make_error("THINK: \"" + std::string(field) + "\" must be " + std::string(expected) + ", got " +
                    got.type_name());
}

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxModelName) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == '_' || c == ':' || c == '/';
    if (!ok) return false;
  }
  return true;
}

Result<ChatMessage> parse_message(const json& m, size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "]";
  if (!m.is_object()) return field_error(where, "an object", m);
  auto role = m.find("role");
  if (role == m.end() || !role->is_string()) return make_error("THINK: " + where + ".role must be a string");
  auto content = m.find("content");
  if (content == m.end() || !content->is_string()) {
    return make_error("THINK: " + where + ".content must be a string");
  }
  ChatMessage out{role->get<std::string>(), content->get<std::string>()};
  if (out.role != "system" && out.role != "user" && out.role != "assistant") {
    return make_error("THINK: " + where + ".role must be system, user or assistant, got '" + out.role + "'");
  }
  return out;
}

Result<void> parse_messages(const json& j, ThinkRequest& req) {
  auto it = j.find("messages");
  if (it == j.end()) return {};
  if (!it->is_array()) return field_error("messages", "an array", *it);
  if (it->empty()) return make_error("THINK: \"messages\" is empty");
  for (size_t i = 0; i < it->size(); ++i) req.messages.push_back(AOS_TRY(parse_message((*it)[i], i)));
  return {};
}

Result<void> parse_prompt(const json& j, ThinkRequest& req) {
  auto it = j.find("prompt");
  if (it == j.end()) return {};
  if (!it->is_string()) return field_error("prompt", "a string", *it);
  if (!req.messages.empty()) return make_error("THINK: give either \"prompt\" or \"messages\", not both");
  req.messages.push_back({"user", it->get<std::string>()});
  if (req.messages.back().content.empty()) return make_error("THINK: empty prompt");
  return {};
}

Result<void> parse_options(const json& j, ThinkRequest& req) {
  if (auto it = j.find("system"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return field_error("system", "a string", *it);
    req.system = it->get<std::string>();
  }
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return field_error("model", "a string", *it);
    req.model = it->get<std::string>();
    if (!valid_model_name(req.model)) {
      return make_error("THINK: \"model\" must be 1-128 characters of [A-Za-z0-9._:/-]");
    }
  }
  if (auto it = j.find("temperature"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) return field_error("temperature", "a number", *it);
    const double t = it->get<double>();
    if (!(t >= 0 && t <= 2)) return make_error("THINK: \"temperature\" must be between 0 and 2");
    req.temperature = t;
  }
  if (auto it = j.find("max_tokens"); it != j.end() && !it->is_null()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0) {
      return make_error("THINK: \"max_tokens\" must be a positive integer");
    }
    req.max_tokens = it->get<uint64_t>();
  }
  return {};
}

bool is_structured(const json& j) { return j.is_object() && (j.contains("prompt") || j.contains("messages")); }

}  // namespace

Result<ThinkRequest> parse_think_payload(std::string_view payload) {
  json j = json::parse(payload, nullptr, /*allow_exceptions=*/false);
  ThinkRequest req;
  if (j.is_discarded() || !is_structured(j)) {
    if (payload.empty()) return make_error("THINK: empty prompt");
    req.messages.push_back({"user", std::string(payload)});
    return req;
  }
  AOS_TRY_VOID(parse_messages(j, req));
  AOS_TRY_VOID(parse_prompt(j, req));
  AOS_TRY_VOID(parse_options(j, req));
  bool has_user = false;
  for (const auto& m : req.messages) has_user = has_user || m.role != "system";
  if (!has_user) return make_error("THINK: no user or assistant message to answer");
  return req;
}

uint64_t estimate_prompt_tokens(const ThinkRequest& request) {
  constexpr uint64_t kPerMessage = 4;
  uint64_t bytes = request.system.size();
  uint64_t tokens = request.system.empty() ? 0 : kPerMessage;
  for (const auto& m : request.messages) {
    bytes += m.content.size();
    tokens += kPerMessage;
  }
  return tokens + (bytes + 3) / 4;
}

}  // namespace agentos::llm

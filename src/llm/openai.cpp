#include "llm/openai.hpp"

namespace agentos::llm {

using nlohmann::json;
using namespace provider_detail;

namespace {

json build_messages(const ThinkRequest& request) {
  json messages = json::array();
  if (!request.system.empty()) messages.push_back({{"role", "system"}, {"content", request.system}});
  for (const auto& m : request.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
  return messages;
}

ProviderFailure parse_error(long status, const std::string& raw) {
  ProviderFailure f{classify_status(status), {}, {}};
  const json body = json::parse(raw, nullptr, false);
  const json* err = member(body, "error");
  std::string message;
  std::string code;
  if (err != nullptr && err->is_object()) {
    message = string_member(*err, "message").value_or("");
    code = string_member(*err, "code").value_or(string_member(*err, "type").value_or(""));
  } else if (err != nullptr && err->is_string()) {
    message = err->get<std::string>();  // llama.cpp / some proxies
  }
  if (message.empty()) message = body_excerpt(raw);
  // OpenAI answers 429 both for rate limits and for an exhausted billing
  // quota; retrying the latter only burns the retry budget.
  if (status == 429 && code == "insufficient_quota") {
    f.kind = FailureKind::quota_exhausted;
    f.message = "OpenAI quota exhausted (insufficient_quota): " + message;
  } else {
    f.message = "OpenAI HTTP " + std::to_string(status) + ": " + message;
  }
  return f;
}

Usage parse_usage(const json& body) {
  Usage u;
  const json* usage = member(body, "usage");
  if (usage == nullptr) return u;
  u.prompt_tokens = u64_member(*usage, "prompt_tokens").value_or(0);
  u.completion_tokens = u64_member(*usage, "completion_tokens").value_or(0);
  u.total_tokens = u64_member(*usage, "total_tokens").value_or(u.prompt_tokens + u.completion_tokens);
  return u;
}

ProviderResult parse_success(const json& body, const std::string& model) {
  const json* choices = member(body, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty()) {
    return std::unexpected(ProviderFailure{FailureKind::fatal, "OpenAI returned no choices", {}});
  }
  const json& first = (*choices)[0];
  const json* message = member(first, "message");
  if (message == nullptr) {
    return std::unexpected(ProviderFailure{FailureKind::fatal, "OpenAI choice has no message", {}});
  }
  Completion c;
  c.content = string_member(*message, "content").value_or("");  // null when only tool calls/refusal
  if (c.content.empty()) c.content = string_member(*message, "refusal").value_or("");
  c.finish_reason = string_member(first, "finish_reason").value_or("stop");
  c.model = string_member(body, "model").value_or(model);
  c.usage = parse_usage(body);
  return c;
}

}  // namespace

OpenAiProvider::OpenAiProvider(const LlmConfig& config)
    : base_url_(config.base_url),
      api_key_(config.api_key),
      timeout_(static_cast<int64_t>(config.timeout_s * 1000)) {}

Result<HttpRequest> OpenAiProvider::build(const ThinkRequest& request, const std::string& model) const {
  json body = {{"model", model}, {"messages", build_messages(request)}};
  if (request.temperature) body["temperature"] = *request.temperature;
  if (request.max_tokens) body["max_tokens"] = *request.max_tokens;
  HttpRequest http;
  http.url = base_url_ + "/chat/completions";
  http.headers = {"Content-Type: application/json"};
  if (!api_key_.empty()) http.headers.push_back("Authorization: Bearer " + api_key_);
  http.body = dump(body);
  http.timeout = timeout_;
  return http;
}

ProviderResult OpenAiProvider::parse(const HttpResponse& response, const std::string& model) const {
  if (!response.transport_error.empty()) return std::unexpected(transport_failure("OpenAI", response));
  if (response.status < 200 || response.status > 299) {
    ProviderFailure f = parse_error(response.status, response.body);
    f.retry_after = parse_retry_after(response.retry_after, std::time(nullptr));
    return std::unexpected(std::move(f));
  }
  const json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return std::unexpected(ProviderFailure{
        FailureKind::fatal, "OpenAI returned malformed JSON: " + body_excerpt(response.body), {}});
  }
  return parse_success(body, model);
}

}  // namespace agentos::llm

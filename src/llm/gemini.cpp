#include "llm/gemini.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace agentos::llm {

using nlohmann::json;
using namespace provider_detail;

namespace gemini_detail {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.size() < 2 || text.back() != 's') return std::nullopt;
  text.remove_suffix(1);
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(seconds) || seconds < 0) {
    return std::nullopt;
  }
  return retry_delay_from_seconds(seconds);
}

std::string normalise_finish_reason(std::string_view reason) {
  if (reason == "STOP") return "stop";
  if (reason == "MAX_TOKENS") return "length";
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
      reason == "PROHIBITED_CONTENT" || reason == "SPII") {
    return "content_filter";
  }
  std::string out(reason);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace gemini_detail

namespace {

bool valid_gemini_model(const std::string& model) {
  // The model is a URL path segment; '/' or ':' would change the endpoint.
  return model.find_first_of("/:") == std::string::npos;
}

json build_contents(const ThinkRequest& request, std::string& system) {
  json contents = json::array();
  for (const auto& m : request.messages) {
    if (m.role == "system") {
      system += (system.empty() ? "" : "\n\n") + m.content;
      continue;
    }
    const char* role = m.role == "assistant" ? "model" : "user";
    contents.push_back({{"role", role}, {"parts", json::array({{{"text", m.content}}})}});
  }
  return contents;
}

/// The error status, message and the RetryInfo/QuotaFailure details.
ProviderFailure parse_error(long status, const std::string& raw) {
  ProviderFailure f{classify_status(status), {}, {}};
  const json body = json::parse(raw, nullptr, false);
  const json* err = member(body, "error");
  std::string message = err ? string_member(*err, "message").value_or("") : "";
  if (message.empty()) message = body_excerpt(raw);
  const json* details = err ? member(*err, "details") : nullptr;
  std::string daily_quota;
  if (details != nullptr && details->is_array()) {
    for (const auto& d : *details) {
      const std::string type = string_member(d, "@type").value_or("");
      if (type.ends_with("google.rpc.RetryInfo")) {
        if (auto delay = string_member(d, "retryDelay")) f.retry_after = gemini_detail::parse_duration(*delay);
      } else if (type.ends_with("google.rpc.QuotaFailure")) {
        const json* violations = member(d, "violations");
        if (violations == nullptr || !violations->is_array()) continue;
        for (const auto& v : *violations) {
          const std::string id = string_member(v, "quotaId").value_or("");
          if (id.find("PerDay") != std::string::npos) daily_quota = id;
        }
      }
    }
  }
  if (status == 429 && !daily_quota.empty()) {
    f.kind = FailureKind::quota_exhausted;
    f.message = "Gemini daily quota exhausted (" + daily_quota + "): " + message;
  } else {
    f.message = "Gemini HTTP " + std::to_string(status) + ": " + message;
  }
  return f;
}

Usage parse_usage(const json& body) {
  Usage u;
  const json* meta = member(body, "usageMetadata");
  if (meta == nullptr) return u;
  u.prompt_tokens = u64_member(*meta, "promptTokenCount").value_or(0);
  // Thinking models bill thoughtsTokenCount as output too.
  u.completion_tokens =
      u64_member(*meta, "candidatesTokenCount").value_or(0) + u64_member(*meta, "thoughtsTokenCount").value_or(0);
  u.total_tokens = u64_member(*meta, "totalTokenCount").value_or(u.prompt_tokens + u.completion_tokens);
  return u;
}

ProviderResult parse_success(const json& body, const std::string& model) {
  const json* candidates = member(body, "candidates");
  if (candidates == nullptr || !candidates->is_array() || candidates->empty()) {
    const json* feedback = member(body, "promptFeedback");
    const std::string reason = feedback ? string_member(*feedback, "blockReason").value_or("") : "";
    if (!reason.empty()) return std::unexpected(ProviderFailure{FailureKind::fatal, "Gemini blocked the prompt: " + reason, {}});
    return std::unexpected(ProviderFailure{FailureKind::fatal, "Gemini returned no candidates", {}});
  }
  const json& first = (*candidates)[0];
  Completion c;
  const json* content = member(first, "content");
  const json* parts = content ? member(*content, "parts") : nullptr;
  if (parts != nullptr && parts->is_array()) {
    for (const auto& p : *parts) c.content += string_member(p, "text").value_or("");
  }
  c.finish_reason = gemini_detail::normalise_finish_reason(string_member(first, "finishReason").value_or("STOP"));
  c.model = string_member(body, "modelVersion").value_or(model);
  c.usage = parse_usage(body);
  return c;
}

}  // namespace

GeminiProvider::GeminiProvider(const LlmConfig& config)
    : base_url_(config.base_url),
      api_key_(config.api_key),
      timeout_(static_cast<int64_t>(config.timeout_s * 1000)) {}

Result<HttpRequest> GeminiProvider::build(const ThinkRequest& request, const std::string& model) const {
  if (!valid_gemini_model(model)) return make_error("THINK: Gemini model names cannot contain '/' or ':'");
  std::string system = request.system;
  json body = {{"contents", build_contents(request, system)}};
  if (!system.empty()) body["systemInstruction"] = {{"parts", json::array({{{"text", system}}})}};
  json generation = json::object();
  if (request.temperature) generation["temperature"] = *request.temperature;
  if (request.max_tokens) generation["maxOutputTokens"] = *request.max_tokens;
  if (!generation.empty()) body["generationConfig"] = std::move(generation);
  HttpRequest http;
  http.url = base_url_ + "/v1beta/models/" + model + ":generateContent";
  http.headers = {"Content-Type: application/json", "x-goog-api-key: " + api_key_};
  http.body = dump(body);
  http.timeout = timeout_;
  return http;
}

ProviderResult GeminiProvider::parse(const HttpResponse& response, const std::string& model) const {
  if (!response.transport_error.empty()) return std::unexpected(transport_failure("Gemini", response));
  if (response.status < 200 || response.status > 299) {
    ProviderFailure f = parse_error(response.status, response.body);
    // Both the header and RetryInfo are hints; honour the longer one.
    auto header = parse_retry_after(response.retry_after, std::time(nullptr));
    if (header && (!f.retry_after || *header > *f.retry_after)) f.retry_after = header;
    return std::unexpected(std::move(f));
  }
  const json body = json::parse(response.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return std::unexpected(ProviderFailure{
        FailureKind::fatal, "Gemini returned malformed JSON: " + body_excerpt(response.body), {}});
  }
  return parse_success(body, model);
}

}  // namespace agentos::llm

#include "llm/provider.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "llm/gemini.hpp"
#include "llm/openai.hpp"

namespace agentos::llm {

Result<std::unique_ptr<LlmProvider>> make_provider(const LlmConfig& config) {
  if (config.provider == "gemini") return std::make_unique<GeminiProvider>(config);
  if (config.provider == "openai") return std::make_unique<OpenAiProvider>(config);
  return make_error("unknown LLM provider '" + config.provider + "' (use gemini or openai)");
}

namespace provider_detail {

using nlohmann::json;

std::chrono::milliseconds retry_delay_from_seconds(double seconds) {
  constexpr double kMaxSeconds = 24 * 3600;
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(std::clamp(seconds, 0.0, kMaxSeconds) * 1000)));
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::time_t now_wall) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r' || value.back() == '\n')) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  double seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc{} && end == value.data() + value.size()) {
    if (!std::isfinite(seconds) || seconds < 0) return std::nullopt;
    return retry_delay_from_seconds(seconds);
  }
  // curl_getdate parses the three HTTP-date formats; it wants a C string.
  const std::string text(value);
  const time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  return retry_delay_from_seconds(static_cast<double>(when) - static_cast<double>(now_wall));
}

FailureKind classify_status(long status) {
  if (status == 429) return FailureKind::rate_limited;
  if (status == 408 || (status >= 500 && status <= 599)) return FailureKind::retryable;
  return FailureKind::fatal;
}

ProviderFailure transport_failure(std::string_view provider, const HttpResponse& response) {
  std::string what = response.timed_out ? "timed out" : "transport error";
  return {FailureKind::retryable, std::string(provider) + " request " + what + ": " + response.transport_error, {}};
}

std::string body_excerpt(std::string_view body) {
  constexpr size_t kMax = 200;
  std::string out;
  for (char c : body.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (body.size() > kMax) out += "...";
  return out.empty() ? "(empty body)" : out;
}

const json* member(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::optional<std::string> string_member(const json& j, std::string_view key) {
  const json* m = member(j, key);
  if (m == nullptr || !m->is_string()) return std::nullopt;
  return m->get<std::string>();
}

std::optional<uint64_t> u64_member(const json& j, std::string_view key) {
  const json* m = member(j, key);
  if (m == nullptr || !m->is_number_unsigned()) return std::nullopt;
  return m->get<uint64_t>();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace provider_detail
}  // namespace agentos::llm

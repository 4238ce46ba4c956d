#include "llm/llm_config.hpp"

#include <charconv>
#include <fmt/format.h>
#include <cmath>
#include <string_view>
#include <type_traits>

namespace agentos::llm {
namespace {

using Getenv = std::function<const char*(const char*)>;

std::string env_or(const Getenv& getenv_fn, const char* name, std::string fallback = {}) {
  const char* v = getenv_fn(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::move(fallback);
}

std::string strip_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

template <class T>
Result<void> read_number(const Getenv& getenv_fn, const char* name, T& out) {
  const std::string text = env_or(getenv_fn, name);
  if (text.empty()) return {};
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool bad = ec != std::errc{} || end != text.data() + text.size();
  if constexpr (std::is_floating_point_v<T>) bad = bad || !std::isfinite(value) || value < 0;
  if (bad) {
    return make_error(std::string(name) + "=" + text + ": expected a non-negative number");
  }
  out = value;
  return {};
}

Result<void> read_limits(const Getenv& g, LlmConfig& c) {
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_MAX_INFLIGHT", c.max_inflight));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_RPM", c.rpm));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_TPM", c.tpm));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_TIMEOUT_S", c.timeout_s));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_MAX_QUEUE", c.max_queue_per_flow));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_QUEUE_TIMEOUT_S", c.queue_timeout_s));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_MAX_RETRIES", c.max_retries));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_RETRY_BUDGET_S", c.retry_budget_s));
  AOS_TRY_VOID(read_number(g, "AGENTOS_LLM_ANTICIPATION_MS", c.anticipation_ms));
  if (const char* s = g("AGENTOS_LLM_SCHEDULER"); s && *s) c.scheduler = s;
  return {};
}

std::string pick_provider(const Getenv& g) {
  std::string named = env_or(g, "AGENTOS_LLM_PROVIDER");
  if (!named.empty()) return named;
  if (!env_or(g, "GEMINI_API_KEY").empty() || !env_or(g, "GOOGLE_API_KEY").empty()) return "gemini";
  if (!env_or(g, "OPENAI_API_KEY").empty()) return "openai";
  return {};
}

bool finite_non_negative(double v) { return std::isfinite(v) && v >= 0; }

}  // namespace

Result<LlmConfig> LlmConfig::from_env(const Getenv& getenv_fn) {
  LlmConfig c;
  c.provider = pick_provider(getenv_fn);
  if (c.provider == "gemini") {
    c.api_key = env_or(getenv_fn, "GEMINI_API_KEY", env_or(getenv_fn, "GOOGLE_API_KEY"));
    c.base_url = env_or(getenv_fn, "GEMINI_BASE_URL", kGeminiDefaultUrl);
    c.model = env_or(getenv_fn, "AGENTOS_LLM_MODEL", kGeminiDefaultModel);
  } else if (c.provider == "openai") {
    c.api_key = env_or(getenv_fn, "OPENAI_API_KEY");
    c.base_url = env_or(getenv_fn, "OPENAI_BASE_URL", kOpenAiDefaultUrl);
    c.model = env_or(getenv_fn, "AGENTOS_LLM_MODEL", kOpenAiDefaultModel);
  }
  c.base_url = strip_trailing_slashes(std::move(c.base_url));
  AOS_TRY_VOID(read_limits(getenv_fn, c));
  return c;
}

Result<void> LlmConfig::validate() const {
  if (provider.empty()) return {};
  if (provider != "gemini" && provider != "openai") {
    return make_error("unknown LLM provider '" + provider + "' (use gemini or openai)");
  }
  if (provider == "gemini" && api_key.empty()) {
    return make_error("gemini provider needs GEMINI_API_KEY or GOOGLE_API_KEY");
  }
  if (!base_url.starts_with("http://") && !base_url.starts_with("https://")) {
    return make_error("LLM base URL '" + base_url + "' must start with http:// or https://");
  }
  if (model.empty()) return make_error("LLM model name is empty");
  if (max_inflight == 0) return make_error("LLM max_inflight must be at least 1");
  if (max_queue_per_flow == 0) return make_error("LLM max_queue_per_flow must be at least 1");
  if (scheduler != "fair" && scheduler != "fifo") {
    return make_error("LLM scheduler '" + scheduler + "' is not one of: fair, fifo");
  }
  for (double v : {rpm, tpm, retry_budget_s, backoff_base_s, backoff_max_s}) {
    if (!finite_non_negative(v)) return make_error("LLM rate/retry limits must be finite and >= 0");
  }
  // A hold is meant to cover a caller's reply-to-next-request round trip;
  // seconds of idle slots would only waste capacity.
  if (!finite_non_negative(anticipation_ms) || anticipation_ms > kMaxAnticipationMs) {
    return make_error(fmt::format("LLM anticipation_ms must be between 0 and {:g}", kMaxAnticipationMs));
  }
  if (!(timeout_s > 0) || !(queue_timeout_s > 0)) {
    return make_error("LLM timeout_s and queue_timeout_s must be > 0");
  }
  return {};
}

nlohmann::json LlmConfig::describe() const {
  return {{"provider", provider.empty() ? nlohmann::json(nullptr) : nlohmann::json(provider)},
          {"model", model},
          {"base_url", base_url},
          {"key_set", !api_key.empty()},
          {"max_inflight", max_inflight},
          {"rpm", rpm},
          {"tpm", tpm},
          {"timeout_s", timeout_s},
          {"max_queue_per_flow", max_queue_per_flow},
          {"scheduler", scheduler},
          {"anticipation_ms", anticipation_ms},
          {"queue_timeout_s", queue_timeout_s},
          {"max_retries", max_retries},
          {"retry_budget_s", retry_budget_s}};
}

}  // namespace agentos::llm

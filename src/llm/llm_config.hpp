// Configuration of the shared LLM service: which provider, where, and the
// global limits the scheduler enforces.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "util/result.hpp"

namespace agentos::llm {

/// Everything LlmService needs to reach a provider. Rates of 0 mean
/// unlimited. The API key never leaves this struct (describe() omits it).
struct LlmConfig {
  std::string provider;  ///< "" (not configured), "gemini" or "openai"
  std::string model;     ///< default model; a THINK payload may override it
  std::string base_url;  ///< gemini: host root; openai: ends in /v1
  std::string api_key;   ///< may be empty for a local OpenAI-compatible server
  unsigned max_inflight = 8;
  double rpm = 0, tpm = 0;
  double timeout_s = 60;  ///< per HTTP attempt
  unsigned max_queue_per_flow = 64;
  /// "fair" (token-fair queuing between flows) or "fifo" (arrival order
  /// across all flows; for comparison in benchmarks).
  std::string scheduler = "fair";
  /// Fair mode: how long a slot freed by a flow with nothing queued is held
  /// for that flow's next request while others wait (Scheduler file
  /// comment); 0 turns it off.
  double anticipation_ms = 2;
  double queue_timeout_s = 120;
  unsigned max_retries = 4;
  double retry_budget_s = 60;  ///< no retry starts later than this after the first attempt
  double backoff_base_s = 0.5;
  double backoff_max_s = 30;

  static constexpr const char* kGeminiDefaultUrl = "https://generativelanguage.googleapis.com";
  static constexpr const char* kOpenAiDefaultUrl = "https://api.openai.com/v1";
  static constexpr const char* kGeminiDefaultModel = "gemini-2.0-flash";
  static constexpr const char* kOpenAiDefaultModel = "gpt-4o-mini";
  static constexpr double kMaxAnticipationMs = 100;

  /// Reads GEMINI_API_KEY, GOOGLE_API_KEY, OPENAI_API_KEY,
  /// AGENTOS_LLM_PROVIDER, AGENTOS_LLM_MODEL, GEMINI_BASE_URL,
  /// OPENAI_BASE_URL and the numeric knobs AGENTOS_LLM_MAX_INFLIGHT, _RPM,
  /// _TPM, _TIMEOUT_S, _MAX_QUEUE, _QUEUE_TIMEOUT_S, _MAX_RETRIES,
  /// _RETRY_BUDGET_S, _ANTICIPATION_MS and AGENTOS_LLM_SCHEDULER. Without
  /// AGENTOS_LLM_PROVIDER the provider follows the key that is present
  /// (Gemini first). Fails on an unparsable number.
  static Result<LlmConfig> from_env(const std::function<const char*(const char*)>& getenv_fn);

  /// Checks provider name, URL scheme and limits; the error says what to fix.
  [[nodiscard]] Result<void> validate() const;

  /// provider, model, base_url, key_set and limits — never the key itself.
  [[nodiscard]] nlohmann::json describe() const;

  [[nodiscard]] bool configured() const { return !provider.empty(); }
};

}  // namespace agentos::llm

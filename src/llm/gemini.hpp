// Google Gemini generateContent (v1beta REST).
#pragma once

#include <optional>
#include <string>

#include "llm/provider.hpp"

namespace agentos::llm {

class GeminiProvider final : public LlmProvider {
 public:
  explicit GeminiProvider(const LlmConfig& config);

  [[nodiscard]] std::string_view name() const override { return "gemini"; }
  /// POST {base_url}/v1beta/models/{model}:generateContent, key in x-goog-api-key.
  [[nodiscard]] Result<HttpRequest> build(const ThinkRequest& request, const std::string& model) const override;
  [[nodiscard]] ProviderResult parse(const HttpResponse& response, const std::string& model) const override;

 private:
  std::string base_url_;
  std::string api_key_;
  std::chrono::milliseconds timeout_;
};

namespace gemini_detail {
/// google.protobuf.Duration JSON ("42s", "1.5s") → milliseconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
/// Gemini finishReason → the OpenAI-style vocabulary (STOP → stop, ...).
std::string normalise_finish_reason(std::string_view reason);
}  // namespace gemini_detail

}  // namespace agentos::llm

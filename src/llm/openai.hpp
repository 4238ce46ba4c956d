// OpenAI-compatible chat completions (OpenAI, vLLM, llama.cpp, Ollama).
#pragma once

#include <string>

#include "llm/provider.hpp"

namespace agentos::llm {

class OpenAiProvider final : public LlmProvider {
 public:
  explicit OpenAiProvider(const LlmConfig& config);

  [[nodiscard]] std::string_view name() const override { return "openai"; }
  /// POST {base_url}/chat/completions; "Authorization: Bearer" only when a key is set.
  [[nodiscard]] Result<HttpRequest> build(const ThinkRequest& request, const std::string& model) const override;
  [[nodiscard]] ProviderResult parse(const HttpResponse& response, const std::string& model) const override;

 private:
  std::string base_url_;
  std::string api_key_;
  std::chrono::milliseconds timeout_;
};

}  // namespace agentos::llm

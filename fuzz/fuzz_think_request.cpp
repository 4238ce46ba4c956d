// The THINK payload: parse_think_payload, then the HTTP request both
// providers would build from it.
//
// Oracle: a parsed request obeys the documented rules (messages never empty,
// known roles, an answerable message, valid options); both providers' request
// bodies are valid JSON whatever bytes the prompt held (the prompt may be
// invalid UTF-8: it is plain text, not JSON); errors serialise as JSON.
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "llm/gemini.hpp"
#include "llm/openai.hpp"
#include "llm/think_request.hpp"

namespace {

using agentos::llm::ThinkRequest;

void check_request(const ThinkRequest& r) {
  FUZZ_CHECK(!r.messages.empty());
  bool answerable = false;
  for (const auto& m : r.messages) {
    FUZZ_CHECK(m.role == "system" || m.role == "user" || m.role == "assistant");
    answerable = answerable || m.role != "system";
  }
  FUZZ_CHECK(answerable);
  if (r.temperature) FUZZ_CHECK(*r.temperature >= 0 && *r.temperature <= 2);
  if (r.max_tokens) FUZZ_CHECK(*r.max_tokens >= 1);
  FUZZ_CHECK(r.model.size() <= 128);
  FUZZ_CHECK(agentos::llm::estimate_prompt_tokens(r) >= r.messages.size());
}

void check_build(const agentos::llm::LlmProvider& provider, const ThinkRequest& r, const std::string& model) {
  auto http = provider.build(r, model);
  if (!http) {
    agentos::fuzz::check_error_serialises(http.error().message());
    return;
  }
  const auto body = nlohmann::json::parse(http->body, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!body.is_discarded() && body.is_object());
  FUZZ_CHECK(!http->url.empty());
}

agentos::llm::LlmConfig config(const char* provider, const char* base_url) {
  agentos::llm::LlmConfig c;
  c.provider = provider;
  c.base_url = base_url;
  c.api_key = "fuzz-key";
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const agentos::llm::GeminiProvider gemini(config("gemini", "https://gemini.invalid"));
  static const agentos::llm::OpenAiProvider openai(config("openai", "https://openai.invalid/v1"));
  auto request = agentos::llm::parse_think_payload(agentos::fuzz::as_view(data, size));
  if (!request) {
    agentos::fuzz::check_error_serialises(request.error().message());
    return 0;
  }
  check_request(*request);
  const std::string model = request->model.empty() ? "default-model" : request->model;
  check_build(gemini, *request, model);
  check_build(openai, *request, model);
  return 0;
}

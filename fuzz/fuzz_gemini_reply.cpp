// GeminiProvider::parse over arbitrary HTTP replies (status, Retry-After,
// body); the input format is in reply_input.hpp.
#include "llm/gemini.hpp"
#include "reply_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const agentos::llm::GeminiProvider provider([] {
    agentos::llm::LlmConfig c;
    c.provider = "gemini";
    return c;
  }());
  const auto response = agentos::fuzz::parse_reply_input(agentos::fuzz::as_view(data, size));
  agentos::fuzz::check_reply(provider.parse(response, "requested-model"), response);
  return 0;
}

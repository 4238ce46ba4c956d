// The THINK payload: plain text, or a JSON object with `prompt` or
// `messages` (+ optional `system`, `model`, `temperature`, `max_tokens`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace agentos::llm {

struct ChatMessage {
  std::string role;  ///< "system", "user" or "assistant"
  std::string content;
};

/// A provider-neutral chat request.
struct ThinkRequest {
  std::vector<ChatMessage> messages;  ///< never empty after parsing
  std::string system;                 ///< "" when none
  std::string model;                  ///< "" = the service's default
  std::optional<double> temperature;
  std::optional<uint64_t> max_tokens;
};

/// Parses a THINK payload. A JSON object with a "prompt" or "messages" key is
/// a structured request and is validated strictly (wrong types are errors
/// naming the field); anything else, including other JSON, is the prompt
/// text itself. Unknown keys are ignored for forward compatibility.
Result<ThinkRequest> parse_think_payload(std::string_view payload);

/// Rough prompt size in tokens (~4 bytes per token plus a few per message),
/// used to charge the scheduler before the provider reports real usage.
uint64_t estimate_prompt_tokens(const ThinkRequest& request);

}  // namespace agentos::llm

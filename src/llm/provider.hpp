// LlmProvider: how one vendor's API turns a ThinkRequest into HTTP and an
// HTTP response into a Completion or a classified failure. Pure: no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <expected>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "llm/http_message.hpp"
#include "llm/llm_config.hpp"
#include "llm/think_request.hpp"
#include "util/result.hpp"

namespace agentos::llm {

struct Usage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t total_tokens = 0;
};

struct Completion {
  std::string content;
  std::string model;          ///< as reported by the provider (or requested)
  std::string finish_reason;  ///< normalised: stop, length, content_filter, ...
  Usage usage;
};

enum class FailureKind {
  retryable,        ///< transport error, timeout, 5xx, 408
  rate_limited,     ///< 429: retry later and pause everyone meanwhile
  quota_exhausted,  ///< a daily/billing quota: report, never retry
  fatal,            ///< other 4xx, malformed reply: report, never retry
};

struct ProviderFailure {
  FailureKind kind = FailureKind::fatal;
  std::string message;
  std::optional<std::chrono::milliseconds> retry_after;  ///< server's hint
};

using ProviderResult = std::expected<Completion, ProviderFailure>;

class LlmProvider {
 public:
  virtual ~LlmProvider() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  /// The HTTP call for `request` with `model` (already defaulted).
  [[nodiscard]] virtual Result<HttpRequest> build(const ThinkRequest& request, const std::string& model) const = 0;
  /// Interprets a finished exchange (any status, or a transport error).
  [[nodiscard]] virtual ProviderResult parse(const HttpResponse& response, const std::string& model) const = 0;
};

/// The provider named by config.provider, or an error for an unknown name.
Result<std::unique_ptr<LlmProvider>> make_provider(const LlmConfig& config);

// Helpers shared by the provider implementations.
namespace provider_detail {

/// A provider's requested wait in seconds (finite, >= 0) as a delay, capped
/// at one day: nobody waits longer for one retry (the retry budget decides),
/// and the cap keeps the conversion defined for values like 1e300.
std::chrono::milliseconds retry_delay_from_seconds(double seconds);

/// Retry-After: delta-seconds (fractions accepted) or an HTTP-date relative
/// to `now_wall`. nullopt when absent or unparsable.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, std::time_t now_wall);

/// Status-only classification: 429 → rate_limited, 408/5xx → retryable,
/// other 4xx (and odd statuses) → fatal.
FailureKind classify_status(long status);

/// The failure for a transport error (always retryable).
ProviderFailure transport_failure(std::string_view provider, const HttpResponse& response);

/// A short printable excerpt of an unparsable body for error messages.
std::string body_excerpt(std::string_view body);

/// JSON that never throws on a wrong type: nullptr when missing/mistyped.
const nlohmann::json* member(const nlohmann::json& j, std::string_view key);
std::optional<std::string> string_member(const nlohmann::json& j, std::string_view key);
std::optional<uint64_t> u64_member(const nlohmann::json& j, std::string_view key);

/// Serialises without throwing on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const nlohmann::json& j);

}  // namespace provider_detail
}  // namespace agentos::llm

// Input format of the provider reply targets, readable in the seed files:
//
//   line 1: "<status> <Retry-After value>"   e.g. "429 30" or "200"
//           or "transport <message>" / "timeout <message>" for a failed exchange
//   rest:   the response body
#pragma once

#include <charconv>
#include <chrono>
#include <string_view>

#include "fuzz_check.hpp"
#include "llm/provider.hpp"

namespace agentos::fuzz {

inline llm::HttpResponse parse_reply_input(std::string_view in) {
  llm::HttpResponse r;
  const size_t eol = in.find('\n');
  std::string_view head = in.substr(0, eol);
  r.body = eol == std::string_view::npos ? "" : std::string(in.substr(eol + 1));
  const size_t space = head.find(' ');
  const std::string_view first = head.substr(0, space);
  const std::string_view rest = space == std::string_view::npos ? "" : head.substr(space + 1);
  if (first == "transport" || first == "timeout") {
    r.transport_error = rest.empty() ? "failed" : std::string(rest);
    r.timed_out = first == "timeout";
    return r;
  }
  std::from_chars(first.data(), first.data() + first.size(), r.status);
  r.retry_after = std::string(rest);
  return r;
}

/// What any provider's parse() must satisfy, whatever the server sent.
inline void check_reply(const llm::ProviderResult& result, const llm::HttpResponse& response) {
  using llm::FailureKind;
  const bool ok_status = response.status >= 200 && response.status <= 299;
  if (!response.transport_error.empty()) {
    FUZZ_CHECK(!result && result.error().kind == FailureKind::retryable);
    return;
  }
  if (!ok_status) FUZZ_CHECK(!result);
  if (result) {
    FUZZ_CHECK(!result->finish_reason.empty());
    return;
  }
  const auto& f = result.error();
  FUZZ_CHECK(!f.message.empty());
  if (f.retry_after) FUZZ_CHECK(f.retry_after->count() >= 0);
  if (f.kind == FailureKind::quota_exhausted || f.kind == FailureKind::rate_limited) {
    FUZZ_CHECK(response.status == 429);
  }
  // The LLM service sends the message back inside JSON (with invalid UTF-8
  // replaced); the serialisation must not throw either way.
  FUZZ_CHECK(!llm::provider_detail::dump(nlohmann::json{{"error", f.message}}).empty());
}

}  // namespace agentos::fuzz

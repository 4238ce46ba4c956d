// When to retry a failed provider call and how long to wait. Pure.
#pragma once

#include <chrono>
#include <optional>

#include "llm/provider.hpp"
#include "llm/token_bucket.hpp"

namespace agentos::llm {

struct RetryPolicy {
  unsigned max_retries = 4;
  std::chrono::nanoseconds budget = std::chrono::seconds(60);  ///< since the first attempt
  std::chrono::nanoseconds base = std::chrono::milliseconds(500);
  std::chrono::nanoseconds cap = std::chrono::seconds(30);
};

/// Delay before retry number `retry` (1 = first): exponential base·2^(retry-1)
/// capped at `cap`, with "equal jitter" (half fixed, half uniform by `u` in
/// [0,1)) so clients that failed together do not retry together; never
/// shorter than the server's `hint` (Retry-After / RetryInfo).
std::chrono::nanoseconds backoff_delay(const RetryPolicy& policy, unsigned retry,
                                       std::optional<std::chrono::milliseconds> hint, double u);

/// The retry time if the failure is retryable and both the count and the
/// time budget allow another attempt; nullopt to give up. `attempts` is how
/// many attempts have been made so far.
std::optional<TimePoint> retry_at(const RetryPolicy& policy, const ProviderFailure& failure, unsigned attempts,
                                  TimePoint first_attempt, TimePoint now, double u);

}  // namespace agentos::llm

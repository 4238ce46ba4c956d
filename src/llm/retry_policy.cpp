#include "llm/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace agentos::llm {

std::chrono::nanoseconds backoff_delay(const RetryPolicy& policy, unsigned retry,
                                       std::optional<std::chrono::milliseconds> hint, double u) {
  const double base = static_cast<double>(policy.base.count());
  const double exp = std::min(static_cast<double>(policy.cap.count()),
                              base * std::pow(2.0, static_cast<double>(retry > 0 ? retry - 1 : 0)));
  const auto jittered = std::chrono::nanoseconds(static_cast<int64_t>(exp / 2 + u * exp / 2));
  if (hint && *hint > jittered) return *hint;
  return jittered;
}

std::optional<TimePoint> retry_at(const RetryPolicy& policy, const ProviderFailure& failure, unsigned attempts,
                                  TimePoint first_attempt, TimePoint now, double u) {
  if (failure.kind != FailureKind::retryable && failure.kind != FailureKind::rate_limited) return std::nullopt;
  if (attempts > policy.max_retries) return std::nullopt;
  const TimePoint when = now + backoff_delay(policy, attempts, failure.retry_after, u);
  if (when - first_attempt > policy.budget) return std::nullopt;
  return when;
}

}  // namespace agentos::llm

// A per-minute rate limit as a token bucket. Time is passed in, never read,
// so tests drive it with a fake clock.
#pragma once

#include <chrono>

namespace agentos::llm {

using TimePoint = std::chrono::steady_clock::time_point;

/// Capacity = one minute's worth (a burst of `per_minute`), refilled
/// continuously. The level may go negative: usage corrections after a
/// request completes are charged even when they exceed what is left, and
/// that debt delays later takers. A default-constructed bucket is unlimited.
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double per_minute, TimePoint now);

  [[nodiscard]] bool unlimited() const { return per_minute_ <= 0; }
  /// True if `amount` may be taken now. An amount above capacity passes once
  /// the bucket is full, so oversized requests are slowed, not starved.
  [[nodiscard]] bool can_take(double amount, TimePoint now) const;
  /// When can_take(amount) becomes true (now if it already is).
  [[nodiscard]] TimePoint available_at(double amount, TimePoint now) const;
  /// Removes `amount` (negative: gives it back, capped at capacity).
  void charge(double amount, TimePoint now);
  [[nodiscard]] double level(TimePoint now) const;
  [[nodiscard]] double per_minute() const { return per_minute_; }

 private:
  double per_minute_ = 0;
  double level_ = 0;
  TimePoint updated_{};
};

}  // namespace agentos::llm

#include "llm/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace agentos::llm {
namespace {
double minutes(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count() / 60.0; }
}  // namespace

TokenBucket::TokenBucket(double per_minute, TimePoint now)
    : per_minute_(per_minute), level_(per_minute), updated_(now) {}

double TokenBucket::level(TimePoint now) const {
  if (unlimited()) return 0;
  const double elapsed = now > updated_ ? minutes(now - updated_) : 0.0;
  return std::min(per_minute_, level_ + elapsed * per_minute_);
}

bool TokenBucket::can_take(double amount, TimePoint now) const {
  if (unlimited()) return true;
  return level(now) >= std::min(amount, per_minute_);
}

TimePoint TokenBucket::available_at(double amount, TimePoint now) const {
  if (can_take(amount, now)) return now;
  const double missing = std::min(amount, per_minute_) - level(now);
  const auto wait = std::chrono::duration<double>(missing / per_minute_ * 60.0);
  // Round up so that waking at the returned time finds enough tokens.
  return now + std::chrono::ceil<std::chrono::steady_clock::duration>(wait) + std::chrono::microseconds(1);
}

void TokenBucket::charge(double amount, TimePoint now) {
  if (unlimited()) return;
  level_ = std::min(per_minute_, level(now) - amount);
  updated_ = std::max(updated_, now);
}

}  // namespace agentos::llm

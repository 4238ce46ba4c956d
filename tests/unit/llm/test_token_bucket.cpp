#include "llm/token_bucket.hpp"

#include <gtest/gtest.h>

#include "llm/retry_policy.hpp"

namespace agentos::llm {
namespace {

using namespace std::chrono_literals;

const TimePoint t0 = TimePoint{} + 1000s;

TEST(TokenBucket, DefaultIsUnlimited) {
  TokenBucket b;
  EXPECT_TRUE(b.unlimited());
  EXPECT_TRUE(b.can_take(1e12, t0));
  b.charge(1e12, t0);
  EXPECT_TRUE(b.can_take(1e12, t0));
}

TEST(TokenBucket, StartsFullAndRefillsPerMinute) {
  TokenBucket b(60, t0);  // 1 per second
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(b.can_take(1, t0));
    b.charge(1, t0);
  }
  EXPECT_FALSE(b.can_take(1, t0));
  EXPECT_EQ(b.available_at(1, t0) - t0 >= 1s, true);
  EXPECT_LE(b.available_at(1, t0) - t0, 1001ms);
  EXPECT_FALSE(b.can_take(1, t0 + 999ms));
  EXPECT_TRUE(b.can_take(1, t0 + 1s));
  EXPECT_TRUE(b.can_take(1, b.available_at(1, t0)));
  EXPECT_NEAR(b.level(t0 + 10min), 60, 1e-9);  // capped at capacity
}

TEST(TokenBucket, OversizedRequestPassesWhenFull) {
  TokenBucket b(1000, t0);
  EXPECT_TRUE(b.can_take(5000, t0));  // larger than capacity: allowed once full
  b.charge(5000, t0);
  EXPECT_LT(b.level(t0), 0);  // debt
  EXPECT_FALSE(b.can_take(5000, t0 + 1min));
  EXPECT_TRUE(b.can_take(5000, t0 + 5min));
  EXPECT_TRUE(b.can_take(5000, b.available_at(5000, t0)));
}

TEST(TokenBucket, NegativeChargeRefundsUpToCapacity) {
  TokenBucket b(100, t0);
  b.charge(80, t0);
  b.charge(-30, t0);
  EXPECT_NEAR(b.level(t0), 50, 1e-9);
  b.charge(-500, t0);
  EXPECT_NEAR(b.level(t0), 100, 1e-9);
}

TEST(RetryPolicy, BackoffGrowsIsJitteredAndCapped) {
  RetryPolicy p{4, 60s, 1s, 8s};
  EXPECT_EQ(backoff_delay(p, 1, {}, 0.0), 500ms);  // equal jitter: [exp/2, exp)
  EXPECT_EQ(backoff_delay(p, 1, {}, 0.999999), std::chrono::nanoseconds(999999500));
  EXPECT_EQ(backoff_delay(p, 3, {}, 0.0), 2s);
  EXPECT_EQ(backoff_delay(p, 10, {}, 0.0), 4s);  // cap 8 s, halved
  EXPECT_EQ(backoff_delay(p, 1, 5000ms, 0.5), 5s);  // the server's hint wins when longer
}

TEST(RetryPolicy, OnlyRetryableKindsWithinCountAndBudget) {
  RetryPolicy p{2, 10s, 1s, 8s};
  const ProviderFailure server{FailureKind::retryable, "500", {}};
  EXPECT_TRUE(retry_at(p, server, 1, t0, t0, 0));
  EXPECT_TRUE(retry_at(p, server, 2, t0, t0, 0));
  EXPECT_FALSE(retry_at(p, server, 3, t0, t0, 0));  // 1 try + 2 retries done
  EXPECT_FALSE(retry_at(p, server, 1, t0, t0 + 9800ms, 0));  // would start after the 10 s budget
  const ProviderFailure limited{FailureKind::rate_limited, "429", 3000ms};
  EXPECT_EQ(retry_at(p, limited, 1, t0, t0, 0), t0 + 3s);
  EXPECT_FALSE(retry_at(p, {FailureKind::fatal, "400", {}}, 1, t0, t0, 0));
  EXPECT_FALSE(retry_at(p, {FailureKind::quota_exhausted, "day", 1000ms}, 1, t0, t0, 0));
  EXPECT_FALSE(retry_at(p, {FailureKind::rate_limited, "429", 30000ms}, 1, t0, t0, 0));  // hint beyond budget
}

}  // namespace
}  // namespace agentos::llm

#include "llm/scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace agentos::llm {
namespace {

using namespace std::chrono_literals;

const TimePoint t0 = TimePoint{} + 1000s;
constexpr FlowId A = 1, B = 2, C = 3;

Usage usage(uint64_t total) { return {total / 2, total - total / 2, total}; }

SchedulerLimits limits(unsigned inflight) {
  SchedulerLimits l;
  l.max_inflight = inflight;
  return l;
}

// Queues `n` requests of `est` tokens for `flow`; ids are flow*1000 + i.
void fill(Scheduler& s, FlowId flow, int n, uint64_t est, TimePoint now, uint64_t conn = 0) {
  for (int i = 0; i < n; ++i) ASSERT_TRUE(s.enqueue(flow * 1000 + static_cast<uint64_t>(i), flow, conn, est, now));
}

FlowId flow_of(RequestId id) { return id / 1000; }

// Serves one request at a time (max_inflight 1), completing each with the
// real usage `cost(flow)`; returns the flows in dispatch order.
template <class Cost>
std::vector<FlowId> serve(Scheduler& s, int n, TimePoint now, Cost cost) {
  std::vector<FlowId> order;
  for (int i = 0; i < n; ++i) {
    PollResult r = s.poll(now);
    if (r.dispatch.empty()) break;
    EXPECT_EQ(r.dispatch.size(), 1u);
    order.push_back(flow_of(r.dispatch[0]));
    s.complete(r.dispatch[0], usage(cost(flow_of(r.dispatch[0]))), now);
  }
  return order;
}

size_t count(const std::vector<FlowId>& v, FlowId f) { return static_cast<size_t>(std::count(v.begin(), v.end(), f)); }

TEST(Scheduler, InflightCapAndFifoWithinAFlow) {
  Scheduler s(limits(2), t0);
  fill(s, A, 5, 10, t0);
  PollResult r = s.poll(t0);
  EXPECT_EQ(r.dispatch, (std::vector<RequestId>{1000, 1001}));
  EXPECT_EQ(s.inflight(), 2u);
  EXPECT_TRUE(s.poll(t0).dispatch.empty());  // cap reached
  s.complete(1000, usage(10), t0);
  EXPECT_EQ(s.poll(t0).dispatch, (std::vector<RequestId>{1002}));
  EXPECT_EQ(s.queued(), 2u);
}

TEST(Scheduler, EqualFlowsAlternate) {
  Scheduler s(limits(1), t0);
  fill(s, A, 10, 100, t0);  // A asked first and for more
  fill(s, B, 10, 100, t0);
  auto order = serve(s, 20, t0, [](FlowId) { return 100; });
  ASSERT_EQ(order.size(), 20u);
  for (size_t i = 0; i + 1 < order.size(); i += 2) EXPECT_NE(order[i], order[i + 1]) << "at " << i;
}

TEST(Scheduler, FifoModeServesInArrivalOrderAcrossFlows) {
  SchedulerLimits l = limits(1);
  l.fair = false;
  Scheduler s(l, t0);
  fill(s, A, 4, 100, t0);
  fill(s, B, 1, 100, t0 + 1ms);
  auto order = serve(s, 5, t0 + 1ms, [](FlowId) { return 100; });
  // The fair scheduler would serve B second; FIFO makes it wait behind A.
  EXPECT_EQ(order, (std::vector<FlowId>{A, A, A, A, B}));
}

TEST(Scheduler, WeightsSplitTokensProportionally) {
  Scheduler s(limits(1), t0);
  s.set_flow_limits(A, {.weight = 2}, t0);
  fill(s, A, 40, 100, t0);
  fill(s, B, 40, 100, t0);
  auto order = serve(s, 30, t0, [](FlowId) { return 100; });
  EXPECT_NEAR(static_cast<double>(count(order, A)), 20.0, 1.0);
  EXPECT_NEAR(static_cast<double>(count(order, B)), 10.0, 1.0);
}

TEST(Scheduler, RealUsageCorrectsTheEstimate) {
  // Both flows look alike at dispatch (100 estimated prompt tokens), but A's
  // answers cost 1000 tokens each: A must get about a tenth of B's turns.
  Scheduler s(limits(1), t0);
  fill(s, A, 30, 100, t0);
  fill(s, B, 30, 100, t0);
  auto order = serve(s, 22, t0, [](FlowId f) { return f == A ? 1000 : 100; });
  EXPECT_LE(count(order, A), 3u);
  EXPECT_GE(count(order, B), 19u);
  EXPECT_NEAR(s.virtual_tokens(A), s.virtual_tokens(B), 1000.0);
}

TEST(Scheduler, IdleFlowDoesNotBankCredit) {
  Scheduler s(limits(1), t0);
  fill(s, A, 50, 100, t0);
  serve(s, 50, t0, [](FlowId) { return 100; });  // A alone: its counter is far ahead
  EXPECT_GT(s.virtual_tokens(A), 4000.0);
  // B was idle all along; when both are busy again they share, B does not
  // get 50 turns in a row to "catch up".
  fill(s, B, 20, 100, t0 + 1s);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(s.enqueue(1100 + static_cast<uint64_t>(i), A, 0, 100, t0 + 1s));
  auto order = serve(s, 10, t0 + 1s, [](FlowId) { return 100; });
  EXPECT_GE(count(order, A), 4u);
  EXPECT_GE(count(order, B), 4u);
}

TEST(Scheduler, ReturningFlowIsLiftedToTheBackloggedMinimum) {
  Scheduler s(limits(1), t0);
  fill(s, A, 5, 100, t0);
  serve(s, 3, t0, [](FlowId) { return 100; });
  const double a = s.virtual_tokens(A);
  ASSERT_TRUE(s.enqueue(1, C, 0, 100, t0));
  EXPECT_DOUBLE_EQ(s.virtual_tokens(C), a);
}

TEST(Scheduler, GlobalRpmBucket) {
  SchedulerLimits l = limits(10);
  l.rpm = 2;
  Scheduler s(l, t0);
  fill(s, A, 3, 10, t0);
  PollResult r = s.poll(t0);
  EXPECT_EQ(r.dispatch.size(), 2u);
  ASSERT_TRUE(r.wake.has_value());
  EXPECT_GE(*r.wake - t0, 30s);  // one request per 30 s
  EXPECT_LE(*r.wake - t0, 31s);
  EXPECT_TRUE(s.poll(t0 + 29s).dispatch.empty());
  EXPECT_EQ(s.poll(*r.wake).dispatch, (std::vector<RequestId>{1002}));
}

TEST(Scheduler, PerFlowRpmOnlyHoldsThatFlow) {
  Scheduler s(limits(10), t0);
  s.set_flow_limits(A, {.rpm = 1}, t0);
  fill(s, A, 3, 10, t0);
  fill(s, B, 3, 10, t0);
  PollResult r = s.poll(t0);
  EXPECT_EQ(r.dispatch.size(), 4u);  // one of A, all of B
  ASSERT_TRUE(r.wake.has_value());
  EXPECT_GE(*r.wake - t0, 59s);
  EXPECT_EQ(s.flow_stats(A)["queued"], 2);
}

TEST(Scheduler, GlobalTpmChargesRealUsage) {
  SchedulerLimits l = limits(10);
  l.tpm = 1000;
  Scheduler s(l, t0);
  fill(s, A, 5, 100, t0);
  PollResult r = s.poll(t0);
  ASSERT_EQ(r.dispatch.size(), 5u);  // 5 x 100 estimated fits in 1000
  for (RequestId id : r.dispatch) s.complete(id, usage(400), t0);  // really 2000: 1000 of debt
  fill(s, B, 1, 100, t0);
  r = s.poll(t0);
  EXPECT_TRUE(r.dispatch.empty());
  ASSERT_TRUE(r.wake.has_value());
  EXPECT_GE(*r.wake - t0, 60s);  // 1000 debt + 100 needed at 1000/min
  EXPECT_EQ(s.poll(*r.wake).dispatch, (std::vector<RequestId>{2000}));
}

TEST(Scheduler, TokenBudgetRejectsWithTheLimitNamed) {
  Scheduler s(limits(1), t0);
  s.set_flow_limits(A, {.token_budget = 250}, t0);
  fill(s, A, 3, 100, t0);
  auto order = serve(s, 2, t0, [](FlowId) { return 100; });
  EXPECT_EQ(order.size(), 2u);
  PollResult r = s.poll(t0);  // 200 used + 100 estimated > 250
  EXPECT_TRUE(r.dispatch.empty());
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_NE(r.rejected[0].reason.find("token budget exhausted"), std::string::npos);
  EXPECT_NE(r.rejected[0].reason.find("token_budget=250"), std::string::npos);
  // Once the budget is used up, new requests fail at once.
  ASSERT_TRUE(s.enqueue(9, A, 0, 10, t0));
  s.complete(s.poll(t0).dispatch.at(0), usage(100), t0);
  auto late = s.enqueue(10, A, 0, 10, t0);
  ASSERT_FALSE(late);
  EXPECT_NE(late.error().message().find("used 300 of 250"), std::string::npos);
  EXPECT_EQ(s.flow_stats(A)["errors"], 2);
}

TEST(Scheduler, BoundedQueuePerFlow) {
  SchedulerLimits l = limits(1);
  l.max_queue_per_flow = 2;
  Scheduler s(l, t0);
  fill(s, A, 2, 10, t0);
  auto full = s.enqueue(99, A, 0, 10, t0);
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message().find("max_queue_per_flow=2"), std::string::npos);
  EXPECT_TRUE(s.enqueue(100, B, 0, 10, t0));  // other flows are unaffected
}

TEST(Scheduler, QueueTimeoutNamesWhatBlockedIt) {
  SchedulerLimits l = limits(1);
  l.queue_timeout = 10s;
  Scheduler s(l, t0);
  fill(s, A, 2, 10, t0);
  PollResult r = s.poll(t0);
  ASSERT_EQ(r.dispatch.size(), 1u);  // 1000 holds the only slot
  ASSERT_TRUE(r.wake.has_value());
  EXPECT_EQ(*r.wake, t0 + 10s);  // the queue deadline
  EXPECT_TRUE(s.poll(t0 + 9s).rejected.empty());
  r = s.poll(t0 + 10s);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].id, 1001u);
  EXPECT_NE(r.rejected[0].reason.find("queue timeout"), std::string::npos);
  EXPECT_NE(r.rejected[0].reason.find("queue_timeout_s=10"), std::string::npos);
  EXPECT_NE(r.rejected[0].reason.find("max_inflight=1"), std::string::npos);
  EXPECT_TRUE(s.is_inflight(1000));  // dispatched work is never pre-empted
}

TEST(Scheduler, PauseHoldsEveryFlowUntilItEnds) {
  Scheduler s(limits(4), t0);
  fill(s, A, 1, 10, t0);
  fill(s, B, 1, 10, t0);
  s.pause_until(t0 + 5s);
  PollResult r = s.poll(t0 + 1s);
  EXPECT_TRUE(r.dispatch.empty());
  EXPECT_EQ(r.wake, t0 + 5s);
  EXPECT_NE(s.stats(t0 + 1s)["paused_for_ms"], nullptr);
  EXPECT_EQ(s.poll(t0 + 5s).dispatch.size(), 2u);
}

TEST(Scheduler, RetryGoesBackToTheHeadAfterItsDelay) {
  Scheduler s(limits(1), t0);
  fill(s, A, 3, 100, t0);
  ASSERT_EQ(s.poll(t0).dispatch, (std::vector<RequestId>{1000}));
  const double charged = s.virtual_tokens(A);
  s.retry(1000, t0 + 2s, t0);
  EXPECT_DOUBLE_EQ(s.virtual_tokens(A), charged - 100);  // estimate refunded
  EXPECT_FALSE(s.is_inflight(1000));
  PollResult r = s.poll(t0 + 1s);
  EXPECT_TRUE(r.dispatch.empty());  // FIFO: 1001 waits behind its retrying head
  EXPECT_EQ(r.wake, t0 + 2s);
  EXPECT_EQ(s.poll(t0 + 2s).dispatch, (std::vector<RequestId>{1000}));
  EXPECT_EQ(s.flow_stats(A)["retries"], 1);
}

TEST(Scheduler, CancelConnectionDropsQueuedAndInflight) {
  Scheduler s(limits(1), t0);
  fill(s, A, 2, 10, t0, /*conn=*/7);
  fill(s, B, 1, 10, t0, /*conn=*/8);
  ASSERT_EQ(s.poll(t0).dispatch.size(), 1u);
  auto ids = s.cancel_connection(7);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<RequestId>{1000, 1001}));
  EXPECT_EQ(s.inflight(), 0u);
  EXPECT_EQ(s.poll(t0).dispatch, (std::vector<RequestId>{2000}));
  EXPECT_EQ(s.flow_stats(A)["cancelled"], 2);
}

TEST(Scheduler, CancelFlowForgetsIt) {
  Scheduler s(limits(2), t0);
  fill(s, A, 3, 10, t0);
  fill(s, B, 1, 10, t0);
  ASSERT_EQ(s.poll(t0).dispatch.size(), 2u);
  auto ids = s.cancel_flow(A);
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(s.inflight(), 1u);  // B's request
  EXPECT_EQ(s.flow_stats(A)["requests"], 0);
  EXPECT_EQ(s.stats(t0)["flows"], 1);
  EXPECT_EQ(s.stats(t0)["cancelled"], 3);
}

TEST(Scheduler, StatsAddUp) {
  Scheduler s(limits(1), t0);
  fill(s, A, 2, 10, t0);
  RequestId first = s.poll(t0 + 1s).dispatch.at(0);
  RequestTiming t = s.complete(first, {30, 12, 42}, t0 + 3s);
  EXPECT_EQ(t.queued, 1s);
  EXPECT_EQ(t.in_service, 2s);
  RequestId second = s.poll(t0 + 3s).dispatch.at(0);
  s.fail(second, t0 + 4s);
  auto f = s.flow_stats(A);
  EXPECT_EQ(f["requests"], 2);
  EXPECT_EQ(f["completed"], 1);
  EXPECT_EQ(f["errors"], 1);
  EXPECT_EQ(f["prompt_tokens"], 30);
  EXPECT_EQ(f["completion_tokens"], 12);
  EXPECT_DOUBLE_EQ(f["queue_ms_total"].get<double>(), 4000.0);
  EXPECT_DOUBLE_EQ(f["provider_ms_total"].get<double>(), 3000.0);
  EXPECT_EQ(s.stats(t0)["completed"], 1);
}

}  // namespace
}  // namespace agentos::llm

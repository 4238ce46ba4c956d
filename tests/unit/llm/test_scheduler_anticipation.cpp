// The scheduler's anticipation (a slot held briefly for a flow whose last
// request just finished), driven by an injected clock: no wall time.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <optional>

#include "llm/scheduler.hpp"

namespace agentos::llm {
namespace {

using namespace std::chrono_literals;

const TimePoint t0 = TimePoint{} + 1000s;
constexpr FlowId P = 1, G = 2;  // polite, greedy
constexpr uint64_t kCost = 100;

Usage usage(uint64_t total) { return {total / 2, total - total / 2, total}; }

SchedulerLimits limits(unsigned inflight, std::chrono::nanoseconds anticipation = 2ms) {
  SchedulerLimits l;
  l.max_inflight = inflight;
  l.anticipation = anticipation;
  return l;
}

// With one slot: the greedy flow G is served alone for a while, then P
// joins and gets its first turn. Returns the time P's request completes;
// at that moment P has nothing queued and the same counter as G.
class AnticipationTest : public ::testing::Test {
 protected:
  explicit AnticipationTest(SchedulerLimits l = limits(1)) : s(l, t0) {}

  TimePoint polite_served_once() {
    for (RequestId i = 0; i < 10; ++i) EXPECT_TRUE(s.enqueue(2000 + i, G, 0, kCost, t0));
    for (int i = 0; i < 3; ++i) s.complete(only_dispatch(t0), usage(kCost), t0);
    EXPECT_TRUE(s.enqueue(1000, P, 0, kCost, t0 + 1ms));  // lifted to G's counter
    // A tie goes to the older head (G's); then P is behind and goes next.
    EXPECT_EQ(flow(only_dispatch(t0 + 1ms)), G);
    s.complete(2003, usage(kCost), t0 + 100ms);
    EXPECT_EQ(only_dispatch(t0 + 100ms), 1000u);
    s.complete(1000, usage(kCost), t0 + 200ms);
    EXPECT_DOUBLE_EQ(s.virtual_tokens(P), s.virtual_tokens(G));
    return t0 + 200ms;
  }

  RequestId only_dispatch(TimePoint now) {
    PollResult r = s.poll(now);
    EXPECT_EQ(r.dispatch.size(), 1u);
    return r.dispatch.empty() ? 0 : r.dispatch[0];
  }

  static FlowId flow(RequestId id) { return id / 1000; }

  Scheduler s;
};

TEST_F(AnticipationTest, SlotIsHeldForTheFlowThatJustFinished) {
  const TimePoint t = polite_served_once();
  EXPECT_EQ(s.held(), 1u);
  PollResult r = s.poll(t);
  EXPECT_TRUE(r.dispatch.empty()) << "the held slot went to the greedy flow";
  EXPECT_EQ(r.wake, t + 2ms);
  // P's next request arrives within the hold and takes the slot at once,
  // ahead of G's older queue.
  ASSERT_TRUE(s.enqueue(1001, P, 0, kCost, t + 1ms));
  EXPECT_EQ(only_dispatch(t + 1ms), 1001u);
  EXPECT_EQ(s.held(), 0u);
  EXPECT_EQ(s.flow_stats(P)["anticipated"], 1);
  EXPECT_EQ(s.flow_stats(P)["anticipation_hits"], 1);
}

TEST_F(AnticipationTest, HoldExpiresAndTheSlotGoesToOthers) {
  const TimePoint t = polite_served_once();
  EXPECT_TRUE(s.poll(t + 1ms).dispatch.empty());
  EXPECT_EQ(flow(only_dispatch(t + 2ms)), G);
  EXPECT_EQ(s.held(), 0u);
  EXPECT_EQ(s.flow_stats(P)["anticipation_hits"], 0);
  // Too late: P now queues behind the request G got.
  ASSERT_TRUE(s.enqueue(1001, P, 0, kCost, t + 3ms));
  EXPECT_TRUE(s.poll(t + 3ms).dispatch.empty());
}

TEST_F(AnticipationTest, CancelFlowReleasesItsHold) {
  const TimePoint t = polite_served_once();
  s.cancel_flow(P);
  EXPECT_EQ(s.held(), 0u);
  EXPECT_EQ(flow(only_dispatch(t)), G);
}

TEST_F(AnticipationTest, NoHoldOnceMoreThanOneRequestAhead) {
  TimePoint t = polite_served_once();
  // P's last request started at G's counter: P may keep its slot once more,
  // and then it is a request ahead of G, which waits.
  for (RequestId id : {1001u, 1002u}) {
    ASSERT_EQ(s.held(), 1u) << id;
    ASSERT_TRUE(s.enqueue(id, P, 0, kCost, t + 1ms));
    EXPECT_EQ(only_dispatch(t + 1ms), id) << "the hold is used";
    t += 100ms;
    s.complete(id, usage(kCost), t);
  }
  EXPECT_DOUBLE_EQ(s.virtual_tokens(P) - s.virtual_tokens(G), 2 * kCost);
  EXPECT_EQ(s.held(), 0u);
  EXPECT_EQ(flow(only_dispatch(t)), G);
  EXPECT_EQ(s.flow_stats(P)["anticipation_hits"], 2);
}

TEST_F(AnticipationTest, NoHoldWhenTheFlowCouldNotSendAnyway) {
  s.set_flow_limits(P, {.rpm = 1}, t0);  // one request, then a minute's wait
  const TimePoint t = polite_served_once();
  EXPECT_EQ(s.held(), 0u);
  EXPECT_EQ(flow(only_dispatch(t)), G);
}

TEST(Anticipation, HoldEndsWhenAFlowFallsBehindWhileWaiting) {
  Scheduler s(limits(2), t0);
  ASSERT_TRUE(s.enqueue(2000, G, 0, 1000, t0));  // fails and is retried below
  for (RequestId id : {2001u, 2002u, 2003u}) ASSERT_TRUE(s.enqueue(id, G, 0, kCost, t0));
  ASSERT_EQ(s.poll(t0).dispatch, (std::vector<RequestId>{2000, 2001}));  // G at 1100
  ASSERT_TRUE(s.enqueue(1000, P, 0, kCost, t0 + 1ms));                    // lifted to 1100
  s.complete(2001, usage(kCost), t0 + 50ms);
  ASSERT_EQ(s.poll(t0 + 50ms).dispatch, (std::vector<RequestId>{2002}));  // the tie: G's older head
  s.complete(2002, usage(kCost), t0 + 60ms);
  ASSERT_EQ(s.poll(t0 + 60ms).dispatch, (std::vector<RequestId>{1000}));  // P starts at 1100
  s.complete(1000, usage(kCost), t0 + 100ms);
  ASSERT_EQ(s.held(), 1u);  // G, waiting at 1200, is not behind 1100
  EXPECT_TRUE(s.poll(t0 + 100ms).dispatch.empty());
  // G's big request is retried: its estimate is refunded, G drops to 200,
  // far behind P while it waits. The hold ends; both slots go to G.
  s.retry(2000, t0 + 100ms, t0 + 100ms);
  EXPECT_LT(s.virtual_tokens(G), 1100.0);
  EXPECT_EQ(s.poll(t0 + 100ms).dispatch, (std::vector<RequestId>{2000, 2003}));
  EXPECT_EQ(s.held(), 0u);
}

TEST(Anticipation, NoHoldWithoutAnotherFlowWaiting) {
  Scheduler s(limits(1), t0);
  ASSERT_TRUE(s.enqueue(1000, P, 0, kCost, t0));
  ASSERT_EQ(s.poll(t0).dispatch.size(), 1u);
  s.complete(1000, usage(kCost), t0 + 100ms);
  EXPECT_EQ(s.held(), 0u);
  // A newcomer is served at once: nothing was held for P.
  ASSERT_TRUE(s.enqueue(2000, G, 0, kCost, t0 + 100ms));
  EXPECT_EQ(s.poll(t0 + 100ms).dispatch, (std::vector<RequestId>{2000}));
}

// P and G end up with equal counters when P's request completes while G
// waits: held with anticipation on in fair mode, never otherwise.
TEST(Anticipation, OnlyInFairModeAndWhenConfigured) {
  struct Case {
    bool fair;
    std::chrono::nanoseconds anticipation;
    size_t held;
  };
  for (Case c : {Case{true, 2ms, 1}, Case{true, 0ms, 0}, Case{false, 2ms, 0}}) {
    SchedulerLimits l = limits(1, c.anticipation);
    l.fair = c.fair;
    Scheduler s(l, t0);
    ASSERT_TRUE(s.enqueue(2000, G, 0, kCost, t0));
    s.complete(s.poll(t0).dispatch.at(0), usage(kCost), t0 + 100ms);  // G idle at 100
    const TimePoint t = t0 + 1s;
    ASSERT_TRUE(s.enqueue(1000, P, 0, kCost, t));  // lifted only to the last dispatch's 0
    ASSERT_EQ(s.poll(t).dispatch, (std::vector<RequestId>{1000}));
    ASSERT_TRUE(s.enqueue(2001, G, 0, kCost, t + 1ms));
    ASSERT_TRUE(s.enqueue(2002, G, 0, kCost, t + 1ms));
    s.complete(1000, usage(kCost), t + 100ms);
    ASSERT_DOUBLE_EQ(s.virtual_tokens(P), s.virtual_tokens(G));
    EXPECT_EQ(s.held(), c.held) << "fair=" << c.fair;
    EXPECT_EQ(s.poll(t + 100ms).dispatch.size(), 1 - c.held) << "fair=" << c.fair;
  }
}

// A closed-loop model of bench/llm_bench.py's fairness run, in simulated
// time: 4 slots, service 100..110 ms; a greedy flow keeps `depth` requests
// outstanding (a new one as each completes); each polite flow has one
// request at a time and sends the next `think` after its reply.
class ClosedLoopModel {
 public:
  static constexpr FlowId kGreedy = 100, kPolite = 200;

  ClosedLoopModel(std::chrono::nanoseconds anticipation, int depth, int polite)
      : s_(limits(4, anticipation), t0), depth_(depth), polite_(polite) {}

  /// Completions per flow in `span` of simulated time.
  std::map<FlowId, int> run(std::chrono::nanoseconds span) {
    for (int i = 0; i < depth_; ++i) submit(kGreedy, t0);
    for (int p = 0; p < polite_; ++p) submit(kPolite + static_cast<FlowId>(p), t0);
    poll(t0);
    while (!events_.empty()) {
      TimePoint now = events_.begin()->first;
      if (wake_ && *wake_ < now) now = *wake_;
      if (now > t0 + span) break;
      while (!events_.empty() && events_.begin()->first == now) {
        const Event e = events_.begin()->second;
        events_.erase(events_.begin());
        handle(e, now);
      }
      poll(now);
    }
    return served_;
  }

 private:
  struct Event {
    RequestId done;  // 0: `arrive` sends its next request
    FlowId arrive;
  };
  static constexpr auto kThink = 300us;

  void submit(FlowId flow, TimePoint now) {
    const RequestId id = next_id_++;
    flow_of_[id] = flow;
    ASSERT_TRUE(s_.enqueue(id, flow, 0, kCost, now));
  }

  void poll(TimePoint now) {
    PollResult r = s_.poll(now);
    EXPECT_TRUE(r.rejected.empty());
    // Deterministic "jitter": 0..10 ms spread over the ids.
    for (RequestId id : r.dispatch) {
      events_.emplace(now + 100ms + std::chrono::milliseconds(id * 7919 % 11), Event{id, 0});
    }
    wake_ = r.wake;
  }

  void handle(const Event& e, TimePoint now) {
    if (e.done == 0) return submit(e.arrive, now);
    s_.complete(e.done, usage(kCost), now);
    const FlowId flow = flow_of_.at(e.done);
    ++served_[flow];
    if (flow == kGreedy) return submit(flow, now);
    events_.emplace(now + kThink, Event{0, flow});
  }

  Scheduler s_;
  int depth_, polite_;
  std::multimap<TimePoint, Event> events_;
  std::optional<TimePoint> wake_;
  std::map<RequestId, FlowId> flow_of_;
  std::map<FlowId, int> served_;
  RequestId next_id_ = 1;
};

TEST(Anticipation, PoliteFlowsGetTheirShareAgainstAGreedyOne) {
  constexpr auto kSpan = 20s;
  const int solo = ClosedLoopModel(2ms, 0, 1).run(kSpan)[ClosedLoopModel::kPolite];
  const auto with = ClosedLoopModel(2ms, 64, 3).run(kSpan);
  const auto without = ClosedLoopModel(0ms, 64, 3).run(kSpan);
  auto total = [](const std::map<FlowId, int>& m) {
    int n = 0;
    for (const auto& [flow, count] : m) n += count;
    return n;
  };
  for (FlowId p = ClosedLoopModel::kPolite; p < ClosedLoopModel::kPolite + 3; ++p) {
    SCOPED_TRACE(::testing::Message() << "polite flow " << p << ": alone " << solo << ", with anticipation "
                                      << with.at(p) << ", without " << without.at(p));
    EXPECT_GE(with.at(p), solo * 9 / 10);
    EXPECT_LT(without.at(p), solo * 8 / 10) << "the model no longer shows the problem";
  }
  // Holds cost the greedy flow little: the slots stay almost as busy.
  EXPECT_GE(total(with), total(without) * 97 / 100);
  std::cout << "[ model ] polite alone " << solo << "; with anticipation " << with.at(ClosedLoopModel::kPolite)
            << " (greedy " << with.at(ClosedLoopModel::kGreedy) << "); without " << without.at(ClosedLoopModel::kPolite)
            << " (greedy " << without.at(ClosedLoopModel::kGreedy) << ")\n";
}

}  // namespace
}  // namespace agentos::llm

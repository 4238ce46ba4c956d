#include "runtime/restart_policy.hpp"

#include <gtest/gtest.h>

#include "runtime/spawn_request.hpp"

namespace agentos::runtime {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

RestartPolicy policy(RestartMode m, uint32_t max = 5) {
  RestartPolicy p;
  p.mode = m;
  p.max_restarts = max;
  p.window = 60s;
  p.delay = 100ms;
  p.max_delay = 1000ms;
  return p;
}

TEST(RestartPolicy, NoNeverRestarts) {
  RestartTracker t(policy(RestartMode::kNo));
  auto d = t.on_exit(true, Clock::time_point{} + 1s, 1s);
  EXPECT_FALSE(d.restart);
  EXPECT_FALSE(d.gave_up);
  EXPECT_EQ(t.restarts(), 0u);
}

TEST(RestartPolicy, OnFailureIgnoresCleanExit) {
  RestartTracker t(policy(RestartMode::kOnFailure));
  EXPECT_FALSE(t.on_exit(false, Clock::time_point{} + 1s, 1s).restart);
  EXPECT_TRUE(t.on_exit(true, Clock::time_point{} + 2s, 1s).restart);
}

TEST(RestartPolicy, AlwaysRestartsCleanExit) {
  RestartTracker t(policy(RestartMode::kAlways));
  EXPECT_TRUE(t.on_exit(false, Clock::time_point{} + 1s, 1s).restart);
}

TEST(RestartPolicy, DelayDoublesUpToTheCap) {
  RestartTracker t(policy(RestartMode::kAlways, 100));
  std::vector<int64_t> delays;
  auto now = Clock::time_point{} + 1s;
  for (int i = 0; i < 6; ++i) {
    auto d = t.on_exit(true, now, 1ms);
    ASSERT_TRUE(d.restart);
    EXPECT_EQ(d.attempt, static_cast<uint32_t>(i + 1));
    delays.push_back(d.delay.count());
    now += 1ms;
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000}));
}

TEST(RestartPolicy, StableRunResetsTheDelay) {
  RestartTracker t(policy(RestartMode::kAlways, 100));
  auto now = Clock::time_point{} + 1s;
  t.on_exit(true, now, 1ms);
  EXPECT_EQ(t.on_exit(true, now + 1ms, 1ms).delay, 200ms);
  EXPECT_EQ(t.on_exit(true, now + 20s, kStableRun).delay, 100ms);
}

TEST(RestartPolicy, StartLimitGivesUpThenWindowSlides) {
  RestartTracker t(policy(RestartMode::kOnFailure, 3));
  auto now = Clock::time_point{} + 100s;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(t.on_exit(true, now + i * 1s, 1ms).restart);
  auto d = t.on_exit(true, now + 3s, 1ms);
  EXPECT_FALSE(d.restart);
  EXPECT_TRUE(d.gave_up);
  EXPECT_NE(d.reason.find("start limit"), std::string::npos) << d.reason;
  EXPECT_EQ(t.restarts(), 3u);
  // Once the first restart has left the window, one more is allowed.
  EXPECT_TRUE(t.on_exit(true, now + 60s, 1ms).restart);
}

TEST(RestartPolicy, ZeroMaxRestartsGivesUpAtOnce) {
  RestartTracker t(policy(RestartMode::kAlways, 0));
  EXPECT_TRUE(t.on_exit(true, Clock::time_point{} + 1s, 1s).gave_up);
}

TEST(RestartPolicy, SpawnFields) {
  auto r = parse_spawn_request(json{{"name", "w"}, {"script", "s"}, {"restart", "on-failure"}, {"max_restarts", 0},
                                    {"restart_window", 5}, {"restart_delay_ms", 0}, {"restart_max_delay_ms", 50}});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->restart.mode, RestartMode::kOnFailure);
  EXPECT_EQ(r->restart.max_restarts, 0u);
  EXPECT_EQ(r->restart.window, 5s);
  EXPECT_EQ(r->restart.delay, 0ms);
  EXPECT_EQ(r->restart.max_delay, 50ms);
  auto defaults = parse_spawn_request(json{{"name", "w"}, {"script", "s"}});
  ASSERT_TRUE(defaults.has_value());
  EXPECT_EQ(defaults->restart.mode, RestartMode::kNo);
  EXPECT_EQ(defaults->restart.max_restarts, 5u);
  EXPECT_EQ(defaults->restart.window, 60s);
  EXPECT_EQ(defaults->restart.delay, 100ms);
  EXPECT_EQ(defaults->restart.max_delay, 30000ms);
}

TEST(RestartPolicy, SpawnFieldErrorsNameTheField) {
  auto err = [](json extra) {
    json j = {{"name", "w"}, {"script", "s"}};
    j.update(extra);
    auto r = parse_spawn_request(j);
    return r ? std::string() : r.error().message();
  };
  EXPECT_NE(err({{"restart", "sometimes"}}).find("'restart'"), std::string::npos);
  EXPECT_NE(err({{"max_restarts", -1}}).find("'max_restarts'"), std::string::npos);
  EXPECT_NE(err({{"restart_window", 0}}).find("'restart_window'"), std::string::npos);
  EXPECT_NE(err({{"restart_delay_ms", "1s"}}).find("'restart_delay_ms'"), std::string::npos);
  EXPECT_NE(err({{"restart_delay_ms", 500}, {"restart_max_delay_ms", 100}}).find("'restart_max_delay_ms'"),
            std::string::npos);
}

}  // namespace
}  // namespace agentos::runtime

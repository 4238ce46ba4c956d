#include "runtime/restart_policy.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace agentos::runtime {

Result<RestartMode> parse_restart_mode(std::string_view s) {
  if (s == "no") return RestartMode::kNo;
  if (s == "on-failure") return RestartMode::kOnFailure;
  if (s == "always") return RestartMode::kAlways;
  return make_error(fmt::format("invalid field 'restart': '{}' (expected \"no\", \"on-failure\" or \"always\")", s));
}

const char* restart_mode_name(RestartMode m) {
  switch (m) {
    case RestartMode::kNo: return "no";
    case RestartMode::kOnFailure: return "on-failure";
    case RestartMode::kAlways: return "always";
  }
  return "no";
}

RestartDecision RestartTracker::on_exit(bool failed, Clock::time_point now, Clock::duration ran_for) {
  RestartDecision d;
  if (policy_.mode == RestartMode::kNo) {
    d.reason = "restart policy is \"no\"";
    return d;
  }
  if (policy_.mode == RestartMode::kOnFailure && !failed) {
    d.reason = "exited successfully (restart policy \"on-failure\")";
    return d;
  }
  while (!recent_.empty() && now - recent_.front() >= policy_.window) recent_.pop_front();
  if (recent_.size() >= policy_.max_restarts) {
    d.gave_up = true;
    d.reason = fmt::format("start limit hit: {} restart(s) within {} s", recent_.size(), policy_.window.count());
    return d;
  }
  if (ran_for >= kStableRun) consecutive_ = 0;
  // delay × 2^consecutive, capped; the shift is bounded so it cannot overflow.
  const auto shift = std::min<uint32_t>(consecutive_, 30);
  const auto grown = policy_.delay.count() * (int64_t{1} << shift);
  d.delay = std::chrono::milliseconds(std::min<int64_t>(grown, std::max(policy_.max_delay, policy_.delay).count()));
  d.restart = true;
  d.attempt = ++consecutive_;
  recent_.push_back(now);
  ++total_;
  return d;
}

}  // namespace agentos::runtime

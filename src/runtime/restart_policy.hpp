// Restart policies (docs/PROTOCOL.md): when an agent that ended comes back,
// after how long, and when the kernel gives up. Pure: time is passed in.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "kernel/reactor.hpp"
#include "util/result.hpp"

namespace agentos::runtime {

enum class RestartMode { kNo, kOnFailure, kAlways };

Result<RestartMode> parse_restart_mode(std::string_view s);
const char* restart_mode_name(RestartMode m);

/// SPAWN's restart fields, with systemd's StartLimitBurst/IntervalSec and
/// Docker's doubling delay as the model.
struct RestartPolicy {
  RestartMode mode = RestartMode::kNo;
  uint32_t max_restarts = 5;                       ///< within `window`
  std::chrono::seconds window{60};
  std::chrono::milliseconds delay{100};            ///< before the first restart
  std::chrono::milliseconds max_delay{30000};      ///< the doubling stops here
};

/// A run that lasted this long resets the delay to its initial value.
inline constexpr std::chrono::seconds kStableRun{10};

struct RestartDecision {
  bool restart = false;
  bool gave_up = false;            ///< the policy wanted a restart, the limit said no
  std::chrono::milliseconds delay{0};
  uint32_t attempt = 0;            ///< 1 for the first restart after a stable run
  std::string reason;              ///< why not, for the operator
};

/// Tracks one agent's restarts across runs.
class RestartTracker {
 public:
  explicit RestartTracker(RestartPolicy policy = {}) : policy_(policy) {}

  /// Decides about a run that ended on its own (not by KILL or shutdown).
  /// `failed`: non-zero exit, a signal or an OOM kill.
  RestartDecision on_exit(bool failed, Clock::time_point now, Clock::duration ran_for);

  [[nodiscard]] uint32_t restarts() const { return total_; }
  [[nodiscard]] const RestartPolicy& policy() const { return policy_; }

 private:
  RestartPolicy policy_;
  std::deque<Clock::time_point> recent_;  // restart times inside the window
  uint32_t consecutive_ = 0;              // restarts since the last stable run
  uint32_t total_ = 0;
};

}  // namespace agentos::runtime

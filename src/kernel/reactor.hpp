// The event loop: epoll, one timerfd driving a timer heap, a signalfd and an
// eventfd. Everything in the kernel runs on the thread that calls run().
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos {

class Reactor;

/// Monotonic time source. Injected so tests can control it.
using Clock = std::chrono::steady_clock;

/// RAII registration of an fd in the reactor. Destroying (or reset()) removes
/// the fd from epoll; safe to do from inside the fd's own callback.
class FdWatch {
 public:
  FdWatch() = default;
  FdWatch(FdWatch&& o) noexcept;
  FdWatch& operator=(FdWatch&& o) noexcept;
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;
  ~FdWatch() { reset(); }

  /// Changes the epoll event mask (EPOLLIN, EPOLLOUT, ...).
  Result<void> set_events(uint32_t events);
  [[nodiscard]] uint32_t events() const { return events_; }
  [[nodiscard]] bool active() const { return reactor_ != nullptr; }
  void reset();

 private:
  friend class Reactor;
  FdWatch(Reactor* r, int fd, uint64_t token, uint32_t events)
      : reactor_(r), fd_(fd), token_(token), events_(events) {}
  Reactor* reactor_ = nullptr;
  int fd_ = -1;
  uint64_t token_ = 0;
  uint32_t events_ = 0;
};

/// RAII one-shot timer. Destroying it before it fires cancels it.
class Timer {
 public:
  Timer() = default;
  Timer(Timer&& o) noexcept;
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() { cancel(); }

  void cancel();
  [[nodiscard]] bool pending() const;

 private:
  friend class Reactor;
  Timer(Reactor* r, uint64_t id) : reactor_(r), id_(id) {}
  Reactor* reactor_ = nullptr;
  uint64_t id_ = 0;
};

class Reactor {
 public:
  using FdCallback = std::move_only_function<void(uint32_t events)>;
  using Task = std::move_only_function<void()>;

  /// Creates epoll, timerfd, signalfd (for `signals`, which the caller must
  /// already have blocked) and eventfd.
  static Result<std::unique_ptr<Reactor>> create(std::vector<int> signals = {});
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  /// Watches `fd` (not owned) for `events`; `cb` gets the ready mask.
  [[nodiscard]] Result<FdWatch> watch(int fd, uint32_t events, FdCallback cb);

  /// Runs `cb` once after `delay` (from now). Keep the Timer to keep it armed.
  [[nodiscard]] Timer after(std::chrono::nanoseconds delay, Task cb);

  /// Handler for a signal given to create(). One handler per signal.
  void on_signal(int signo, std::move_only_function<void(int)> cb);

  /// Runs `task` on the loop after the current callback returns (deferred
  /// destruction, work that must not run re-entrantly). Thread-safe? No:
  /// call only from the loop thread; from other threads use wake().
  void defer(Task task);

  /// Runs until stop(). Returns an error only if epoll itself fails.
  Result<void> run();
  /// Makes run() return after the current iteration. Safe from any callback.
  void stop();
  /// Wakes the loop from another thread (eventfd); the loop then runs
  /// deferred tasks. Async-signal-safe.
  void wake();

  [[nodiscard]] Clock::time_point now() const { return Clock::now(); }
  [[nodiscard]] size_t watched_fds() const { return fds_.size(); }
  [[nodiscard]] size_t pending_timers() const { return timers_.size(); }

  /// Runs one epoll_wait (with `timeout_ms`, -1 = block) and dispatches.
  /// run() is this in a loop; tests call it directly.
  Result<void> run_once(int timeout_ms);

 private:
  friend class FdWatch;
  friend class Timer;
  struct TimerEntry {
    Clock::time_point when;
    uint64_t id;
    bool operator>(const TimerEntry& o) const {
      return when != o.when ? when > o.when : id > o.id;
    }
  };

  Reactor() = default;
  void unwatch(int fd, uint64_t token);
  Result<void> modify(int fd, uint64_t token, uint32_t events);
  void cancel_timer(uint64_t id);
  void rearm_timerfd();
  void fire_timers();
  void drain_signals();
  void run_deferred();

  UniqueFd epoll_;
  UniqueFd timerfd_;
  UniqueFd signalfd_;
  UniqueFd eventfd_;
  bool stopping_ = false;

  // token -> callback; a token is never reused, so a stale epoll event for a
  // removed fd (same batch) finds nothing and is skipped.
  struct FdEntry {
    int fd;
    std::shared_ptr<FdCallback> cb;
  };
  std::unordered_map<uint64_t, FdEntry> fds_;
  uint64_t next_token_ = 16;  // small values reserved for internal fds

  std::vector<TimerEntry> heap_;  // min-heap by `when`, lazily pruned
  std::unordered_map<uint64_t, Task> timers_;
  uint64_t next_timer_ = 1;
  Clock::time_point armed_for_{};

  std::unordered_map<int, std::move_only_function<void(int)>> signal_handlers_;
  std::vector<Task> deferred_;
};

}  // namespace agentos

#include "kernel/reactor.hpp"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <array>

#include "util/log.hpp"

namespace agentos {
namespace {

// Tokens below 16 mark the reactor's own fds in epoll_event.data.u64.
constexpr uint64_t kTimerToken = 1;
constexpr uint64_t kSignalToken = 2;
constexpr uint64_t kEventToken = 3;

Result<void> epoll_add(int epfd, int fd, uint32_t events, uint64_t token) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return sys_error("epoll_ctl ADD");
  return {};
}

}  // namespace

// ---- FdWatch ---------------------------------------------------------------

FdWatch::FdWatch(FdWatch&& o) noexcept
    : reactor_(std::exchange(o.reactor_, nullptr)),
      fd_(o.fd_),
      token_(o.token_),
      events_(o.events_) {}

FdWatch& FdWatch::operator=(FdWatch&& o) noexcept {
  if (this != &o) {
    reset();
    reactor_ = std::exchange(o.reactor_, nullptr);
    fd_ = o.fd_;
    token_ = o.token_;
    events_ = o.events_;
  }
  return *this;
}

Result<void> FdWatch::set_events(uint32_t events) {
  if (!reactor_) return make_error("set_events on an inactive watch", EBADF);
  if (events == events_) return {};
  AOS_TRY_VOID(reactor_->modify(fd_, token_, events));
  events_ = events;
  return {};
}

void FdWatch::reset() {
  if (reactor_) std::exchange(reactor_, nullptr)->unwatch(fd_, token_);
}

// ---- Timer -----------------------------------------------------------------

Timer::Timer(Timer&& o) noexcept
    : reactor_(std::exchange(o.reactor_, nullptr)), id_(o.id_) {}

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    cancel();
    reactor_ = std::exchange(o.reactor_, nullptr);
    id_ = o.id_;
  }
  return *this;
}

void Timer::cancel() {
  if (reactor_) std::exchange(reactor_, nullptr)->cancel_timer(id_);
}

bool Timer::pending() const {
  return reactor_ != nullptr && reactor_->timers_.contains(id_);
}

// ---- Reactor ---------------------------------------------------------------

Result<std::unique_ptr<Reactor>> Reactor::create(std::vector<int> signals) {
  std::unique_ptr<Reactor> r(new Reactor());
  r->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!r->epoll_) return sys_error("epoll_create1");
  r->timerfd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!r->timerfd_) return sys_error("timerfd_create");
  r->eventfd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!r->eventfd_) return sys_error("eventfd");
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : signals) sigaddset(&mask, s);
  r->signalfd_.reset(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!r->signalfd_) return sys_error("signalfd");
  AOS_TRY_VOID(epoll_add(r->epoll_.get(), r->timerfd_.get(), EPOLLIN, kTimerToken));
  AOS_TRY_VOID(epoll_add(r->epoll_.get(), r->signalfd_.get(), EPOLLIN, kSignalToken));
  AOS_TRY_VOID(epoll_add(r->epoll_.get(), r->eventfd_.get(), EPOLLIN, kEventToken));
  return r;
}

Reactor::~Reactor() = default;

Result<FdWatch> Reactor::watch(int fd, uint32_t events, FdCallback cb) {
  const uint64_t token = next_token_++;
  AOS_TRY_VOID(epoll_add(epoll_.get(), fd, events, token));
  fds_.emplace(token, FdEntry{fd, std::make_shared<FdCallback>(std::move(cb))});
  return FdWatch(this, fd, token, events);
}

void Reactor::unwatch(int fd, uint64_t token) {
  // The fd may already be closed by its owner; EBADF/ENOENT are harmless.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  fds_.erase(token);
}

Result<void> Reactor::modify(int fd, uint64_t token, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) return sys_error("epoll_ctl MOD");
  return {};
}

Timer Reactor::after(std::chrono::nanoseconds delay, Task cb) {
  const uint64_t id = next_timer_++;
  const auto when = now() + std::max(delay, std::chrono::nanoseconds(0));
  timers_.emplace(id, std::move(cb));
  heap_.push_back({when, id});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  rearm_timerfd();
  return Timer(this, id);
}

void Reactor::cancel_timer(uint64_t id) {
  // Lazy deletion: the heap entry stays until it reaches the top.
  timers_.erase(id);
  if (timers_.empty()) heap_.clear();
}

void Reactor::rearm_timerfd() {
  while (!heap_.empty() && !timers_.contains(heap_.front().id)) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
  const auto next = heap_.empty() ? Clock::time_point{} : heap_.front().when;
  if (next == armed_for_) return;
  armed_for_ = next;
  itimerspec its{};
  if (!heap_.empty()) {
    // Absolute CLOCK_MONOTONIC time; steady_clock is CLOCK_MONOTONIC on Linux.
    // A zero value would disarm, so a deadline at epoch becomes 1 ns.
    const auto ns = std::max<int64_t>(1, next.time_since_epoch().count());
    its.it_value.tv_sec = ns / 1'000'000'000;
    its.it_value.tv_nsec = ns % 1'000'000'000;
  }
  ::timerfd_settime(timerfd_.get(), TFD_TIMER_ABSTIME, &its, nullptr);
}

void Reactor::fire_timers() {
  uint64_t expirations;
  while (::read(timerfd_.get(), &expirations, sizeof expirations) > 0) {
  }
  armed_for_ = {};
  const auto t = now();
  while (!heap_.empty() && heap_.front().when <= t) {
    const uint64_t id = heap_.front().id;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    Task cb = std::move(it->second);
    timers_.erase(it);
    cb();
  }
  rearm_timerfd();
}

void Reactor::on_signal(int signo, std::move_only_function<void(int)> cb) {
  signal_handlers_[signo] = std::move(cb);
}

void Reactor::drain_signals() {
  signalfd_siginfo si;
  while (::read(signalfd_.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    auto it = signal_handlers_.find(static_cast<int>(si.ssi_signo));
    if (it != signal_handlers_.end()) it->second(static_cast<int>(si.ssi_signo));
  }
}

void Reactor::defer(Task task) {
  deferred_.push_back(std::move(task));
}

void Reactor::run_deferred() {
  // Tasks may defer more tasks; run until quiet, in FIFO order.
  while (!deferred_.empty()) {
    std::vector<Task> batch;
    batch.swap(deferred_);
    for (auto& t : batch) t();
  }
}

void Reactor::stop() {
  stopping_ = true;
  wake();
}

void Reactor::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(eventfd_.get(), &one, sizeof one);
}

Result<void> Reactor::run() {
  stopping_ = false;
  while (!stopping_) AOS_TRY_VOID(run_once(-1));
  return {};
}

Result<void> Reactor::run_once(int timeout_ms) {
  std::array<epoll_event, 256> events;
  if (!deferred_.empty()) timeout_ms = 0;
  const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return {};
    return sys_error("epoll_wait");
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    if (token == kTimerToken) {
      fire_timers();
    } else if (token == kSignalToken) {
      drain_signals();
    } else if (token == kEventToken) {
      uint64_t v;
      [[maybe_unused]] auto r = ::read(eventfd_.get(), &v, sizeof v);
    } else {
      // A callback earlier in this batch may have removed this fd (Redis ae
      // re-checks for the same reason). Hold a reference so a callback that
      // removes its own watch does not destroy itself while running.
      auto it = fds_.find(token);
      if (it == fds_.end()) continue;
      std::shared_ptr<FdCallback> cb = it->second.cb;
      (*cb)(events[i].events);
    }
    run_deferred();
  }
  run_deferred();
  return {};
}

}  // namespace agentos

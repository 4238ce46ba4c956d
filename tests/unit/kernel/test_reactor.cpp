#include "kernel/reactor.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

namespace agentos {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Reactor> make_reactor() {
  auto r = Reactor::create();
  EXPECT_TRUE(r.has_value());
  return std::move(*r);
}

// Runs the loop until `done` or a generous deadline (a safety net, not a
// timing assertion).
template <class Pred>
bool spin_until(Reactor& r, Pred done) {
  const auto deadline = Clock::now() + 10s;
  while (!done() && Clock::now() < deadline) EXPECT_TRUE(r.run_once(100).has_value());
  return done();
}

TEST(Reactor, TimersFireInDeadlineOrder) {
  auto r = make_reactor();
  std::vector<int> order;
  Timer t3 = r->after(30ms, [&] { order.push_back(3); });
  Timer t1 = r->after(10ms, [&] { order.push_back(1); });
  Timer t2 = r->after(20ms, [&] { order.push_back(2); });
  ASSERT_TRUE(spin_until(*r, [&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(t1.pending());
}

TEST(Reactor, CancelledTimerDoesNotFire) {
  auto r = make_reactor();
  bool fired = false, other = false;
  {
    Timer t = r->after(5ms, [&] { fired = true; });
  }  // destroyed: cancelled
  Timer t2 = r->after(20ms, [&] { other = true; });
  ASSERT_TRUE(spin_until(*r, [&] { return other; }));
  EXPECT_FALSE(fired);
  EXPECT_EQ(r->pending_timers(), 0u);
}

TEST(Reactor, TimerCanArmAnotherFromItsCallback) {
  auto r = make_reactor();
  int count = 0;
  Timer second;
  Timer first = r->after(1ms, [&] {
    ++count;
    second = r->after(1ms, [&] { ++count; });
  });
  ASSERT_TRUE(spin_until(*r, [&] { return count == 2; }));
}

TEST(Reactor, FdCallbackSeesReadableData) {
  auto r = make_reactor();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::string got;
  auto w = r->watch(a.get(), EPOLLIN, [&](uint32_t) {
    char buf[16];
    ssize_t n = ::read(a.get(), buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  });
  ASSERT_TRUE(w.has_value());
  ASSERT_EQ(::write(b.get(), "ping", 4), 4);
  ASSERT_TRUE(spin_until(*r, [&] { return got == "ping"; }));
}

TEST(Reactor, WatchRemovingItselfInsideCallbackIsSafe) {
  auto r = make_reactor();
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  int calls = 0;
  FdWatch w = *r->watch(a.get(), EPOLLIN, [&](uint32_t) {
    ++calls;
    w.reset();  // data stays unread: a live watch would fire again
  });
  ASSERT_EQ(::write(b.get(), "x", 1), 1);
  ASSERT_TRUE(spin_until(*r, [&] { return calls == 1; }));
  ASSERT_TRUE(r->run_once(20).has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r->watched_fds(), 0u);
}

TEST(Reactor, CallbackRemovingAnotherReadyFdSkipsIt) {
  auto r = make_reactor();
  int s1[2], s2[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s1), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s2), 0);
  UniqueFd a1(s1[0]), b1(s1[1]), a2(s2[0]), b2(s2[1]);
  int calls = 0;
  FdWatch w1, w2;
  // Whichever fires first removes the other; the second must not run even
  // though epoll reported both in the same batch.
  w1 = *r->watch(a1.get(), EPOLLIN, [&](uint32_t) { ++calls; w2.reset(); w1.reset(); });
  w2 = *r->watch(a2.get(), EPOLLIN, [&](uint32_t) { ++calls; w1.reset(); w2.reset(); });
  ASSERT_EQ(::write(b1.get(), "x", 1), 1);
  ASSERT_EQ(::write(b2.get(), "x", 1), 1);
  ASSERT_TRUE(r->run_once(1000).has_value());
  EXPECT_EQ(calls, 1);
}

TEST(Reactor, DeferredTasksRunAfterTheCallback) {
  auto r = make_reactor();
  std::vector<int> order;
  Timer t = r->after(1ms, [&] {
    r->defer([&] { order.push_back(2); });
    order.push_back(1);
  });
  ASSERT_TRUE(spin_until(*r, [&] { return order.size() == 2; }));
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(Reactor, StopEndsRun) {
  auto r = make_reactor();
  Timer t = r->after(5ms, [&] { r->stop(); });
  EXPECT_TRUE(r->run().has_value());
}

TEST(Reactor, SignalsArriveThroughSignalfd) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &mask, nullptr), 0);
  auto created = Reactor::create({SIGUSR1});
  ASSERT_TRUE(created.has_value());
  auto& r = *created;
  int got = 0;
  r->on_signal(SIGUSR1, [&](int s) { got = s; });
  ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
  ASSERT_TRUE(spin_until(*r, [&] { return got == SIGUSR1; }));
  pthread_sigmask(SIG_UNBLOCK, &mask, nullptr);
}

}  // namespace
}  // namespace agentos

#include "ipc/long_poll.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/protocol.hpp"

namespace agentos::ipc {
namespace {

using namespace std::chrono_literals;

// A real Connection over a socketpair whose requests are parked on topic 7.
struct Fixture {
  std::unique_ptr<Reactor> reactor = std::move(*Reactor::create());
  LongPolls polls{*reactor};
  Connection::Dispatch dispatch;
  std::shared_ptr<Connection> conn;
  int client = -1;
  bool ready = false;   // what the parked attempts check
  int attempts = 0;

  explicit Fixture(std::optional<Clock::duration> timeout) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    client = sv[0];
    dispatch = [this, timeout](const Caller& c, uint8_t, std::string_view payload, Responder r) {
      std::string tag(payload);
      polls.park(7, c.connection_id, timeout,
                 [this, tag](bool timed_out) -> std::optional<std::string> {
                   ++attempts;
                   if (ready) return "ready " + tag;
                   if (timed_out) return "timeout " + tag;
                   return std::nullopt;
                 },
                 std::move(r));
    };
    conn = std::make_shared<Connection>(*reactor, UniqueFd(sv[1]), Caller{42, 0, {}}, ConnectionLimits{}, &dispatch,
                                        [](uint64_t) {});
    EXPECT_TRUE(conn->start().has_value());
  }
  ~Fixture() { ::close(client); }

  void send(std::string_view payload) {
    std::string f;
    append_frame(f, 0, 0x17, payload);
    ASSERT_EQ(::write(client, f.data(), f.size()), static_cast<ssize_t>(f.size()));
  }
  // Reads one reply frame, running the loop until it arrives.
  std::string buf;  // bytes received, not yet returned
  std::string receive() {
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      EXPECT_TRUE(reactor->run_once(20).has_value());
      char tmp[4096];
      ssize_t n = ::recv(client, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n > 0) buf.append(tmp, static_cast<size_t>(n));
      if (buf.size() >= kHeaderSize) {
        auto h = decode_header(reinterpret_cast<const std::byte*>(buf.data()));
        if (buf.size() >= kHeaderSize + h.payload_size) {
          std::string payload = buf.substr(kHeaderSize, h.payload_size);
          buf.erase(0, kHeaderSize + h.payload_size);
          return payload;
        }
      }
    }
    return "<no reply>";
  }
  void spin(int iterations) {
    for (int i = 0; i < iterations; ++i) EXPECT_TRUE(reactor->run_once(5).has_value());
  }
};

TEST(LongPolls, AnswersAtOnceWhenReady) {
  Fixture f(std::nullopt);
  f.ready = true;
  f.send("a");
  EXPECT_EQ(f.receive(), "ready a");
  EXPECT_EQ(f.polls.parked(), 0u);
}

TEST(LongPolls, PokeAnswersParkedRequestsInOrder) {
  Fixture f(std::nullopt);
  f.send("a");
  f.send("b");
  f.spin(5);
  EXPECT_EQ(f.polls.parked(), 2u);
  f.polls.poke(8);  // another topic: nothing happens
  EXPECT_EQ(f.polls.parked(), 2u);
  f.polls.poke(7);  // not ready yet: still parked
  EXPECT_EQ(f.polls.parked(), 2u);
  f.ready = true;
  f.polls.poke(7);
  EXPECT_EQ(f.polls.parked(), 0u);
  EXPECT_EQ(f.receive(), "ready a");
  EXPECT_EQ(f.receive(), "ready b");
}

TEST(LongPolls, DeadlineAnswersWithTheTimedOutReply) {
  Fixture f(std::chrono::milliseconds(30));
  f.send("a");
  EXPECT_EQ(f.receive(), "timeout a");
  EXPECT_EQ(f.polls.parked(), 0u);
}

TEST(LongPolls, ClosedConnectionDropsItsRequests) {
  Fixture f(std::nullopt);
  f.send("a");
  f.spin(5);
  ASSERT_EQ(f.polls.parked(), 1u);
  f.polls.connection_closed(41);
  EXPECT_EQ(f.polls.parked(), 1u);
  f.polls.connection_closed(42);
  EXPECT_EQ(f.polls.parked(), 0u);
}

TEST(LongPolls, FlushAllAnswersEverything) {
  Fixture f(std::nullopt);
  f.send("a");
  f.spin(5);
  f.polls.flush_all();
  EXPECT_EQ(f.receive(), "timeout a");
}

}  // namespace
}  // namespace agentos::ipc

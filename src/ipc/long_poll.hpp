// Requests that answer later, when something happens or a deadline passes
// (WAIT, LOGS and EVENTS with wait_ms). Each parked request belongs to a
// topic; poke(topic) retries the topic's requests, and those that can answer
// do. Nothing blocks: a parked request is a Responder, a Timer and a retry.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>

#include "ipc/connection.hpp"
#include "kernel/reactor.hpp"

namespace agentos::ipc {

class LongPolls {
 public:
  /// Produces the reply, or nullopt to keep waiting. `timed_out` is true on
  /// the last call, which must produce a reply.
  using Attempt = std::move_only_function<std::optional<std::string>(bool timed_out)>;

  explicit LongPolls(Reactor& reactor) : reactor_(reactor) {}
  LongPolls(const LongPolls&) = delete;
  LongPolls& operator=(const LongPolls&) = delete;

  /// Answers at once if `attempt(false)` can; otherwise parks the request
  /// until poke(topic) lets it answer or `timeout` passes (nullopt: no
  /// deadline; it goes when its connection closes).
  void park(uint64_t topic, uint64_t connection_id, std::optional<Clock::duration> timeout, Attempt attempt,
            Responder reply);
  /// Retries every request parked on `topic`.
  void poke(uint64_t topic);
  /// Drops the requests of a closed connection.
  void connection_closed(uint64_t connection_id);
  /// Answers every parked request as timed out (shutdown).
  void flush_all();

  [[nodiscard]] size_t parked() const { return waiting_.size(); }

 private:
  struct Waiter {
    uint64_t topic;
    uint64_t connection_id;
    Attempt attempt;
    Responder reply;
    Timer deadline;
  };
  using Iter = std::list<Waiter>::iterator;
  void expire(Iter it);

  Reactor& reactor_;
  std::list<Waiter> waiting_;
  std::multimap<uint64_t, Iter> by_topic_;
};

/// Topic numbers: a kind in the high bits, an agent id in the low ones.
enum class PollKind : uint64_t { kAgentEnd = 1, kAgentLog = 2, kEvents = 3 };
inline uint64_t poll_topic(PollKind kind, uint32_t id = 0) {
  return (static_cast<uint64_t>(kind) << 32) | id;
}

}  // namespace agentos::ipc

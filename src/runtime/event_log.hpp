// The kernel's record of agent lifecycle events (EVENTS syscall): a bounded
// ring of the most recent events, numbered by a sequence that never repeats.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/reactor.hpp"

namespace agentos::runtime {

struct Event {
  uint64_t seq = 0;
  std::chrono::system_clock::time_point wall;
  Clock::time_point mono;
  uint32_t agent_id = 0;
  std::string name;
  std::string type;
  nlohmann::json detail;  // an object; merged into the event's JSON
};

class EventLog {
 public:
  explicit EventLog(size_t capacity = 10000) : capacity_(capacity) {}

  /// Appends an event and returns it; the oldest goes when full.
  const Event& record(uint32_t agent_id, std::string name, std::string type, nlohmann::json detail,
                      Clock::time_point mono, std::chrono::system_clock::time_point wall);

  /// Which events a query returns (null: all).
  using Filter = std::function<bool(const Event&)>;

  /// {"events": [...], "next": seq} with events whose seq >= `since` that
  /// pass `filter`, at most `limit` of them. `next` is where to go on.
  [[nodiscard]] nlohmann::json query(uint64_t since, const Filter& filter, size_t limit) const;
  /// True if query(since, filter, …) would return at least one event.
  [[nodiscard]] bool has_since(uint64_t since, const Filter& filter) const;

  [[nodiscard]] uint64_t next_seq() const { return next_seq_; }

  static nlohmann::json to_json(const Event& e);

 private:
  size_t capacity_;
  std::deque<Event> events_;
  uint64_t next_seq_ = 1;
};

/// UTC ISO-8601 with microseconds: 2026-11-24T10:15:02.123456Z.
std::string iso8601_utc(std::chrono::system_clock::time_point t);

}  // namespace agentos::runtime

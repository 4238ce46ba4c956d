#include "runtime/event_log.hpp"

#include <ctime>

#include <fmt/format.h>

namespace agentos::runtime {

using nlohmann::json;

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(us / 1000000);
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, us % 1000000);
}

const Event& EventLog::record(uint32_t agent_id, std::string name, std::string type, json detail,
                              Clock::time_point mono, std::chrono::system_clock::time_point wall) {
  if (events_.size() >= capacity_) events_.pop_front();
  Event e;
  e.seq = next_seq_++;
  e.wall = wall;
  e.mono = mono;
  e.agent_id = agent_id;
  e.name = std::move(name);
  e.type = std::move(type);
  e.detail = detail.is_object() ? std::move(detail) : json::object();
  events_.push_back(std::move(e));
  return events_.back();
}

json EventLog::to_json(const Event& e) {
  json j = e.detail;
  j["seq"] = e.seq;
  j["ts"] = iso8601_utc(e.wall);
  j["mono_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(e.mono.time_since_epoch()).count();
  j["id"] = e.agent_id;
  j["name"] = e.name;
  j["type"] = e.type;
  return j;
}

json EventLog::query(uint64_t since, const Filter& filter, size_t limit) const {
  since = std::min(since, next_seq_);  // a sequence from the future: wait for what comes next
  json out = json::array();
  uint64_t next = std::max(since, events_.empty() ? next_seq_ : events_.front().seq);
  // Sequence numbers are consecutive in the ring, so the start is an index.
  const uint64_t first = events_.empty() ? next_seq_ : events_.front().seq;
  for (size_t i = since > first ? since - first : 0; i < events_.size() && out.size() < limit; ++i) {
    const Event& e = events_[i];
    next = e.seq + 1;
    if (filter && !filter(e)) continue;
    out.push_back(to_json(e));
  }
  if (out.size() < limit) next = std::max(next, next_seq_);
  return {{"events", std::move(out)}, {"next", next}};
}

bool EventLog::has_since(uint64_t since, const Filter& filter) const {
  for (auto it = events_.rbegin(); it != events_.rend() && it->seq >= since; ++it) {
    if (!filter || filter(*it)) return true;
  }
  return false;
}

}  // namespace agentos::runtime

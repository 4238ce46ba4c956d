#include "ipc/long_poll.hpp"

#include <vector>

namespace agentos::ipc {

void LongPolls::park(uint64_t topic, uint64_t connection_id, std::optional<Clock::duration> timeout,
                     Attempt attempt, Responder reply) {
  if (auto now = attempt(false)) return reply.reply(*now);
  if (!reply.connected()) return;
  waiting_.push_back(Waiter{topic, connection_id, std::move(attempt), std::move(reply), Timer{}});
  auto it = std::prev(waiting_.end());
  by_topic_.emplace(topic, it);
  if (timeout) it->deadline = reactor_.after(*timeout, [this, it] { expire(it); });
}

void LongPolls::expire(Iter it) {
  auto reply = it->attempt(true).value_or(R"({"error": "timed out"})");
  auto range = by_topic_.equal_range(it->topic);
  for (auto t = range.first; t != range.second; ++t) {
    if (t->second == it) {
      by_topic_.erase(t);
      break;
    }
  }
  Responder r = std::move(it->reply);
  waiting_.erase(it);
  r.reply(reply);
}

void LongPolls::poke(uint64_t topic) {
  // Collect first: answering may re-enter (a reply can trigger more work).
  std::vector<Iter> ready;
  std::vector<std::string> replies;
  auto range = by_topic_.equal_range(topic);
  for (auto t = range.first; t != range.second;) {
    if (auto r = t->second->attempt(false)) {
      ready.push_back(t->second);
      replies.push_back(std::move(*r));
      t = by_topic_.erase(t);
    } else {
      ++t;
    }
  }
  std::vector<Responder> responders;
  for (auto it : ready) {
    responders.push_back(std::move(it->reply));
    waiting_.erase(it);
  }
  for (size_t i = 0; i < responders.size(); ++i) responders[i].reply(replies[i]);
}

void LongPolls::connection_closed(uint64_t connection_id) {
  for (auto t = by_topic_.begin(); t != by_topic_.end();) {
    if (t->second->connection_id == connection_id) {
      waiting_.erase(t->second);
      t = by_topic_.erase(t);
    } else {
      ++t;
    }
  }
}

void LongPolls::flush_all() {
  while (!waiting_.empty()) expire(waiting_.begin());
}

}  // namespace agentos::ipc

#include "llm/scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace agentos::llm {

using nlohmann::json;

namespace {

double to_ms(std::chrono::nanoseconds d) { return std::round(static_cast<double>(d.count()) / 1e5) / 10.0; }
double to_s(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Scheduler::Scheduler(SchedulerLimits limits, TimePoint now)
    : limits_(limits),
      rpm_(limits.rpm > 0 ? TokenBucket(limits.rpm, now) : TokenBucket()),
      tpm_(limits.tpm > 0 ? TokenBucket(limits.tpm, now) : TokenBucket()) {}

Scheduler::Flow& Scheduler::flow_for(FlowId id, TimePoint now) {
  auto [it, inserted] = flows_.try_emplace(id);
  if (inserted) set_flow_limits(id, FlowLimits{}, now);
  return it->second;
}

void Scheduler::set_flow_limits(FlowId id, FlowLimits limits, TimePoint now) {
  Flow& f = flows_[id];
  if (!(limits.weight > 0)) limits.weight = 1;
  f.limits = limits;
  f.rpm = limits.rpm > 0 ? TokenBucket(limits.rpm, now) : TokenBucket();
  f.tpm = limits.tpm > 0 ? TokenBucket(limits.tpm, now) : TokenBucket();
}

void Scheduler::lift_counter(FlowId id, Flow& f) {
  double target = floor_;
  bool any = false;
  for (const auto& [other_id, other] : flows_) {
    if (other_id == id || other.queue.empty()) continue;
    target = any ? std::min(target, other.counter) : other.counter;
    any = true;
  }
  f.counter = std::max(f.counter, target);
}

Result<void> Scheduler::enqueue(RequestId id, FlowId flow, uint64_t connection, uint64_t est_tokens,
                                TimePoint now) {
  Flow& f = flow_for(flow, now);
  const uint64_t budget = f.limits.token_budget;
  if (budget > 0 && f.used_tokens >= budget) {
    count(f, [](Counters& c) { ++c.errors; });
    return make_error(fmt::format("LLM token budget exhausted: this agent used {} of {} tokens (token_budget={})",
                                  f.used_tokens, budget, budget));
  }
  if (f.queue.size() >= limits_.max_queue_per_flow) {
    count(f, [](Counters& c) { ++c.errors; });
    return make_error(fmt::format("LLM queue full: {} requests already waiting for this agent (max_queue_per_flow={})",
                                  f.queue.size(), limits_.max_queue_per_flow));
  }
  if (f.queue.empty()) lift_counter(flow, f);
  entries_.emplace(id, Entry{id, flow, connection, est_tokens, now, now, now + limits_.queue_timeout, {}, {}});
  f.queue.push_back(id);
  count(f, [](Counters& c) { ++c.requests; });
  return {};
}

PollResult Scheduler::poll(TimePoint now) {
  PollResult out;
  expire(now, out.rejected);
  claim_holds(now, out);
  std::optional<TimePoint> global_block;
  while (free_slots() > 0 && now >= paused_until_) {
    Flow* f = pick(now, out.rejected);
    if (f == nullptr) break;
    Entry& head = entries_.at(f->queue.front());
    // Head-of-line on the global buckets: letting smaller requests of other
    // flows pass would starve a large one forever.
    if (!global_may_send(head, now)) {
      global_block = global_ready_at(head, now);
      break;
    }
    dispatch(*f, head, now);
    out.dispatch.push_back(head.id);
  }
  out.wake = next_wake(now, global_block);
  return out;
}

void Scheduler::expire(TimePoint now, std::vector<Rejection>& rejected) {
  for (auto& [flow_id, f] : flows_) {
    for (auto it = f.queue.begin(); it != f.queue.end();) {
      Entry& e = entries_.at(*it);
      if (e.deadline > now) {
        ++it;
        continue;
      }
      rejected.push_back({e.id, fmt::format("LLM queue timeout: waited {:.1f} s (queue_timeout_s={:g}); {}",
                                            to_s(now - e.enqueued), to_s(limits_.queue_timeout),
                                            blocked_reason(f, e, now))});
      count(f, [](Counters& c) { ++c.errors; });
      const RequestId id = e.id;  // erase() must not get a key living in the node it frees
      entries_.erase(id);
      it = f.queue.erase(it);
    }
  }
}

void Scheduler::maybe_hold(FlowId id, Flow& f, TimePoint now) {
  if (!limits_.fair || limits_.anticipation <= std::chrono::nanoseconds::zero()) return;
  if (f.hold_until || !f.queue.empty()) return;
  // Nothing to protect when nobody else would take the slot; no right to it
  // when a waiting flow is behind where this flow's last request started;
  // no use when the flow could not send its next request anyway.
  if (!others_waiting(id, now) || undercut(id, f, now) || !f.rpm.can_take(1, now)) return;
  if (f.limits.token_budget > 0 && f.used_tokens + f.reserved_tokens >= f.limits.token_budget) return;
  f.hold_until = now + limits_.anticipation;
  ++held_;
  count(f, [](Counters& c) { ++c.anticipated; });
}

void Scheduler::claim_holds(TimePoint now, PollResult& out) {
  if (held_ == 0) return;
  for (auto& [flow_id, f] : flows_) {
    if (!f.hold_until) continue;
    if (now >= *f.hold_until || undercut(flow_id, f, now)) {
      drop_hold(f);
      continue;
    }
    if (f.queue.empty() || now < paused_until_) continue;
    // The flow is back: it uses the held slot now or competes like everyone.
    drop_hold(f);
    Entry& head = entries_.at(f.queue.front());
    if (!budget_allows(f, head) || !flow_may_send(f, head, now) || !global_may_send(head, now)) continue;
    count(f, [](Counters& c) { ++c.anticipation_hits; });
    dispatch(f, head, now);
    out.dispatch.push_back(head.id);
  }
}

void Scheduler::drop_hold(Flow& f) {
  if (!f.hold_until) return;
  f.hold_until.reset();
  --held_;
}

bool Scheduler::others_waiting(FlowId id, TimePoint now) const {
  for (const auto& [other_id, other] : flows_) {
    if (other_id == id || other.queue.empty()) continue;
    if (flow_may_send(other, entries_.at(other.queue.front()), now)) return true;
  }
  return false;
}

bool Scheduler::undercut(FlowId id, const Flow& f, TimePoint now) const {
  const double started_at = f.counter - f.last_charge;
  for (const auto& [other_id, other] : flows_) {
    if (other_id == id || other.queue.empty() || !(other.counter < started_at)) continue;
    if (flow_may_send(other, entries_.at(other.queue.front()), now)) return true;
  }
  return false;
}

unsigned Scheduler::free_slots() const {
  const unsigned used = inflight_ + held_;
  return used < limits_.max_inflight ? limits_.max_inflight - used : 0;
}

bool Scheduler::budget_allows(const Flow& f, const Entry& head) const {
  const uint64_t budget = f.limits.token_budget;
  return budget == 0 || f.used_tokens + f.reserved_tokens + head.est <= budget;
}

Scheduler::Flow* Scheduler::pick(TimePoint now, std::vector<Rejection>& rejected) {
  Flow* best = nullptr;
  const Entry* best_head = nullptr;
  for (auto& [flow_id, f] : flows_) {
    while (!f.queue.empty()) {
      const Entry& head = entries_.at(f.queue.front());
      if (budget_allows(f, head)) break;
      rejected.push_back({head.id, budget_reason(f, head)});
      count(f, [](Counters& c) { ++c.errors; });
      f.queue.pop_front();
      entries_.erase(rejected.back().id);
    }
    if (f.queue.empty()) continue;
    const Entry& head = entries_.at(f.queue.front());
    if (!flow_may_send(f, head, now)) continue;
    const bool better =
        best == nullptr ||
        (limits_.fair ? f.counter < best->counter ||
                            (f.counter == best->counter && head.enqueued < best_head->enqueued)
                      : head.enqueued < best_head->enqueued);
    if (better) {
      best = &f;
      best_head = &head;
    }
  }
  return best;
}

bool Scheduler::flow_may_send(const Flow& f, const Entry& head, TimePoint now) const {
  return head.not_before <= now && f.rpm.can_take(1, now) && f.tpm.can_take(static_cast<double>(head.est), now);
}

bool Scheduler::global_may_send(const Entry& head, TimePoint now) const {
  return rpm_.can_take(1, now) && tpm_.can_take(static_cast<double>(head.est), now);
}

TimePoint Scheduler::global_ready_at(const Entry& head, TimePoint now) const {
  return std::max(rpm_.available_at(1, now), tpm_.available_at(static_cast<double>(head.est), now));
}

void Scheduler::dispatch(Flow& f, Entry& e, TimePoint now) {
  f.queue.pop_front();
  e.inflight = true;
  e.dispatched = now;
  if (!e.first_dispatch) {
    e.first_dispatch = now;
    count(f, [&](Counters& c) { c.queue_time += now - e.enqueued; });
  }
  const auto est = static_cast<double>(e.est);
  floor_ = f.counter;
  f.counter += est / f.limits.weight;
  f.reserved_tokens += e.est;
  for (TokenBucket* b : {&rpm_, &f.rpm}) b->charge(1, now);
  for (TokenBucket* b : {&tpm_, &f.tpm}) b->charge(est, now);
  ++f.inflight;
  ++inflight_;
}

void Scheduler::release_slot(Flow& f, Entry& e) {
  e.inflight = false;
  f.reserved_tokens -= e.est;
  --f.inflight;
  --inflight_;
}

RequestTiming Scheduler::finish(RequestId id, TimePoint now) {
  const Entry& e = entries_.at(id);
  RequestTiming t;
  if (e.first_dispatch) {
    t.queued = *e.first_dispatch - e.enqueued;
    t.in_service = now - *e.first_dispatch;
  }
  entries_.erase(id);
  return t;
}

RequestTiming Scheduler::complete(RequestId id, const Usage& usage, TimePoint now) {
  Entry& e = entries_.at(id);
  Flow& f = flows_.at(e.flow);
  uint64_t actual = usage.total_tokens != 0 ? usage.total_tokens : usage.prompt_tokens + usage.completion_tokens;
  if (actual == 0) actual = e.est;  // provider reported nothing: keep the estimate
  const double delta = static_cast<double>(actual) - static_cast<double>(e.est);
  f.counter += delta / f.limits.weight;
  f.last_charge = static_cast<double>(actual) / f.limits.weight;
  for (TokenBucket* b : {&tpm_, &f.tpm}) b->charge(delta, now);
  release_slot(f, e);
  f.used_tokens += actual;
  count(f, [&](Counters& c) {
    ++c.completed;
    c.prompt_tokens += usage.prompt_tokens;
    c.completion_tokens += usage.completion_tokens;
    c.provider_time += now - e.dispatched;
  });
  const FlowId flow = e.flow;
  RequestTiming t = finish(id, now);
  maybe_hold(flow, f, now);  // after finish(): the entry no longer counts
  return t;
}

RequestTiming Scheduler::fail(RequestId id, TimePoint now) {
  Entry& e = entries_.at(id);
  Flow& f = flows_.at(e.flow);
  // The estimate stays charged: a failed call still held a slot, and a
  // timed-out one may well have been billed.
  release_slot(f, e);
  count(f, [&](Counters& c) {
    ++c.errors;
    c.provider_time += now - e.dispatched;
  });
  return finish(id, now);
}

void Scheduler::retry(RequestId id, TimePoint not_before, TimePoint now) {
  Entry& e = entries_.at(id);
  Flow& f = flows_.at(e.flow);
  const auto est = static_cast<double>(e.est);
  f.counter -= est / f.limits.weight;
  for (TokenBucket* b : {&tpm_, &f.tpm}) b->charge(-est, now);  // the RPM slot stays used
  release_slot(f, e);
  e.not_before = not_before;
  e.deadline = not_before + limits_.queue_timeout;
  f.queue.push_front(id);
  count(f, [&](Counters& c) {
    ++c.retries;
    c.provider_time += now - e.dispatched;
  });
}

void Scheduler::pause_until(TimePoint until) { paused_until_ = std::max(paused_until_, until); }

std::vector<RequestId> Scheduler::cancel_connection(uint64_t connection) {
  std::vector<RequestId> ids;
  for (const auto& [id, e] : entries_) {
    if (e.connection == connection) ids.push_back(id);
  }
  for (RequestId id : ids) {
    Entry& e = entries_.at(id);
    Flow& f = flows_.at(e.flow);
    if (e.inflight) {
      release_slot(f, e);
    } else {
      f.queue.erase(std::find(f.queue.begin(), f.queue.end(), id));
    }
    count(f, [](Counters& c) { ++c.cancelled; });
    entries_.erase(id);
  }
  return ids;
}

std::vector<RequestId> Scheduler::cancel_flow(FlowId flow) {
  std::vector<RequestId> ids;
  auto it = flows_.find(flow);
  if (it == flows_.end()) return ids;
  drop_hold(it->second);
  for (auto e = entries_.begin(); e != entries_.end();) {
    if (e->second.flow != flow) {
      ++e;
      continue;
    }
    ids.push_back(e->first);
    if (e->second.inflight) --inflight_;
    ++totals_.cancelled;
    e = entries_.erase(e);
  }
  flows_.erase(it);
  return ids;
}

std::optional<TimePoint> Scheduler::next_wake(TimePoint now, std::optional<TimePoint> global_block) const {
  std::optional<TimePoint> wake;
  auto consider = [&](TimePoint t) {
    t = std::max(t, now + std::chrono::milliseconds(1));  // never spin on "now"
    if (!wake || t < *wake) wake = t;
  };
  const bool slots_free = free_slots() > 0;
  for (const auto& [flow_id, f] : flows_) {
    for (RequestId id : f.queue) consider(entries_.at(id).deadline);
    if (f.hold_until) consider(*f.hold_until);  // then the held slot goes to others
    if (f.queue.empty() || !slots_free) continue;
    const Entry& head = entries_.at(f.queue.front());
    TimePoint ready = std::max({head.not_before, paused_until_, f.rpm.available_at(1, now),
                                f.tpm.available_at(static_cast<double>(head.est), now)});
    ready = std::max(ready, global_block ? *global_block : global_ready_at(head, now));
    consider(ready);
  }
  return wake;
}

std::string Scheduler::budget_reason(const Flow& f, const Entry& e) const {
  return fmt::format(
      "LLM token budget exhausted: this agent used {} of {} tokens ({} more in flight) and this request needs "
      "about {} (token_budget={})",
      f.used_tokens, f.limits.token_budget, f.reserved_tokens, e.est, f.limits.token_budget);
}

std::string Scheduler::blocked_reason(const Flow& f, const Entry& head, TimePoint now) const {
  const auto est = static_cast<double>(head.est);
  if (now < paused_until_) {
    return fmt::format("provider rate-limited us (HTTP 429), paused for {:.1f} s more", to_s(paused_until_ - now));
  }
  if (free_slots() == 0) {
    return fmt::format("all in-flight slots busy (max_inflight={})", limits_.max_inflight);
  }
  if (!f.rpm.can_take(1, now)) return fmt::format("agent request rate limit (rpm={:g})", f.limits.rpm);
  if (!f.tpm.can_take(est, now)) return fmt::format("agent token rate limit (tpm={:g})", f.limits.tpm);
  if (!rpm_.can_take(1, now)) return fmt::format("global request rate limit (rpm={:g})", limits_.rpm);
  if (!tpm_.can_take(est, now)) return fmt::format("global token rate limit (tpm={:g})", limits_.tpm);
  return "other agents' fair share came first";
}

json Scheduler::Counters::to_json() const {
  return {{"requests", requests},         {"completed", completed},
          {"errors", errors},             {"retries", retries},
          {"cancelled", cancelled},       {"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens}, {"queue_ms_total", to_ms(queue_time)},
          {"provider_ms_total", to_ms(provider_time)}, {"anticipated", anticipated},
          {"anticipation_hits", anticipation_hits}};
}

json Scheduler::flow_stats(FlowId flow) const {
  auto it = flows_.find(flow);
  if (it == flows_.end()) {
    json j = Counters{}.to_json();
    j["queued"] = 0;
    j["inflight"] = 0;
    return j;
  }
  const Flow& f = it->second;
  json j = f.stats.to_json();
  j["queued"] = f.queue.size();
  j["inflight"] = f.inflight;
  j["tokens_used"] = f.used_tokens;
  j["virtual_tokens"] = f.counter;
  j["limits"] = {{"weight", f.limits.weight},
                 {"rpm", f.limits.rpm},
                 {"tpm", f.limits.tpm},
                 {"token_budget", f.limits.token_budget}};
  return j;
}

json Scheduler::stats(TimePoint now) const {
  json j = totals_.to_json();
  j["queued"] = queued();
  j["inflight"] = inflight_;
  j["max_inflight"] = limits_.max_inflight;
  j["held"] = held_;
  j["anticipation_ms"] = to_ms(limits_.anticipation);
  j["flows"] = flows_.size();
  j["paused_for_ms"] = now < paused_until_ ? json(to_ms(paused_until_ - now)) : json(nullptr);
  return j;
}

size_t Scheduler::queued() const {
  size_t n = 0;
  for (const auto& [id, f] : flows_) n += f.queue.size();
  return n;
}

bool Scheduler::is_inflight(RequestId id) const {
  auto it = entries_.find(id);
  return it != entries_.end() && it->second.inflight;
}

double Scheduler::virtual_tokens(FlowId flow) const {
  auto it = flows_.find(flow);
  return it == flows_.end() ? 0.0 : it->second.counter;
}

}  // namespace agentos::llm

// Scheduler: who gets the next slot at the LLM provider. Pure logic — no
// I/O, no clock reads (every call takes `now`), so it is unit-tested with a
// fake clock and driven by LlmService on the reactor.
//
// Fairness is a virtual token counter per flow (VTC, Sheng et al. 2024,
// a start-time fair queuing variant for LLM serving): the backlogged flow
// with the smallest counter dispatches next; dispatch adds the estimated
// prompt tokens / weight, completion corrects it to the real total usage.
// A flow that becomes backlogged again is lifted to the smallest counter of
// the flows already waiting (or to the last dispatched counter), so idling
// never banks credit. Requests already dispatched are never pre-empted.
//
// Anticipation (CFQ's slice_idle, Iyer & Druschel's anticipatory disk
// scheduler): a closed-loop caller with one request outstanding is never
// backlogged at the moment its slot frees, so a purely work-conserving
// scheduler hands that slot to a greedy flow and the caller's next request,
// arriving a moment later, waits a whole service time. So when a request
// completes for a flow whose queue is then empty, while another flow is
// waiting and none of the waiting flows is behind it in virtual time, the
// slot is held for that flow for `anticipation`; its next request takes it
// at once. "Not behind" is judged at the start of the flow's last request
// (its counter minus that request's charge): a flow less than one request
// ahead of everyone waiting may keep its slot, which stays within the
// one-request lead VTC itself allows a backlogged flow, and lets the lead
// never grow past that. The hold ends early when a waiting flow falls below
// that mark; it never starts when nobody else is waiting (nothing to
// protect) or when the flow could not send anyway.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "llm/provider.hpp"
#include "llm/token_bucket.hpp"
#include "util/result.hpp"

namespace agentos::llm {

/// Kernel convention: the agent id for agents, (1<<40)+connection id for
/// operator connections.
using FlowId = uint64_t;
using RequestId = uint64_t;

/// Per-flow knobs; 0 means unlimited.
struct FlowLimits {
  double weight = 1;
  double rpm = 0, tpm = 0;
  uint64_t token_budget = 0;  ///< total tokens (prompt + completion) over the flow's life
};

struct SchedulerLimits {
  unsigned max_inflight = 8;
  double rpm = 0, tpm = 0;  ///< global buckets
  unsigned max_queue_per_flow = 64;
  std::chrono::nanoseconds queue_timeout = std::chrono::seconds(120);
  bool fair = true;  ///< false: plain FIFO across flows (benchmark contrast)
  /// How long a completed flow's slot is held for its next request (see
  /// the file comment); 0 disables it. Only in fair mode.
  std::chrono::nanoseconds anticipation{0};
};

struct Rejection {
  RequestId id;
  std::string reason;
};

/// What the caller must do after poll(): start `dispatch` (in order), answer
/// `rejected` with the reason, and call poll() again at `wake` (if set) or
/// when something changes (enqueue, completion, limits).
struct PollResult {
  std::vector<RequestId> dispatch;
  std::vector<Rejection> rejected;
  std::optional<TimePoint> wake;
};

struct RequestTiming {
  std::chrono::nanoseconds queued{0};      ///< enqueue → first dispatch
  std::chrono::nanoseconds in_service{0};  ///< first dispatch → now (retries included)
};

class Scheduler {
 public:
  Scheduler(SchedulerLimits limits, TimePoint now);

  /// Queues a request; fails (naming the limit) if the flow's queue is full
  /// or its token budget is used up. `est_tokens` is the prompt estimate.
  Result<void> enqueue(RequestId id, FlowId flow, uint64_t connection, uint64_t est_tokens, TimePoint now);
  /// Expires timed-out requests and hands out every slot that may be used now.
  PollResult poll(TimePoint now);
  /// A dispatched request succeeded: frees its slot, charges real usage.
  RequestTiming complete(RequestId id, const Usage& usage, TimePoint now);
  /// A dispatched request failed for good: frees its slot, counts an error.
  RequestTiming fail(RequestId id, TimePoint now);
  /// A dispatched request will be retried: refunds its estimated charge and
  /// puts it back at the head of its flow, not dispatched before `not_before`.
  void retry(RequestId id, TimePoint not_before, TimePoint now);
  /// Stops all dispatch until `until` (the provider said 429).
  void pause_until(TimePoint until);
  /// Forgets queued and in-flight requests of a connection; returns their
  /// ids (the in-flight ones must be aborted by the caller).
  std::vector<RequestId> cancel_connection(uint64_t connection);
  /// Same for a whole flow, then forgets the flow (counter, buckets, stats).
  std::vector<RequestId> cancel_flow(FlowId flow);
  void set_flow_limits(FlowId flow, FlowLimits limits, TimePoint now);

  [[nodiscard]] nlohmann::json flow_stats(FlowId flow) const;
  [[nodiscard]] nlohmann::json stats(TimePoint now) const;
  [[nodiscard]] size_t queued() const;
  [[nodiscard]] size_t inflight() const { return inflight_; }
  /// Slots currently held for an anticipated request.
  [[nodiscard]] size_t held() const { return held_; }
  [[nodiscard]] bool is_inflight(RequestId id) const;
  /// The flow's virtual token counter (for tests and stats).
  [[nodiscard]] double virtual_tokens(FlowId flow) const;

 private:
  struct Entry {
    RequestId id;
    FlowId flow;
    uint64_t connection;
    uint64_t est;
    TimePoint enqueued, not_before, deadline, dispatched;
    std::optional<TimePoint> first_dispatch;
    bool inflight = false;
  };
  struct Counters {
    uint64_t requests = 0, completed = 0, errors = 0, retries = 0, cancelled = 0;
    uint64_t prompt_tokens = 0, completion_tokens = 0;
    uint64_t anticipated = 0, anticipation_hits = 0;  ///< holds granted / used by the flow's next request
    std::chrono::nanoseconds queue_time{0}, provider_time{0};
    [[nodiscard]] nlohmann::json to_json() const;
  };
  struct Flow {
    FlowLimits limits;
    TokenBucket rpm, tpm;
    double counter = 0;
    std::deque<RequestId> queue;
    unsigned inflight = 0;
    uint64_t used_tokens = 0, reserved_tokens = 0;
    std::optional<TimePoint> hold_until;  ///< a slot is held for this flow until then
    double last_charge = 0;               ///< what its last completed request added to `counter`
    Counters stats;
  };

  Flow& flow_for(FlowId id, TimePoint now);
  void lift_counter(FlowId id, Flow& f);
  void expire(TimePoint now, std::vector<Rejection>& rejected);
  void maybe_hold(FlowId id, Flow& f, TimePoint now);
  void claim_holds(TimePoint now, PollResult& out);
  void drop_hold(Flow& f);
  [[nodiscard]] bool others_waiting(FlowId id, TimePoint now) const;
  [[nodiscard]] bool undercut(FlowId id, const Flow& f, TimePoint now) const;
  [[nodiscard]] unsigned free_slots() const;
  [[nodiscard]] bool budget_allows(const Flow& f, const Entry& head) const;
  Flow* pick(TimePoint now, std::vector<Rejection>& rejected);
  bool flow_may_send(const Flow& f, const Entry& head, TimePoint now) const;
  bool global_may_send(const Entry& head, TimePoint now) const;
  [[nodiscard]] TimePoint global_ready_at(const Entry& head, TimePoint now) const;
  void dispatch(Flow& f, Entry& e, TimePoint now);
  void release_slot(Flow& f, Entry& e);
  RequestTiming finish(RequestId id, TimePoint now);
  std::optional<TimePoint> next_wake(TimePoint now, std::optional<TimePoint> global_block) const;
  [[nodiscard]] std::string budget_reason(const Flow& f, const Entry& e) const;
  [[nodiscard]] std::string blocked_reason(const Flow& f, const Entry& head, TimePoint now) const;
  template <class F>
  void count(Flow& f, F&& update) {
    update(f.stats);
    update(totals_);
  }

  SchedulerLimits limits_;
  TokenBucket rpm_, tpm_;
  std::map<FlowId, Flow> flows_;  // ordered: deterministic tie-breaks
  std::unordered_map<RequestId, Entry> entries_;
  unsigned inflight_ = 0;
  unsigned held_ = 0;  // flows with hold_until set
  double floor_ = 0;  // counter of the last dispatch, for lifting idle flows
  TimePoint paused_until_{};
  Counters totals_;
};

}  // namespace agentos::llm

#include "llm/llm_service.hpp"

#include <cmath>
#include <fmt/format.h>

#include "util/log.hpp"

namespace agentos::llm {

using nlohmann::json;

namespace {

double to_ms(std::chrono::nanoseconds d) { return std::round(static_cast<double>(d.count()) / 1e5) / 10.0; }

std::chrono::nanoseconds seconds(double s) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
}

SchedulerLimits scheduler_limits(const LlmConfig& c) {
  return {c.max_inflight, c.rpm, c.tpm, c.max_queue_per_flow, seconds(c.queue_timeout_s), c.scheduler == "fair",
          seconds(c.anticipation_ms / 1000)};
}

RetryPolicy retry_policy(const LlmConfig& c) {
  return {c.max_retries, seconds(c.retry_budget_s), seconds(c.backoff_base_s), seconds(c.backoff_max_s)};
}

}  // namespace

LlmService::LlmService(Reactor& reactor, LlmConfig config)
    : reactor_(reactor),
      config_(std::move(config)),
      retry_policy_(retry_policy(config_)),
      scheduler_(scheduler_limits(config_), reactor.now()) {}

LlmService::~LlmService() = default;

Result<std::unique_ptr<LlmService>> LlmService::create(Reactor& reactor, LlmConfig config) {
  if (auto ok = config.validate(); !ok) return std::unexpected(ok.error().wrap("LLM config"));
  std::unique_ptr<LlmService> s(new LlmService(reactor, std::move(config)));
  if (!s->config_.configured()) {
    log::info("llm: no provider configured; THINK will answer with an error");
    return s;
  }
  s->provider_ = AOS_TRY(make_provider(s->config_));
  s->http_ = AOS_TRY(HttpClient::create(reactor));
  log::info("llm: provider {} model {} at {}", s->config_.provider, s->config_.model, s->config_.base_url);
  return s;
}

void LlmService::submit(FlowId flow, uint64_t connection_id, std::string_view payload, Done done) {
  const RequestId id = next_id_++;
  const TimePoint now = reactor_.now();
  Pending p{flow, connection_id, {}, config_.model, std::move(done), now, {}, 0, 0};
  Result<ThinkRequest> parsed = configured() ? parse_think_payload(payload) : make_error(kNotConfigured);
  if (!parsed) {
    ++invalid_requests_;
    pending_.emplace(id, std::move(p));
    reply_later(id, parsed.error().message());
    return;
  }
  p.request = std::move(*parsed);
  if (!p.request.model.empty()) p.model = p.request.model;
  auto queued = scheduler_.enqueue(id, flow, connection_id, estimate_prompt_tokens(p.request), now);
  pending_.emplace(id, std::move(p));
  if (!queued) {
    reply_later(id, queued.error().message());
    return;
  }
  schedule_pump();
}

void LlmService::reply_later(RequestId id, std::string error) {
  reactor_.defer([this, alive = std::weak_ptr<char>(alive_), id, error = std::move(error)]() mutable {
    if (alive.expired()) return;
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // cancelled in the meantime
    finish_error(id, std::move(error), timing_so_far(it->second, reactor_.now()));
  });
}

void LlmService::schedule_pump() {
  // Coalesce: many submits in one callback cost one poll.
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  reactor_.defer([this, alive = std::weak_ptr<char>(alive_)] {
    if (alive.expired()) return;
    pump_scheduled_ = false;
    pump();
  });
}

void LlmService::pump() {
  const TimePoint now = reactor_.now();
  PollResult r = scheduler_.poll(now);
  wake_timer_ = r.wake ? reactor_.after(*r.wake - now, [this] { pump(); }) : Timer{};
  // `done` callbacks below may re-enter (submit, cancel_*): every id is
  // looked up again rather than trusted.
  for (RequestId id : r.dispatch) {
    if (pending_.contains(id) && scheduler_.is_inflight(id)) start_attempt(id, now);
  }
  for (auto& rej : r.rejected) {
    auto it = pending_.find(rej.id);
    if (it != pending_.end()) finish_error(rej.id, std::move(rej.reason), timing_so_far(it->second, now));
  }
}

void LlmService::start_attempt(RequestId id, TimePoint now) {
  Pending& p = pending_.at(id);
  if (p.attempts++ == 0) p.first_attempt = now;
  auto request = provider_->build(p.request, p.model);
  if (!request) {
    finish_error(id, request.error().message(), scheduler_.fail(id, now));
    schedule_pump();  // the slot is free again
    return;
  }
  auto transfer = http_->start(*request, [this, id](HttpResponse response) { on_response(id, std::move(response)); });
  if (!transfer) {
    on_failure(id, {FailureKind::retryable, "HTTP setup failed: " + transfer.error().message(), {}}, now);
    schedule_pump();
    return;
  }
  p.transfer = *transfer;
}

void LlmService::on_response(RequestId id, HttpResponse response) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  it->second.transfer = 0;
  const TimePoint now = reactor_.now();
  ProviderResult result = provider_->parse(response, it->second.model);
  if (!result) {
    on_failure(id, result.error(), now);
  } else {
    const RequestTiming timing = scheduler_.complete(id, result->usage, now);
    json reply = reply_base(it->second, timing);
    reply["content"] = std::move(result->content);
    reply["tokens"] = result->usage.total_tokens;
    reply["model"] = std::move(result->model);
    reply["usage"] = {{"prompt_tokens", result->usage.prompt_tokens},
                      {"completion_tokens", result->usage.completion_tokens},
                      {"total_tokens", result->usage.total_tokens}};
    reply["finish_reason"] = std::move(result->finish_reason);
    finish(id, std::move(reply));
  }
  schedule_pump();
}

void LlmService::on_failure(RequestId id, const ProviderFailure& failure, TimePoint now) {
  Pending& p = pending_.at(id);
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  if (failure.kind == FailureKind::rate_limited) {
    // The provider's limit is shared by every flow: hold everyone back.
    const auto pause = backoff_delay(retry_policy_, p.attempts, failure.retry_after, u);
    scheduler_.pause_until(now + pause);
    log::warn("llm: provider rate limit, pausing dispatch for {:.1f} s: {}", to_ms(pause) / 1000, failure.message);
  }
  if (auto when = retry_at(retry_policy_, failure, p.attempts, p.first_attempt, now, u)) {
    log::debug("llm: request {} attempt {} failed ({}), retrying in {:.0f} ms", id, p.attempts, failure.message,
               to_ms(*when - now));
    scheduler_.retry(id, *when, now);
    return;
  }
  std::string message = failure.message;
  if (p.attempts > 1) message += fmt::format(" (gave up after {} attempts)", p.attempts);
  finish_error(id, std::move(message), scheduler_.fail(id, now));
}

json LlmService::reply_base(const Pending& p, RequestTiming timing) const {
  return {{"content", ""},
          {"tokens", 0},
          {"error", nullptr},
          {"model", p.model},
          {"usage", {{"prompt_tokens", 0}, {"completion_tokens", 0}, {"total_tokens", 0}}},
          {"finish_reason", nullptr},
          {"queue_ms", to_ms(timing.queued)},
          {"latency_ms", to_ms(timing.in_service)},
          {"attempts", p.attempts}};
}

RequestTiming LlmService::timing_so_far(const Pending& p, TimePoint now) const {
  if (p.attempts == 0) return {now - p.submitted, {}};
  return {p.first_attempt - p.submitted, now - p.first_attempt};
}

void LlmService::finish_error(RequestId id, std::string error, RequestTiming timing) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  json reply = reply_base(it->second, timing);
  reply["error"] = std::move(error);
  finish(id, std::move(reply));
}

void LlmService::finish(RequestId id, json reply) {
  auto node = pending_.extract(id);
  if (node.empty()) return;
  Done done = std::move(node.mapped().done);
  // Provider text may carry invalid UTF-8; never let dump() throw here.
  if (done) done(reply.dump(-1, ' ', false, json::error_handler_t::replace));
}

template <class Pred>
void LlmService::drop_pending(Pred&& covered) {
  bool dropped = false;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!covered(it->second)) {
      ++it;
      continue;
    }
    if (it->second.transfer != 0) http_->abort(it->second.transfer);
    it = pending_.erase(it);
    dropped = true;
  }
  if (dropped) schedule_pump();  // slots may have been freed
}

void LlmService::cancel_connection(uint64_t connection_id) {
  scheduler_.cancel_connection(connection_id);
  drop_pending([&](const Pending& p) { return p.connection == connection_id; });
}

void LlmService::cancel_flow(FlowId flow) {
  scheduler_.cancel_flow(flow);
  drop_pending([&](const Pending& p) { return p.flow == flow; });
}

void LlmService::set_flow_limits(FlowId flow, FlowLimits limits) {
  scheduler_.set_flow_limits(flow, limits, reactor_.now());
  schedule_pump();
}

json LlmService::flow_stats(FlowId flow) const { return scheduler_.flow_stats(flow); }

json LlmService::stats() const {
  json j = scheduler_.stats(reactor_.now());
  j["configured"] = configured();
  j["provider"] = config_.provider;
  j["model"] = config_.model;
  j["invalid_requests"] = invalid_requests_;
  j["http_transfers"] = http_ ? http_->active() : 0;
  return j;
}

}  // namespace agentos::llm

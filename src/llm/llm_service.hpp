// LlmService: the facade the kernel uses for THINK. Parses the payload,
// queues it in the caller's flow, lets the Scheduler pick what goes to the
// provider next, runs the HTTP exchange on the reactor, retries what may be
// retried, and answers with one reply JSON per request.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kernel/reactor.hpp"
#include "llm/http_client.hpp"
#include "llm/llm_config.hpp"
#include "llm/provider.hpp"
#include "llm/retry_policy.hpp"
#include "llm/scheduler.hpp"
#include "llm/think_request.hpp"
#include "util/result.hpp"

namespace agentos::llm {

class LlmService {
 public:
  using Done = std::move_only_function<void(std::string reply_json)>;

  static constexpr const char* kNotConfigured =
      "LLM not configured (set GEMINI_API_KEY, GOOGLE_API_KEY or OPENAI_API_KEY)";

  /// Validates `config`; an empty provider gives a service that answers
  /// every request with kNotConfigured.
  static Result<std::unique_ptr<LlmService>> create(Reactor& reactor, LlmConfig config);
  /// Drops all work: in-flight transfers are aborted, no `done` is called.
  ~LlmService();
  LlmService(const LlmService&) = delete;
  LlmService& operator=(const LlmService&) = delete;

  [[nodiscard]] bool configured() const { return provider_ != nullptr; }
  [[nodiscard]] const LlmConfig& config() const { return config_; }

  /// Parses `payload` (plain text or JSON), queues it in `flow` and calls
  /// `done` exactly once, later on the loop (never inside submit()), with
  ///   {"content","tokens","error":null,"model","usage":{prompt_tokens,
  ///    completion_tokens,total_tokens},"finish_reason","queue_ms",
  ///    "latency_ms","attempts"}
  /// or the same shape with content "", tokens 0 and "error": "<reason>".
  /// `done` is never called once cancel_connection/cancel_flow covered the
  /// request. Do not destroy the service from inside `done`.
  void submit(FlowId flow, uint64_t connection_id, std::string_view payload, Done done);
  void set_flow_limits(FlowId flow, FlowLimits limits);
  /// Drops the connection's queued requests and aborts its HTTP transfers.
  void cancel_connection(uint64_t connection_id);
  /// Same for a whole flow (agent gone or operator connection closed), then
  /// forgets the flow's counters and stats. Call it for every flow that ends:
  /// flows are otherwise kept for their stats.
  void cancel_flow(FlowId flow);

  /// requests, completed, errors, retries, cancelled, prompt_tokens,
  /// completion_tokens, queue_ms_total, provider_ms_total, queued, inflight, ...
  [[nodiscard]] nlohmann::json flow_stats(FlowId flow) const;
  /// Global totals plus queued, inflight, paused_for_ms, provider, model.
  [[nodiscard]] nlohmann::json stats() const;

 private:
  struct Pending {
    FlowId flow = 0;
    uint64_t connection = 0;
    ThinkRequest request;
    std::string model;
    Done done;
    TimePoint submitted{};
    TimePoint first_attempt{};
    unsigned attempts = 0;
    uint64_t transfer = 0;  // 0 when no HTTP exchange is running
  };

  LlmService(Reactor& reactor, LlmConfig config);
  void reply_later(RequestId id, std::string error);
  void schedule_pump();
  void pump();
  void start_attempt(RequestId id, TimePoint now);
  void on_response(RequestId id, HttpResponse response);
  void on_failure(RequestId id, const ProviderFailure& failure, TimePoint now);
  void finish_error(RequestId id, std::string error, RequestTiming timing);
  void finish(RequestId id, nlohmann::json reply);
  [[nodiscard]] nlohmann::json reply_base(const Pending& p, RequestTiming timing) const;
  [[nodiscard]] RequestTiming timing_so_far(const Pending& p, TimePoint now) const;
  template <class Pred>
  void drop_pending(Pred&& covered);

  Reactor& reactor_;
  LlmConfig config_;
  RetryPolicy retry_policy_;
  std::unique_ptr<LlmProvider> provider_;
  Scheduler scheduler_;
  std::unordered_map<RequestId, Pending> pending_;
  std::unique_ptr<HttpClient> http_;
  Timer wake_timer_;
  RequestId next_id_ = 1;
  bool pump_scheduled_ = false;
  uint64_t invalid_requests_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
  // Deferred tasks hold a weak_ptr to this: they may outlive the service.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace agentos::llm

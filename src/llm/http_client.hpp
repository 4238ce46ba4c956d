// HttpClient: libcurl's multi interface driven by the Reactor. One multi
// handle (connection cache, keep-alive, HTTP/2 multiplexing), sockets watched
// through CURLMOPT_SOCKETFUNCTION and curl's single timeout through
// CURLMOPT_TIMERFUNCTION. Nothing blocks the loop thread.
//
// Threads: Debian's libcurl uses the threaded resolver, so a transfer to a
// host *name* runs getaddrinfo() on a short-lived helper thread owned by
// libcurl (it reports back through a socketpair that we watch like any other
// socket). Numeric hosts and "localhost" are resolved inline without a thread.
// The kernel's own code never runs off the loop thread.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "kernel/reactor.hpp"
#include "llm/http_message.hpp"
#include "util/result.hpp"

namespace agentos::llm {

class HttpClient {
 public:
  using Callback = std::move_only_function<void(HttpResponse)>;

  /// Initialises libcurl once per process and creates the multi handle.
  static Result<std::unique_ptr<HttpClient>> create(Reactor& reactor);
  /// Aborts every transfer without calling its callback.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Starts a POST. `done` runs later on the loop (never inside start())
  /// exactly once, unless abort() comes first. Returns the transfer id (> 0).
  [[nodiscard]] Result<uint64_t> start(const HttpRequest& request, Callback done);
  /// Stops a transfer and drops its callback; unknown ids are ignored.
  void abort(uint64_t id);
  [[nodiscard]] size_t active() const { return transfers_.size(); }
  /// Response bodies beyond this fail the transfer (a broken or hostile server).
  static constexpr size_t kMaxBody = 16 * 1024 * 1024;

 private:
  struct Transfer;
  struct MultiDeleter {
    void operator()(CURLM* m) const { curl_multi_cleanup(m); }
  };

  explicit HttpClient(Reactor& reactor);
  static int on_socket(CURL* easy, curl_socket_t s, int what, void* self, void* socketp);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  void set_timer(long timeout_ms);
  void timeout_now(uint64_t generation);
  static void configure(Transfer& t, const HttpRequest& request);
  void watch_socket(curl_socket_t s, int what);
  void socket_action(curl_socket_t s, int ev_bitmask);
  void drain_finished();
  void complete(Transfer& t, CURLcode code);

  Reactor& reactor_;
  std::unique_ptr<CURLM, MultiDeleter> multi_;
  std::unordered_map<curl_socket_t, FdWatch> sockets_;
  Timer timer_;
  uint64_t timer_generation_ = 0;  // bumped by every CURLMOPT_TIMERFUNCTION call
  bool in_deferred_timeout_ = false;
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers_;
  uint64_t next_id_ = 1;
  // Deferred tasks hold a weak_ptr to this: they may outlive the client.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace agentos::llm

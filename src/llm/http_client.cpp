#include "llm/http_client.hpp"

#include <cctype>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "util/log.hpp"

namespace agentos::llm {
namespace {

struct EasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

bool iequals_prefix(std::string_view line, std::string_view prefix) {
  if (line.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

}  // namespace

struct HttpClient::Transfer {
  uint64_t id = 0;
  CURLM* multi = nullptr;
  std::unique_ptr<CURL, EasyDeleter> easy;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  std::string body;
  HttpResponse response;
  Callback done;
  bool body_too_large = false;
  char error[CURL_ERROR_SIZE] = {};

  // Removing the easy handle from the multi before freeing it is required;
  // doing it here makes abort() and shutdown a plain erase.
  ~Transfer() {
    if (easy) curl_multi_remove_handle(multi, easy.get());
  }

  static size_t on_body(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    if (t->response.body.size() + size * n > kMaxBody) {
      t->body_too_large = true;
      return 0;  // makes curl fail the transfer with CURLE_WRITE_ERROR
    }
    t->response.body.append(data, size * n);
    return size * n;
  }

  static size_t on_header(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<Transfer*>(self);
    const std::string_view line(data, size * n);
    // A new status line starts a new header block (100 Continue, redirects).
    if (line.starts_with("HTTP/")) t->response.retry_after.clear();
    if (iequals_prefix(line, "retry-after:")) t->response.retry_after = trim(line.substr(12));
    return size * n;
  }
};

HttpClient::HttpClient(Reactor& reactor) : reactor_(reactor) {}

Result<std::unique_ptr<HttpClient>> HttpClient::create(Reactor& reactor) {
  // curl_global_init is not thread-safe before 7.84; once is enough anyway.
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) return make_error(std::string("curl_global_init: ") + curl_easy_strerror(init));
  std::unique_ptr<HttpClient> c(new HttpClient(reactor));
  c->multi_.reset(curl_multi_init());
  if (!c->multi_) return make_error("curl_multi_init failed");
  CURLM* m = c->multi_.get();
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, &HttpClient::on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c.get());
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, &HttpClient::on_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, c.get());
  return c;
}

HttpClient::~HttpClient() {
  // Order matters: easy handles leave the multi first, then the multi closes
  // its cached connections (which calls on_socket for each), and only then
  // may the socket watches and the timer go.
  transfers_.clear();
  multi_.reset();
  sockets_.clear();
  timer_.cancel();
}

namespace {

Result<curl_slist*> make_header_list(const std::vector<std::string>& headers) {
  // Disable "Expect: 100-continue", which costs a round trip (or a 1 s stall
  // with servers that ignore it) for bodies over 1 KiB.
  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  if (list == nullptr) return make_error("curl_slist_append failed");
  for (const auto& h : headers) {
    curl_slist* grown = curl_slist_append(list, h.c_str());
    if (grown == nullptr) {
      curl_slist_free_all(list);
      return make_error("curl_slist_append failed");
    }
    list = grown;
  }
  return list;
}

}  // namespace

void HttpClient::configure(Transfer& t, const HttpRequest& request) {
  CURL* e = t.easy.get();
  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers.get());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM-based timeouts in a daemon
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "agentos/" AGENTOS_VERSION);
  curl_easy_setopt(e, CURLOPT_PRIVATE, reinterpret_cast<void*>(static_cast<uintptr_t>(t.id)));
}

Result<uint64_t> HttpClient::start(const HttpRequest& request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->multi = multi_.get();
  t->done = std::move(done);
  t->body = request.body;
  t->headers.reset(AOS_TRY(make_header_list(request.headers)));
  t->easy.reset(curl_easy_init());
  if (!t->easy) return make_error("curl_easy_init failed");
  configure(*t, request);
  // add_handle only registers the transfer and asks for a 0 ms timeout via
  // on_timer; the transfer starts from the reactor, so `done` cannot run
  // inside start().
  const CURLMcode rc = curl_multi_add_handle(multi_.get(), t->easy.get());
  if (rc != CURLM_OK) {
    t->easy.reset();  // never added: nothing to remove
    return make_error(std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc));
  }
  const uint64_t id = t->id;
  transfers_.emplace(id, std::move(t));
  return id;
}

void HttpClient::abort(uint64_t id) { transfers_.erase(id); }

int HttpClient::on_socket(CURL* /*easy*/, curl_socket_t s, int what, void* self, void* /*socketp*/) {
  static_cast<HttpClient*>(self)->watch_socket(s, what);
  return 0;
}

void HttpClient::watch_socket(curl_socket_t s, int what) {
  if (what == CURL_POLL_REMOVE) {
    // curl reports REMOVE before it closes the socket, so the epoll DEL in
    // ~FdWatch still refers to the right file.
    sockets_.erase(s);
    return;
  }
  const uint32_t events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
  if (auto it = sockets_.find(s); it != sockets_.end()) {
    if (auto r = it->second.set_events(events); !r) log::warn("llm http: {}", r.error().message());
    return;
  }
  auto w = reactor_.watch(s, events, [this, s](uint32_t ev) {
    int mask = 0;
    if (ev & (EPOLLIN | EPOLLHUP)) mask |= CURL_CSELECT_IN;
    if (ev & EPOLLOUT) mask |= CURL_CSELECT_OUT;
    if (ev & EPOLLERR) mask |= CURL_CSELECT_ERR;
    socket_action(s, mask);
  });
  // Without a watch curl never hears about this socket; its timeout then
  // fails the transfer, which is the right outcome for a broken loop.
  if (!w) {
    log::warn("llm http: watch socket {}: {}", s, w.error().message());
    return;
  }
  sockets_.emplace(s, std::move(*w));
}

int HttpClient::on_timer(CURLM* /*multi*/, long timeout_ms, void* self) {
  static_cast<HttpClient*>(self)->set_timer(timeout_ms);
  return 0;
}

void HttpClient::set_timer(long timeout_ms) {
  // Each call replaces the previous timeout (curl keeps a single one).
  timer_.cancel();
  const uint64_t generation = ++timer_generation_;
  if (timeout_ms < 0) return;
  // Never act from inside a curl callback: even "now" waits for the loop.
  // curl asks for "now" on every curl_multi_add_handle; a deferred task
  // costs no system call, where a 0 ms reactor timer costs two
  // timerfd_settime calls (about a fifth of the kernel's CPU per THINK,
  // measured with perf). If curl asks for "now" again from the very action
  // it asked for, go through a timer so that epoll still gets its turn.
  if (timeout_ms == 0 && !in_deferred_timeout_) {
    reactor_.defer([this, generation, alive = std::weak_ptr<char>(alive_)] {
      if (!alive.expired()) timeout_now(generation);
    });
    return;
  }
  timer_ = reactor_.after(std::chrono::milliseconds(timeout_ms), [this] { socket_action(CURL_SOCKET_TIMEOUT, 0); });
}

void HttpClient::timeout_now(uint64_t generation) {
  if (generation != timer_generation_) return;  // curl has set another timeout since
  in_deferred_timeout_ = true;
  socket_action(CURL_SOCKET_TIMEOUT, 0);
  in_deferred_timeout_ = false;
}

void HttpClient::socket_action(curl_socket_t s, int ev_bitmask) {
  int running = 0;
  const CURLMcode rc = curl_multi_socket_action(multi_.get(), s, ev_bitmask, &running);
  if (rc != CURLM_OK) log::warn("llm http: curl_multi_socket_action: {}", curl_multi_strerror(rc));
  drain_finished();
}

void HttpClient::drain_finished() {
  // Collect first: a completion callback may abort() other transfers, which
  // frees their easy handles, so no CURLMsg may be read after a callback ran.
  std::vector<std::pair<uint64_t, CURLcode>> finished;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    void* priv = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    finished.emplace_back(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(priv)), msg->data.result);
  }
  for (auto [id, code] : finished) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) continue;  // aborted by an earlier callback
    complete(*it->second, code);
  }
}

void HttpClient::complete(Transfer& t, CURLcode code) {
  HttpResponse response = std::move(t.response);
  curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &response.status);
  if (code != CURLE_OK) {
    response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
    response.transport_error = t.body_too_large ? "response body larger than 16 MiB"
                               : t.error[0] != '\0' ? std::string(t.error)
                                                    : std::string(curl_easy_strerror(code));
  }
  Callback done = std::move(t.done);
  const uint64_t id = t.id;
  transfers_.erase(id);  // `t` is gone from here on
  done(std::move(response));
}

}  // namespace agentos::llm

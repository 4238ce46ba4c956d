// LlmService end to end: a real Reactor, real libcurl and the fake provider
// (tests/fakes/fake_llm.py) as a subprocess, for Gemini and OpenAI.
#include "llm/llm_service.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>

#include "util/unique_fd.hpp"

extern char** environ;

namespace agentos::llm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kFakeRel = "tests/fakes/fake_llm.py";

std::optional<fs::path> find_fake_script() {
  if (const char* src = std::getenv("AGENTOS_SOURCE_DIR"); src != nullptr && fs::exists(fs::path(src) / kFakeRel)) {
    return fs::path(src) / kFakeRel;
  }
  std::error_code ec;
  for (fs::path dir : {fs::read_symlink("/proc/self/exe", ec).parent_path(), fs::current_path(ec)}) {
    for (; !dir.empty(); dir = dir.parent_path()) {
      if (fs::exists(dir / kFakeRel, ec)) return dir / kFakeRel;
      if (dir == dir.root_path()) break;
    }
  }
  return std::nullopt;
}

size_t append_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Blocking HTTP for talking to the fake's control endpoints (test side only).
json http_json(const std::string& url, const std::optional<json>& post) {
  std::string body;
  std::string request = post ? post->dump() : "";
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (post) curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.c_str());
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  EXPECT_EQ(rc, CURLE_OK) << url << ": " << curl_easy_strerror(rc);
  return json::parse(body, nullptr, false);
}

/// The fake provider as a child process; killed and reaped by pid on scope exit.
class FakeLlm {
 public:
  static std::unique_ptr<FakeLlm> start(const fs::path& script) {
    int out[2], in[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) return nullptr;
    UniqueFd out_r(out[0]), out_w(out[1]), in_r(in[0]), in_w(in[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
    posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
    std::string path = script.string();
    // --exit-on-stdin-eof: if this test process dies, the fake follows.
    const char* argv[] = {kPython, path.c_str(), "--exit-on-stdin-eof", nullptr};
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, kPython, &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return nullptr;
    std::unique_ptr<FakeLlm> f(new FakeLlm(pid, std::move(in_w)));
    out_w.reset();
    f->port_ = read_port(out_r.get());
    if (f->port_ <= 0) return nullptr;
    return f;
  }

  ~FakeLlm() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  json control(const json& knobs) { return http_json(url() + "/_control", knobs); }
  json log() { return http_json(url() + "/_requests", std::nullopt); }

 private:
  FakeLlm(pid_t pid, UniqueFd stdin_w) : pid_(pid), stdin_w_(std::move(stdin_w)) {}

  // First stdout line is the port; a deadline guards against a broken fake.
  static int read_port(int fd) {
    std::string line;
    const auto deadline = Clock::now() + 20s;
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[64];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) return -1;
      line.append(buf, static_cast<size_t>(n));
    }
    return std::atoi(line.c_str());
  }

  pid_t pid_;
  UniqueFd stdin_w_;
  int port_ = 0;
};

class LlmServiceFake : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto script = find_fake_script();
    if (!script) GTEST_SKIP() << kFakeRel << " not found (set AGENTOS_SOURCE_DIR to the source tree)";
    if (::access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " not available";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fake_ = FakeLlm::start(*script);
    ASSERT_NE(fake_, nullptr) << "could not start " << *script;
    auto r = Reactor::create();
    ASSERT_TRUE(r.has_value());
    reactor_ = std::move(*r);
  }

  void TearDown() override {
    if (service_) {
      service_.reset();
      // Every socket watch and timer of the service is gone with it.
      EXPECT_EQ(reactor_->watched_fds(), 0u);
      EXPECT_EQ(reactor_->pending_timers(), 0u);
    }
    reactor_.reset();
    fake_.reset();
  }

  [[nodiscard]] bool gemini() const { return GetParam() == "gemini"; }

  LlmConfig config() const {
    LlmConfig c;
    c.provider = GetParam();
    c.model = gemini() ? "gemini-2.0-flash" : "gpt-test";
    c.base_url = gemini() ? fake_->url() : fake_->url() + "/v1";
    c.api_key = "fake-key";
    c.backoff_base_s = 0.01;
    c.backoff_max_s = 0.05;
    return c;
  }

  void make_service(LlmConfig c) {
    auto s = LlmService::create(*reactor_, std::move(c));
    ASSERT_TRUE(s.has_value()) << s.error().message();
    service_ = std::move(*s);
  }

  /// Submits and records the reply (parsed) into replies_[key].
  void submit(FlowId flow, uint64_t conn, std::string payload, std::string key) {
    service_->submit(flow, conn, payload, [this, key = std::move(key)](std::string reply) {
      replies_[key] = json::parse(reply);
      order_.push_back(key);
    });
  }

  // Runs the loop until `done` or a generous safety deadline (not a timing
  // assertion: the assertion is on the outcome).
  bool run_until(const std::function<bool()>& done, std::chrono::seconds limit = 30s) {
    const auto deadline = Clock::now() + limit;
    while (!done() && Clock::now() < deadline) EXPECT_TRUE(reactor_->run_once(20).has_value());
    return done();
  }

  json reply(const std::string& key) {
    EXPECT_TRUE(run_until([&] { return replies_.contains(key); })) << "no reply for " << key;
    return replies_.contains(key) ? replies_[key] : json();
  }

  std::unique_ptr<FakeLlm> fake_;
  std::unique_ptr<Reactor> reactor_;
  std::unique_ptr<LlmService> service_;
  std::map<std::string, json> replies_;
  std::vector<std::string> order_;
};

TEST_P(LlmServiceFake, SuccessfulRepliesCarryUsageAndReuseTheConnection) {
  make_service(config());
  for (int i = 0; i < 3; ++i) {
    const std::string key = "r" + std::to_string(i);
    submit(1, 1, "hello " + std::to_string(i), key);
    json r = reply(key);
    EXPECT_EQ(r["error"], nullptr) << r.dump();
    EXPECT_EQ(r["content"], "echo: hello " + std::to_string(i));
    EXPECT_GT(r["usage"]["prompt_tokens"].get<uint64_t>(), 0u);
    EXPECT_GT(r["usage"]["completion_tokens"].get<uint64_t>(), 0u);
    EXPECT_EQ(r["usage"]["total_tokens"].get<uint64_t>(),
              r["usage"]["prompt_tokens"].get<uint64_t>() + r["usage"]["completion_tokens"].get<uint64_t>());
    EXPECT_EQ(r["tokens"], r["usage"]["total_tokens"]);
    EXPECT_EQ(r["finish_reason"], "stop");
    EXPECT_EQ(r["model"], gemini() ? "gemini-2.0-flash" : "gpt-test");
    EXPECT_EQ(r["attempts"], 1);
    EXPECT_TRUE(r.contains("queue_ms") && r.contains("latency_ms"));
  }
  json log = fake_->log();
  ASSERT_EQ(log["requests"].size(), 3u);
  const json& first = log["requests"][0];
  if (gemini()) {
    EXPECT_EQ(first["path"], "/v1beta/models/gemini-2.0-flash:generateContent");
    EXPECT_EQ(first["headers"]["x-goog-api-key"], "fake-key");
    EXPECT_EQ(first["body"]["contents"][0]["parts"][0]["text"], "hello 0");
  } else {
    EXPECT_EQ(first["path"], "/v1/chat/completions");
    EXPECT_EQ(first["headers"]["authorization"], "Bearer fake-key");
    EXPECT_EQ(first["body"]["messages"][0]["content"], "hello 0");
  }
  EXPECT_EQ(log["connections"], 1) << "keep-alive: one TCP connection for sequential requests";
  EXPECT_EQ(service_->flow_stats(1)["completed"], 3);
  EXPECT_GT(service_->flow_stats(1)["completion_tokens"].get<uint64_t>(), 0u);
}

TEST_P(LlmServiceFake, StructuredPayloadReachesTheProvider) {
  make_service(config());
  submit(1, 1, R"({"messages":[{"role":"user","content":"q1"},{"role":"assistant","content":"a1"},
    {"role":"user","content":"q2"}],"system":"terse","temperature":0.3,"max_tokens":7})", "r");
  EXPECT_EQ(reply("r")["content"], "echo: q2");
  const json body = fake_->log()["requests"][0]["body"];
  if (gemini()) {
    EXPECT_EQ(body["systemInstruction"]["parts"][0]["text"], "terse");
    EXPECT_EQ(body["generationConfig"]["maxOutputTokens"], 7);
    EXPECT_EQ(body["contents"][1]["role"], "model");
  } else {
    EXPECT_EQ(body["messages"][0]["role"], "system");
    EXPECT_EQ(body["max_tokens"], 7);
  }
}

TEST_P(LlmServiceFake, ModelOverrideAndUnbuildableRequests) {
  LlmConfig c = config();
  c.max_inflight = 1;
  make_service(c);
  submit(1, 1, R"({"prompt": "x", "model": "other-model"})", "override");
  EXPECT_EQ(reply("override")["model"], "other-model");
  const json first = fake_->log()["requests"][0];
  EXPECT_EQ(first["model"], "other-model");
  // A model name that would change a Gemini URL is refused without a call,
  // and its slot is free again for the next request.
  submit(1, 1, R"({"prompt": "x", "model": "a/b"})", "slash");
  json slash = reply("slash");
  if (gemini()) {
    ASSERT_TRUE(slash["error"].is_string());
    EXPECT_NE(slash["error"].get<std::string>().find("cannot contain"), std::string::npos);
  } else {
    EXPECT_EQ(slash["model"], "a/b");  // e.g. "meta-llama/Llama-3-8B" on vLLM
  }
  submit(1, 1, "after", "after");
  EXPECT_EQ(reply("after")["content"], "echo: after");
}

TEST_P(LlmServiceFake, QueueTimeoutNamesTheBusySlots) {
  LlmConfig c = config();
  c.max_inflight = 1;
  c.queue_timeout_s = 0.2;
  c.timeout_s = 5;
  make_service(c);
  fake_->control({{"hang", 1}});
  submit(1, 1, "hangs", "first");
  submit(2, 2, "waits", "second");
  json r = reply("second");
  ASSERT_TRUE(r["error"].is_string());
  const std::string err = r["error"];
  EXPECT_NE(err.find("LLM queue timeout"), std::string::npos) << err;
  EXPECT_NE(err.find("max_inflight=1"), std::string::npos) << err;
  EXPECT_EQ(r["attempts"], 0);
  EXPECT_FALSE(replies_.contains("first"));  // dispatched work is not pre-empted
}

TEST_P(LlmServiceFake, TokenBudgetCountsRealUsage) {
  make_service(config());
  service_->set_flow_limits(5, {.token_budget = 100});
  fake_->control({{"replies", {{{"content", "long answer"}, {"prompt_tokens", 60}, {"completion_tokens", 40},
                                {"finish_reason", "length"}}}}});
  submit(5, 1, "spend it", "spend");
  json r = reply("spend");
  EXPECT_EQ(r["content"], "long answer");
  EXPECT_EQ(r["tokens"], 100);
  EXPECT_EQ(r["finish_reason"], "length");
  submit(5, 1, "one more", "over");
  json over = reply("over");
  ASSERT_TRUE(over["error"].is_string());
  EXPECT_NE(over["error"].get<std::string>().find("used 100 of 100 tokens (token_budget=100)"), std::string::npos)
      << over["error"];
  EXPECT_EQ(fake_->log()["requests"].size(), 1u);
  submit(6, 1, "another agent", "other");  // other flows are unaffected
  EXPECT_EQ(reply("other")["error"], nullptr);
}

TEST_P(LlmServiceFake, RateLimitPausesEveryoneThenRetries) {
  make_service(config());
  fake_->control({{"fail_429", 1}, {"retry_after", "1"}, {"retry_delay", "1s"}});
  submit(1, 1, "limited", "r");
  ASSERT_TRUE(run_until([&] { return service_->stats()["retries"] == 1; }));
  // Right after the 429 the whole service holds back.
  EXPECT_NE(service_->stats()["paused_for_ms"], nullptr);
  json r = reply("r");
  EXPECT_EQ(r["error"], nullptr) << r.dump();
  EXPECT_EQ(r["content"], "echo: limited");
  EXPECT_EQ(r["attempts"], 2);
  EXPECT_GE(r["latency_ms"].get<double>(), 1000.0);  // Retry-After honoured (a lower bound)
  EXPECT_EQ(fake_->log()["requests"].size(), 2u);
}

TEST_P(LlmServiceFake, PerDayQuotaIsReportedNotRetried) {
  make_service(config());
  fake_->control({{"fail_429", 1}, {"quota_per_day", true}});
  submit(1, 1, "x", "r");
  json r = reply("r");
  ASSERT_TRUE(r["error"].is_string());
  EXPECT_NE(r["error"].get<std::string>().find("quota exhausted"), std::string::npos) << r["error"];
  EXPECT_EQ(r["attempts"], 1);
  EXPECT_EQ(fake_->log()["requests"].size(), 1u);
}

TEST_P(LlmServiceFake, ServerErrorsExhaustTheRetries) {
  LlmConfig c = config();
  c.max_retries = 2;
  make_service(c);
  fake_->control({{"fail_500", 100}});
  submit(1, 1, "x", "r");
  json r = reply("r");
  ASSERT_TRUE(r["error"].is_string()) << r.dump();
  const std::string err = r["error"];
  EXPECT_NE(err.find("HTTP 500"), std::string::npos) << err;
  EXPECT_NE(err.find("gave up after 3 attempts"), std::string::npos) << err;
  EXPECT_EQ(r["content"], "");
  EXPECT_EQ(r["tokens"], 0);
  EXPECT_EQ(fake_->log()["requests"].size(), 3u);
  EXPECT_EQ(service_->flow_stats(1)["errors"], 1);
}

TEST_P(LlmServiceFake, TimeoutIsAnErrorAndClosesTheConnection) {
  LlmConfig c = config();
  c.timeout_s = 0.3;
  c.max_retries = 0;
  make_service(c);
  fake_->control({{"hang", 1}});
  submit(1, 1, "x", "r");
  json r = reply("r");
  ASSERT_TRUE(r["error"].is_string());
  EXPECT_NE(r["error"].get<std::string>().find("timed out"), std::string::npos) << r["error"];
  EXPECT_TRUE(run_until([&] { return fake_->log()["aborted"] == 1; })) << fake_->log().dump();
}

TEST_P(LlmServiceFake, MalformedReplyIsAnError) {
  make_service(config());
  fake_->control({{"malformed", 1}});
  submit(1, 1, "x", "r");
  json r = reply("r");
  ASSERT_TRUE(r["error"].is_string());
  EXPECT_NE(r["error"].get<std::string>().find("malformed JSON"), std::string::npos) << r["error"];
  EXPECT_EQ(r["attempts"], 1);
}

TEST_P(LlmServiceFake, TruncatedReplyIsRetried) {
  make_service(config());
  fake_->control({{"truncate", 1}});
  submit(1, 1, "cut", "r");
  json r = reply("r");
  EXPECT_EQ(r["error"], nullptr) << r.dump();
  EXPECT_EQ(r["content"], "echo: cut");
  EXPECT_EQ(r["attempts"], 2);
}

TEST_P(LlmServiceFake, WrongKeyIsAReadableError) {
  make_service(config());
  fake_->control({{"api_key", "the-right-key"}});
  submit(1, 1, "x", "r");
  json r = reply("r");
  ASSERT_TRUE(r["error"].is_string());
  EXPECT_NE(r["error"].get<std::string>().find(gemini() ? "Gemini HTTP 400: API key not valid"
                                                        : "OpenAI HTTP 401: Incorrect API key"),
            std::string::npos)
      << r["error"];
  EXPECT_EQ(r["attempts"], 1);
}

TEST_P(LlmServiceFake, CancelConnectionAbortsTheTransfer) {
  make_service(config());
  fake_->control({{"hang", 1}});
  submit(1, 42, "never answered", "gone");
  ASSERT_TRUE(run_until([&] { return fake_->log()["requests"].size() == 1; }));
  EXPECT_EQ(service_->stats()["inflight"], 1);
  service_->cancel_connection(42);
  EXPECT_EQ(service_->stats()["inflight"], 0);
  EXPECT_EQ(service_->stats()["http_transfers"], 0);
  ASSERT_TRUE(run_until([&] { return fake_->log()["aborted"] == 1; })) << fake_->log().dump();
  // The service keeps working, and the cancelled request never answers.
  submit(1, 43, "after", "next");
  EXPECT_EQ(reply("next")["content"], "echo: after");
  EXPECT_FALSE(replies_.contains("gone"));
  EXPECT_EQ(service_->flow_stats(1)["cancelled"], 1);
}

TEST_P(LlmServiceFake, CancelFlowDropsQueuedAndInflight) {
  LlmConfig c = config();
  c.max_inflight = 1;
  make_service(c);
  fake_->control({{"hang", 1}});
  submit(7, 1, "a", "a");
  submit(7, 2, "b", "b");
  ASSERT_TRUE(run_until([&] { return fake_->log()["requests"].size() == 1; }));
  EXPECT_EQ(service_->stats()["queued"], 1);
  service_->cancel_flow(7);
  ASSERT_TRUE(run_until([&] { return fake_->log()["aborted"] == 1; }));
  EXPECT_EQ(service_->stats()["queued"], 0);
  EXPECT_EQ(service_->flow_stats(7)["requests"], 0);  // forgotten
  EXPECT_TRUE(replies_.empty());
}

TEST_P(LlmServiceFake, GreedyFlowDoesNotStarveAPoliteOne) {
  LlmConfig c = config();
  c.max_inflight = 1;
  make_service(c);
  fake_->control({{"latency_ms", 10}});
  constexpr FlowId kGreedy = 1, kPolite = 2;
  constexpr int kGreedyCount = 12, kPoliteCount = 4;
  for (int i = 0; i < kGreedyCount; ++i) submit(kGreedy, 1, "same size prompt", "g" + std::to_string(i));
  // The polite flow asks one question at a time, the next when answered.
  int polite_sent = 0;
  std::function<void()> ask = [&] {
    const std::string key = "p" + std::to_string(polite_sent++);
    service_->submit(kPolite, 2, "same size prompt", [&, key](std::string r) {
      replies_[key] = json::parse(r);
      order_.push_back(key);
      if (polite_sent < kPoliteCount) ask();
    });
  };
  ask();
  ASSERT_TRUE(run_until([&] { return replies_.size() == kGreedyCount + kPoliteCount; }));
  int greedy_before_polite_done = 0;
  int polite_done = 0;
  for (const auto& key : order_) {
    if (key[0] == 'p') ++polite_done;
    if (key[0] == 'g' && polite_done < kPoliteCount) ++greedy_before_polite_done;
  }
  // FIFO would finish all 12 greedy requests first; fair queuing alternates.
  EXPECT_LE(greedy_before_polite_done, kPoliteCount + 1) << ::testing::PrintToString(order_);
  EXPECT_GE(greedy_before_polite_done, 1) << "the greedy flow is not starved either";
  EXPECT_EQ(fake_->log()["max_inflight"], 1);
  RecordProperty("completion_order", ::testing::PrintToString(order_));
}

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_P(LlmServiceFake, ManyRequestsAndCancellationsLeaveNothingBehind) {
  const size_t fds_before = open_fds();
  make_service(config());  // max_inflight 8
  fake_->control({{"latency_ms", 2}, {"jitter_ms", 5}});
  constexpr int kRequests = 200;
  constexpr uint64_t kConnections = 20, kCancelled = 5;  // connections 0..4 go away
  for (int i = 0; i < kRequests; ++i) {
    submit(static_cast<FlowId>(i % 10), static_cast<uint64_t>(i) % kConnections, "req " + std::to_string(i),
           std::to_string(i));
  }
  ASSERT_TRUE(run_until([&] { return replies_.size() >= 40; }));
  for (uint64_t conn = 0; conn < kCancelled; ++conn) service_->cancel_connection(conn);
  ASSERT_TRUE(run_until([&] { return service_->stats()["queued"] == 0 && service_->stats()["inflight"] == 0; }));
  for (const auto& [key, r] : replies_) {
    EXPECT_EQ(r["error"], nullptr) << r.dump();
    EXPECT_EQ(r["content"], "echo: req " + key);
  }
  // Each request was answered exactly once or cancelled, never both.
  const json stats = service_->stats();
  EXPECT_EQ(stats["completed"].get<size_t>(), replies_.size());
  EXPECT_EQ(stats["cancelled"].get<size_t>() + replies_.size(), static_cast<size_t>(kRequests));
  EXPECT_GT(stats["cancelled"].get<size_t>(), 0u);
  EXPECT_LE(fake_->log()["max_inflight"].get<int>(), 8);
  service_.reset();
  EXPECT_EQ(reactor_->watched_fds(), 0u);
  EXPECT_EQ(open_fds(), fds_before) << "curl connections and socket watches are all closed";
}

INSTANTIATE_TEST_SUITE_P(Providers, LlmServiceFake, ::testing::Values("gemini", "openai"),
                         [](const auto& param_info) { return param_info.param; });

// ---- without a provider ------------------------------------------------------

class LlmServiceLocal : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Reactor::create();
    ASSERT_TRUE(r.has_value());
    reactor_ = std::move(*r);
  }
  std::unique_ptr<LlmService> make(LlmConfig c) {
    auto s = LlmService::create(*reactor_, std::move(c));
    EXPECT_TRUE(s.has_value());
    return s ? std::move(*s) : nullptr;
  }
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(LlmServiceLocal, NotConfiguredAnswersLaterWithTheHint) {
  auto s = make(LlmConfig{});
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->configured());
  std::optional<json> got;
  s->submit(1, 1, "hi", [&](std::string r) { got = json::parse(r); });
  EXPECT_FALSE(got.has_value()) << "never called from inside submit()";
  ASSERT_TRUE(reactor_->run_once(0).has_value());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ((*got)["content"], "");
  EXPECT_EQ((*got)["tokens"], 0);
  EXPECT_EQ((*got)["error"], LlmService::kNotConfigured);
}

TEST_F(LlmServiceLocal, InvalidPayloadIsAnErrorUnlessCancelledFirst) {
  LlmConfig c;
  c.provider = "openai";
  c.model = "m";
  c.base_url = "http://127.0.0.1:9/v1";
  auto s = make(c);
  ASSERT_NE(s, nullptr);
  std::optional<json> bad;
  bool cancelled_called = false;
  s->submit(1, 1, R"({"prompt": 5})", [&](std::string r) { bad = json::parse(r); });
  s->submit(1, 2, R"({"prompt": 5})", [&](std::string) { cancelled_called = true; });
  s->cancel_connection(2);
  ASSERT_TRUE(reactor_->run_once(0).has_value());
  ASSERT_TRUE(bad.has_value());
  EXPECT_NE((*bad)["error"].get<std::string>().find("\"prompt\" must be a string"), std::string::npos);
  EXPECT_FALSE(cancelled_called);
}

TEST_F(LlmServiceLocal, InvalidConfigIsRejected) {
  LlmConfig c;
  c.provider = "gemini";
  c.model = "m";
  c.base_url = "ftp://x";
  c.api_key = "k";
  auto s = LlmService::create(*reactor_, c);
  ASSERT_FALSE(s.has_value());
  EXPECT_NE(s.error().message().find("must start with http"), std::string::npos);
}

}  // namespace
}  // namespace agentos::llm

#include "llm/gemini.hpp"

#include <gtest/gtest.h>

namespace agentos::llm {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

LlmConfig gemini_config() {
  LlmConfig c;
  c.provider = "gemini";
  c.model = "gemini-2.0-flash";
  c.base_url = "http://127.0.0.1:9";
  c.api_key = "k-123";
  c.timeout_s = 7;
  return c;
}

HttpResponse response(long status, std::string body, std::string retry_after = "") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return r;
}

TEST(Gemini, BuildsGenerateContentRequest) {
  GeminiProvider p(gemini_config());
  ThinkRequest req;
  req.system = "be brief";
  req.messages = {{"system", "and kind"}, {"user", "hi"}, {"assistant", "hello"}, {"user", "2+2?"}};
  req.temperature = 0.5;
  req.max_tokens = 64;
  auto http = p.build(req, "gemini-1.5-pro");
  ASSERT_TRUE(http);
  EXPECT_EQ(http->url, "http://127.0.0.1:9/v1beta/models/gemini-1.5-pro:generateContent");
  EXPECT_NE(std::find(http->headers.begin(), http->headers.end(), "x-goog-api-key: k-123"), http->headers.end());
  EXPECT_EQ(http->timeout, 7000ms);
  const json body = json::parse(http->body);
  ASSERT_EQ(body["contents"].size(), 3u);  // system messages move to systemInstruction
  EXPECT_EQ(body["contents"][0]["role"], "user");
  EXPECT_EQ(body["contents"][1]["role"], "model");
  EXPECT_EQ(body["contents"][2]["parts"][0]["text"], "2+2?");
  EXPECT_EQ(body["systemInstruction"]["parts"][0]["text"], "be brief\n\nand kind");
  EXPECT_DOUBLE_EQ(body["generationConfig"]["temperature"].get<double>(), 0.5);
  EXPECT_EQ(body["generationConfig"]["maxOutputTokens"], 64);
}

TEST(Gemini, RejectsModelNamesThatChangeTheUrl) {
  GeminiProvider p(gemini_config());
  ThinkRequest req{{{"user", "x"}}, "", "", {}, {}};
  EXPECT_FALSE(p.build(req, "../admin"));
  EXPECT_FALSE(p.build(req, "a:b"));
}

TEST(Gemini, InvalidUtf8DoesNotThrow) {
  GeminiProvider p(gemini_config());
  ThinkRequest req{{{"user", std::string("bad \xff\xfe bytes")}}, "", "", {}, {}};
  auto http = p.build(req, "m");
  ASSERT_TRUE(http);
  EXPECT_TRUE(json::accept(http->body));
}

TEST(Gemini, ParsesContentUsageAndFinishReason) {
  GeminiProvider p(gemini_config());
  auto r = p.parse(response(200, R"({"candidates":[{"content":{"parts":[{"text":"Hello "},{"text":"world"}],
    "role":"model"},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":11,"candidatesTokenCount":5,
    "totalTokenCount":16},"modelVersion":"gemini-2.0-flash-001"})"), "gemini-2.0-flash");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content, "Hello world");
  EXPECT_EQ(r->finish_reason, "length");
  EXPECT_EQ(r->model, "gemini-2.0-flash-001");
  EXPECT_EQ(r->usage.prompt_tokens, 11u);
  EXPECT_EQ(r->usage.completion_tokens, 5u);
  EXPECT_EQ(r->usage.total_tokens, 16u);
}

TEST(Gemini, BlockedPromptIsAFatalError) {
  GeminiProvider p(gemini_config());
  auto r = p.parse(response(200, R"({"promptFeedback":{"blockReason":"SAFETY"}})"), "m");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, FailureKind::fatal);
  EXPECT_NE(r.error().message.find("blocked the prompt: SAFETY"), std::string::npos);
}

TEST(Gemini, MalformedJsonIsFatal) {
  GeminiProvider p(gemini_config());
  auto r = p.parse(response(200, R"({"candidates": [ {"content": this is not json)"), "m");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, FailureKind::fatal);
  EXPECT_NE(r.error().message.find("malformed JSON"), std::string::npos);
}

TEST(Gemini, ErrorBodiesBecomeReadableErrors) {
  GeminiProvider p(gemini_config());
  auto r = p.parse(response(400, R"({"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}})"),
                   "m");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, FailureKind::fatal);
  EXPECT_EQ(r.error().message, "Gemini HTTP 400: API key not valid.");
  auto server = p.parse(response(503, "<html>oops</html>"), "m");
  EXPECT_EQ(server.error().kind, FailureKind::retryable);
  EXPECT_EQ(server.error().message, "Gemini HTTP 503: <html>oops</html>");
}

constexpr const char* kRateLimited = R"({"error":{"code":429,"message":"Resource has been exhausted",
  "status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
  {"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests",
   "quotaId":"QUOTA_ID"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"42s"}]}})";

std::string rate_limited(std::string quota_id) {
  std::string s = kRateLimited;
  s.replace(s.find("QUOTA_ID"), 8, quota_id);
  return s;
}

TEST(Gemini, RetryInfoGivesTheRetryDelay) {
  GeminiProvider p(gemini_config());
  auto r = p.parse(response(429, rate_limited("GenerateRequestsPerMinutePerProjectPerModel-FreeTier")), "m");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, FailureKind::rate_limited);
  EXPECT_EQ(r.error().retry_after, 42000ms);
  // The longer of Retry-After and RetryInfo wins.
  auto both = p.parse(response(429, rate_limited("PerMinute"), "60"), "m");
  EXPECT_EQ(both.error().retry_after, 60000ms);
}

TEST(Gemini, PerDayQuotaIsReportedNotRetried) {
  GeminiProvider p(gemini_config());
  auto r = p.parse(response(429, rate_limited("GenerateRequestsPerDayPerProjectPerModel-FreeTier")), "m");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, FailureKind::quota_exhausted);
  EXPECT_NE(r.error().message.find("daily quota exhausted (GenerateRequestsPerDayPerProjectPerModel-FreeTier)"),
            std::string::npos);
}

TEST(Gemini, TransportErrorsAreRetryable) {
  GeminiProvider p(gemini_config());
  HttpResponse t;
  t.transport_error = "Operation timed out after 300 milliseconds";
  t.timed_out = true;
  auto r = p.parse(t, "m");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, FailureKind::retryable);
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos);
}

TEST(Gemini, DurationsAndFinishReasons) {
  using gemini_detail::normalise_finish_reason;
  using gemini_detail::parse_duration;
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("0s"), 0ms);
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_EQ(parse_duration("1e300s"), std::chrono::milliseconds(24h));  // capped, no overflow
  EXPECT_EQ(normalise_finish_reason("STOP"), "stop");
  EXPECT_EQ(normalise_finish_reason("SAFETY"), "content_filter");
  EXPECT_EQ(normalise_finish_reason("OTHER"), "other");
}

}  // namespace
}  // namespace agentos::llm

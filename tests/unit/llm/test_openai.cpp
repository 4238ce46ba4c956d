#include "llm/openai.hpp"

#include <gtest/gtest.h>

namespace agentos::llm {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

LlmConfig openai_config(std::string key = "sk-test") {
  LlmConfig c;
  c.provider = "openai";
  c.model = "gpt-4o-mini";
  c.base_url = "http://127.0.0.1:9/v1";
  c.api_key = std::move(key);
  return c;
}

HttpResponse response(long status, std::string body, std::string retry_after = "") {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return r;
}

bool has_header(const HttpRequest& r, std::string_view prefix) {
  for (const auto& h : r.headers) {
    if (h.starts_with(prefix)) return true;
  }
  return false;
}

TEST(OpenAi, BuildsChatCompletionsRequest) {
  OpenAiProvider p(openai_config());
  ThinkRequest req{{{"user", "hi"}, {"assistant", "hello"}, {"user", "2+2?"}}, "be brief", "", 0.0, 10};
  auto http = p.build(req, "llama3");
  ASSERT_TRUE(http);
  EXPECT_EQ(http->url, "http://127.0.0.1:9/v1/chat/completions");
  EXPECT_TRUE(has_header(*http, "Authorization: Bearer sk-test"));
  const json body = json::parse(http->body);
  EXPECT_EQ(body["model"], "llama3");
  ASSERT_EQ(body["messages"].size(), 4u);
  EXPECT_EQ(body["messages"][0], (json{{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(body["messages"][3]["content"], "2+2?");
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["max_tokens"], 10);
}

TEST(OpenAi, NoKeyNoAuthorizationHeader) {
  OpenAiProvider p(openai_config(""));
  auto http = p.build(ThinkRequest{{{"user", "x"}}, "", "", {}, {}}, "m");
  ASSERT_TRUE(http);
  EXPECT_FALSE(has_header(*http, "Authorization"));
  EXPECT_FALSE(json::parse(http->body).contains("temperature"));
}

TEST(OpenAi, ParsesContentUsageAndFinishReason) {
  OpenAiProvider p(openai_config());
  auto r = p.parse(response(200, R"({"id":"x","model":"gpt-4o-mini-2024","choices":[{"index":0,
    "message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],
    "usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}})"), "gpt-4o-mini");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->content, "4");
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(r->model, "gpt-4o-mini-2024");
  EXPECT_EQ(r->usage.prompt_tokens, 9u);
  EXPECT_EQ(r->usage.completion_tokens, 1u);
  EXPECT_EQ(r->usage.total_tokens, 10u);
}

TEST(OpenAi, MissingUsageAndNullContentAreTolerated) {
  OpenAiProvider p(openai_config());
  auto r = p.parse(response(200, R"({"choices":[{"message":{"content":null},"finish_reason":"tool_calls"}]})"), "m");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->content, "");
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->usage.total_tokens, 0u);
  EXPECT_EQ(r->finish_reason, "tool_calls");
}

TEST(OpenAi, BadShapesAreFatal) {
  OpenAiProvider p(openai_config());
  EXPECT_EQ(p.parse(response(200, R"({"choices":[]})"), "m").error().kind, FailureKind::fatal);
  EXPECT_EQ(p.parse(response(200, R"({"choices":"x"})"), "m").error().kind, FailureKind::fatal);
  auto bad = p.parse(response(200, "{truncated"), "m");
  EXPECT_NE(bad.error().message.find("malformed JSON"), std::string::npos);
}

TEST(OpenAi, ErrorBodiesAndRetryAfter) {
  OpenAiProvider p(openai_config());
  auto auth = p.parse(response(401, R"({"error":{"message":"Incorrect API key provided.","code":"invalid_api_key"}})"),
                      "m");
  EXPECT_EQ(auth.error().kind, FailureKind::fatal);
  EXPECT_EQ(auth.error().message, "OpenAI HTTP 401: Incorrect API key provided.");
  auto limited = p.parse(response(429, R"({"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}})", "2"),
                         "m");
  EXPECT_EQ(limited.error().kind, FailureKind::rate_limited);
  EXPECT_EQ(limited.error().retry_after, 2000ms);
  auto quota = p.parse(response(429, R"({"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}})"),
                       "m");
  EXPECT_EQ(quota.error().kind, FailureKind::quota_exhausted);
  auto llama = p.parse(response(500, R"({"error":"model not loaded"})"), "m");
  EXPECT_EQ(llama.error().kind, FailureKind::retryable);
  EXPECT_EQ(llama.error().message, "OpenAI HTTP 500: model not loaded");
}

TEST(ProviderDetail, RetryAfterSecondsAndHttpDates) {
  using provider_detail::parse_retry_after;
  EXPECT_EQ(parse_retry_after("120", 0), 120000ms);
  EXPECT_EQ(parse_retry_after(" 0.25 ", 0), 250ms);
  EXPECT_FALSE(parse_retry_after("", 0));
  EXPECT_FALSE(parse_retry_after("soon", 0));
  EXPECT_FALSE(parse_retry_after("-4", 0));
  // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480; 30 s before that:
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412450), 30000ms);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0ms);  // already past
  // Found by fuzz_gemini_reply/fuzz_openai_reply: 1e300 s overflowed the
  // conversion to milliseconds (undefined behaviour). Absurd waits are
  // capped at a day; the retry budget refuses them anyway.
  EXPECT_EQ(parse_retry_after("1e300", 0), std::chrono::milliseconds(24h));
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 0), std::chrono::milliseconds(24h));
}

TEST(ProviderDetail, StatusClassification) {
  using provider_detail::classify_status;
  EXPECT_EQ(classify_status(429), FailureKind::rate_limited);
  EXPECT_EQ(classify_status(500), FailureKind::retryable);
  EXPECT_EQ(classify_status(503), FailureKind::retryable);
  EXPECT_EQ(classify_status(408), FailureKind::retryable);
  EXPECT_EQ(classify_status(400), FailureKind::fatal);
  EXPECT_EQ(classify_status(404), FailureKind::fatal);
}

TEST(ProviderDetail, MakeProviderByName) {
  LlmConfig c = openai_config();
  EXPECT_EQ((*make_provider(c))->name(), "openai");
  c.provider = "gemini";
  EXPECT_EQ((*make_provider(c))->name(), "gemini");
  c.provider = "other";
  EXPECT_FALSE(make_provider(c));
}

}  // namespace
}  // namespace agentos::llm

#include "llm/think_request.hpp"

#include <gtest/gtest.h>

namespace agentos::llm {
namespace {

ThinkRequest parse_ok(std::string_view payload) {
  auto r = parse_think_payload(payload);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return r ? *r : ThinkRequest{};
}

std::string parse_err(std::string_view payload) {
  auto r = parse_think_payload(payload);
  EXPECT_FALSE(r.has_value()) << payload;
  return r ? "" : r.error().message();
}

TEST(ThinkRequest, PlainTextIsThePrompt) {
  ThinkRequest r = parse_ok("What is 2+2?");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  EXPECT_EQ(r.messages[0].content, "What is 2+2?");
  EXPECT_TRUE(r.model.empty());
  EXPECT_FALSE(r.temperature.has_value());
}

TEST(ThinkRequest, JsonWithoutPromptOrMessagesIsPlainText) {
  // The original SDK sends arbitrary text; JSON-looking prompts stay prompts.
  for (std::string_view p : {R"({"question": "x"})", R"(["a", "b"])", R"("just a string")", "{not json"}) {
    ThinkRequest r = parse_ok(p);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].content, p);
  }
}

TEST(ThinkRequest, StructuredPromptWithOptions) {
  ThinkRequest r = parse_ok(
      R"({"prompt": "hi", "system": "be brief", "model": "gemini-1.5-pro", "temperature": 0.2, "max_tokens": 50})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].content, "hi");
  EXPECT_EQ(r.system, "be brief");
  EXPECT_EQ(r.model, "gemini-1.5-pro");
  EXPECT_DOUBLE_EQ(*r.temperature, 0.2);
  EXPECT_EQ(*r.max_tokens, 50u);
}

TEST(ThinkRequest, MessagesKeepOrderAndRoles) {
  ThinkRequest r = parse_ok(R"({"messages": [{"role": "system", "content": "s"},
    {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}],
    "temperature": 1})");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[2].role, "assistant");
  EXPECT_EQ(r.messages[3].content, "u2");
  EXPECT_DOUBLE_EQ(*r.temperature, 1.0);
}

TEST(ThinkRequest, WrongTypesNameTheField) {
  EXPECT_NE(parse_err(R"({"prompt": 5})").find("\"prompt\" must be a string, got number"), std::string::npos);
  EXPECT_NE(parse_err(R"({"messages": "hi"})").find("\"messages\" must be an array"), std::string::npos);
  EXPECT_NE(parse_err(R"({"messages": [{"role": "user"}]})").find("messages[0].content"), std::string::npos);
  EXPECT_NE(parse_err(R"({"messages": [{"role": "bot", "content": "x"}]})").find("role must be system, user"),
            std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": "x", "system": 1})").find("\"system\""), std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": "x", "temperature": "hot"})").find("\"temperature\" must be a number"),
            std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": "x", "temperature": 7})").find("between 0 and 2"), std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": "x", "max_tokens": -3})").find("\"max_tokens\" must be a positive integer"),
            std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": "x", "max_tokens": 0})").find("max_tokens"), std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": "x", "model": "a b"})").find("\"model\""), std::string::npos);
}

TEST(ThinkRequest, EmptyOrContradictoryRequestsAreErrors) {
  EXPECT_NE(parse_err("").find("empty prompt"), std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": ""})").find("empty prompt"), std::string::npos);
  EXPECT_NE(parse_err(R"({"messages": []})").find("empty"), std::string::npos);
  EXPECT_NE(parse_err(R"({"prompt": "a", "messages": [{"role": "user", "content": "b"}]})").find("not both"),
            std::string::npos);
  EXPECT_NE(parse_err(R"({"messages": [{"role": "system", "content": "only system"}]})").find("no user"),
            std::string::npos);
}

TEST(ThinkRequest, NullOptionsAreIgnored) {
  ThinkRequest r = parse_ok(R"({"prompt": "x", "system": null, "model": null, "temperature": null})");
  EXPECT_TRUE(r.system.empty());
  EXPECT_FALSE(r.temperature.has_value());
}

TEST(ThinkRequest, TokenEstimateGrowsWithText) {
  ThinkRequest small = parse_ok("hi");
  ThinkRequest large = parse_ok(std::string(4000, 'x'));
  EXPECT_GT(estimate_prompt_tokens(small), 0u);
  EXPECT_GE(estimate_prompt_tokens(large), 1000u);
  EXPECT_LT(estimate_prompt_tokens(large), 1100u);
}

}  // namespace
}  // namespace agentos::llm

#include "llm/llm_config.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace agentos::llm {
namespace {

Result<LlmConfig> from(const std::map<std::string, std::string>& env) {
  return LlmConfig::from_env([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(LlmConfig, NoKeyMeansNotConfigured) {
  auto c = from({});
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->configured());
  EXPECT_TRUE(c->validate());
}

TEST(LlmConfig, GeminiKeyPicksGeminiWithDefaults) {
  auto c = from({{"GOOGLE_API_KEY", "g-key"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->provider, "gemini");
  EXPECT_EQ(c->api_key, "g-key");
  EXPECT_EQ(c->model, "gemini-2.0-flash");
  EXPECT_EQ(c->base_url, "https://generativelanguage.googleapis.com");
  // GEMINI_API_KEY wins over GOOGLE_API_KEY, and Gemini over OpenAI.
  auto both = from({{"GOOGLE_API_KEY", "g"}, {"GEMINI_API_KEY", "gem"}, {"OPENAI_API_KEY", "o"}});
  EXPECT_EQ(both->provider, "gemini");
  EXPECT_EQ(both->api_key, "gem");
}

TEST(LlmConfig, ExplicitProviderAndOverrides) {
  auto c = from({{"GEMINI_API_KEY", "g"}, {"OPENAI_API_KEY", "o"}, {"AGENTOS_LLM_PROVIDER", "openai"},
                 {"OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/"}, {"AGENTOS_LLM_MODEL", "llama3"},
                 {"AGENTOS_LLM_MAX_INFLIGHT", "3"}, {"AGENTOS_LLM_RPM", "60"}, {"AGENTOS_LLM_TIMEOUT_S", "2.5"}});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->provider, "openai");
  EXPECT_EQ(c->api_key, "o");
  EXPECT_EQ(c->base_url, "http://127.0.0.1:8000/v1");  // trailing slash dropped
  EXPECT_EQ(c->model, "llama3");
  EXPECT_EQ(c->max_inflight, 3u);
  EXPECT_DOUBLE_EQ(c->rpm, 60);
  EXPECT_DOUBLE_EQ(c->timeout_s, 2.5);
}

TEST(LlmConfig, BadNumbersAndNamesAreErrors) {
  auto bad = from({{"GEMINI_API_KEY", "g"}, {"AGENTOS_LLM_RPM", "fast"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("AGENTOS_LLM_RPM=fast"), std::string::npos);
  EXPECT_FALSE(from({{"GEMINI_API_KEY", "g"}, {"AGENTOS_LLM_TPM", "-5"}}));
  auto unknown = from({{"AGENTOS_LLM_PROVIDER", "claude"}});
  ASSERT_TRUE(unknown);
  EXPECT_NE(unknown->validate().error().message().find("unknown LLM provider 'claude'"), std::string::npos);
  auto keyless = from({{"AGENTOS_LLM_PROVIDER", "gemini"}});
  EXPECT_NE(keyless->validate().error().message().find("GEMINI_API_KEY"), std::string::npos);
  // A local OpenAI-compatible server needs no key.
  EXPECT_TRUE(from({{"AGENTOS_LLM_PROVIDER", "openai"}})->validate());
}

TEST(LlmConfig, DescribeNeverShowsTheKey) {
  auto c = from({{"GEMINI_API_KEY", "super-secret-key"}});
  const std::string text = c->describe().dump();
  EXPECT_EQ(text.find("super-secret-key"), std::string::npos);
  EXPECT_EQ(c->describe()["provider"], "gemini");
  EXPECT_EQ(c->describe()["key_set"], true);
}

TEST(LlmConfig, AnticipationFromEnvAndItsBounds) {
  auto dflt = from({{"GEMINI_API_KEY", "g"}});
  EXPECT_DOUBLE_EQ(dflt->anticipation_ms, 2.0);
  auto c = from({{"GEMINI_API_KEY", "g"}, {"AGENTOS_LLM_ANTICIPATION_MS", "0.5"}});
  ASSERT_TRUE(c);
  EXPECT_DOUBLE_EQ(c->anticipation_ms, 0.5);
  EXPECT_TRUE(c->validate());
  EXPECT_EQ(c->describe()["anticipation_ms"], 0.5);
  EXPECT_TRUE(from({{"GEMINI_API_KEY", "g"}, {"AGENTOS_LLM_ANTICIPATION_MS", "0"}})->validate());  // off
  EXPECT_FALSE(from({{"GEMINI_API_KEY", "g"}, {"AGENTOS_LLM_ANTICIPATION_MS", "-1"}}));
  auto long_hold = from({{"GEMINI_API_KEY", "g"}, {"AGENTOS_LLM_ANTICIPATION_MS", "250"}});
  ASSERT_TRUE(long_hold);
  auto invalid = long_hold->validate();
  ASSERT_FALSE(invalid);
  EXPECT_NE(invalid.error().message().find("anticipation_ms must be between 0 and 100"), std::string::npos);
}

}  // namespace
}  // namespace agentos::llm

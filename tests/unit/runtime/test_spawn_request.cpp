#include "runtime/spawn_request.hpp"

#include <gtest/gtest.h>

namespace agentos::runtime {
namespace {

using nlohmann::json;

std::string error_of(const json& j) {
  auto r = parse_spawn_request(j);
  EXPECT_FALSE(r.has_value()) << j.dump();
  return r ? "" : r.error().message();
}

TEST(SpawnRequest, MinimalRequestTakesDefaults) {
  auto r = parse_spawn_request(json{{"name", "worker1"}, {"script", "/x/w.py"}});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->name, "worker1");
  EXPECT_EQ(r->python, "python3");
  EXPECT_TRUE(r->sandboxed);
  EXPECT_FALSE(r->network);
  EXPECT_FALSE(r->limits.memory.has_value());
}

TEST(SpawnRequest, FullRequest) {
  json j = {{"name", "a.b-c_1"}, {"script", "s.py"}, {"python", "/usr/bin/python3"},
            {"args", {"x", ""}}, {"env", {{"K", "V"}}}, {"sandboxed", false}, {"network", true},
            {"limits", {{"memory", 64 << 20}, {"max_pids", 16}, {"cpu_quota", 10000}, {"cpu_period", 50000}}},
            {"restart", "no"}};
  auto r = parse_spawn_request(j);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->args, (std::vector<std::string>{"x", ""}));
  EXPECT_EQ(r->env.at("K"), "V");
  EXPECT_EQ(*r->limits.memory, 64u << 20);
  EXPECT_EQ(*r->limits.cpu_period, 50000u);
  EXPECT_FALSE(r->sandboxed);
}

TEST(SpawnRequest, NullLimitsMeansDefaults) {
  auto r = parse_spawn_request(json{{"name", "w"}, {"script", "s"}, {"limits", nullptr}});
  ASSERT_TRUE(r.has_value());
}

TEST(SpawnRequest, RejectsBadNames) {
  for (const std::string& bad : std::vector<std::string>{"", "-x", ".x", "a b", "a/b", std::string(64, 'a'), "ü"}) {
    EXPECT_NE(error_of(json{{"name", bad}, {"script", "s"}}).find("'name'"), std::string::npos) << bad;
  }
  EXPECT_TRUE(valid_agent_name(std::string(63, 'a')));
}

TEST(SpawnRequest, ErrorsNameTheField) {
  EXPECT_NE(error_of(json{{"name", "w"}}).find("'script'"), std::string::npos);
  EXPECT_NE(error_of(json{{"script", "s"}}).find("'name'"), std::string::npos);
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", 3}}).find("'script'"), std::string::npos);
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", "s"}, {"sandboxed", "yes"}}).find("'sandboxed'"), std::string::npos);
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", "s"}, {"memroy", 1}}).find("'memroy'"), std::string::npos);
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", "s"}, {"limits", {{"memroy", 1}}}}).find("'limits.memroy'"), std::string::npos);
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", "s"}, {"args", {1}}}).find("'args[0]'"), std::string::npos);
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", "s"}, {"env", {{"A", 1}}}}).find("'env.A'"), std::string::npos);
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", "s"}, {"restart", "sometimes"}}).find("'restart'"), std::string::npos);
}

TEST(SpawnRequest, ImpossibleLimits) {
  auto lim = [](json l) { return error_of(json{{"name", "w"}, {"script", "s"}, {"limits", l}}); };
  EXPECT_NE(lim({{"memory", 1024}}).find("minimum"), std::string::npos);
  EXPECT_NE(lim({{"memory", 0}}).find("'limits.memory'"), std::string::npos);
  EXPECT_NE(lim({{"memory", -5}}).find("'limits.memory'"), std::string::npos);
  EXPECT_NE(lim({{"max_pids", 0}}).find("'limits.max_pids'"), std::string::npos);
  EXPECT_NE(lim({{"cpu_quota", -1}}).find("'limits.cpu_quota'"), std::string::npos);
  EXPECT_NE(lim({{"cpu_quota", 1.5}}).find("'limits.cpu_quota'"), std::string::npos);
  EXPECT_NE(lim({{"memory", "1G"}}).find("'limits.memory'"), std::string::npos);
}

TEST(SpawnRequest, RestartWindowBounds) {
  auto window = [](json w) { return json{{"name", "w"}, {"script", "s"}, {"restart", "always"}, {"restart_window", w}}; };
  auto ok = parse_spawn_request(window(31536000));
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(ok->restart.window, std::chrono::hours(24 * 365));
  EXPECT_NE(error_of(window(31536001)).find("at most a year"), std::string::npos);
  // Found by fuzz_spawn_request: 2^63 seconds wrapped to a negative window
  // and passed the "at most a year" check.
  EXPECT_NE(error_of(window(9223372036854775808ULL)).find("'restart_window'"), std::string::npos);
  EXPECT_NE(error_of(window(18446744073709551615ULL)).find("'restart_window'"), std::string::npos);
}

TEST(SpawnRequest, AgentosEnvIsReserved) {
  EXPECT_NE(error_of(json{{"name", "w"}, {"script", "s"}, {"env", {{"AGENTOS_AGENT_ID", "1"}}}}).find("set by the kernel"),
            std::string::npos);
}

TEST(SpawnRequest, NotAnObject) {
  EXPECT_NE(error_of(json::array()).find("JSON object"), std::string::npos);
}

}  // namespace
}  // namespace agentos::runtime

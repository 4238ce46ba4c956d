#include "cli/spawn_payload.hpp"

#include <gtest/gtest.h>

namespace agentos::cli {
namespace {

using nlohmann::json;

TEST(SpawnPayload, OnlyWhatWasGivenWithAbsoluteScript) {
  SpawnOptions o;
  o.name = "w1";
  o.script = "./agents/a.py";
  const json p = build_spawn_payload(o, "/home/me").value();
  EXPECT_EQ(p, (json{{"name", "w1"}, {"script", "/home/me/agents/a.py"}}));
}

TEST(SpawnPayload, EveryOption) {
  SpawnOptions o;
  o.name = "w1";
  o.script = "/abs/a.py";
  o.memory = "256M";
  o.cpu = "50%";
  o.pids = 64;
  o.no_sandbox = true;
  o.network = true;
  o.restart = "on-failure";
  o.max_restarts = 3;
  o.python = "venv/bin/python";
  o.env = {"A=1", "B=x=y", "A=2", "EMPTY="};
  o.args = {"--flag", "value"};
  const json p = build_spawn_payload(o, "/w").value();
  EXPECT_EQ(p["script"], "/abs/a.py");
  EXPECT_EQ(p["limits"], (json{{"memory", 256u << 20}, {"cpu_quota", 50000}, {"max_pids", 64}}));
  EXPECT_EQ(p["sandboxed"], false);
  EXPECT_EQ(p["network"], true);
  EXPECT_EQ(p["restart"], "on-failure");
  EXPECT_EQ(p["max_restarts"], 3);
  EXPECT_EQ(p["python"], "/w/venv/bin/python");
  EXPECT_EQ(p["env"], (json{{"A", "2"}, {"B", "x=y"}, {"EMPTY", ""}}));
  EXPECT_EQ(p["args"], (json{"--flag", "value"}));
}

TEST(SpawnPayload, BarePythonNameIsLeftToTheKernel) {
  SpawnOptions o;
  o.name = "w";
  o.script = "a.py";
  o.python = "python3.11";
  EXPECT_EQ(build_spawn_payload(o, "/w").value()["python"], "python3.11");
}

TEST(SpawnPayload, KeepsDotDotSinceSymlinksMakeItNonLexical) {
  SpawnOptions o;
  o.name = "w";
  o.script = "../x/./a.py";
  EXPECT_EQ(build_spawn_payload(o, "/w/sub").value()["script"], "/w/sub/../x/a.py");
}

TEST(SpawnPayload, BadValuesNameTheOption) {
  SpawnOptions o;
  o.name = "w";
  o.script = "a.py";
  o.memory = "lots";
  EXPECT_EQ(build_spawn_payload(o, "/").error().context.rfind("--memory: ", 0), 0u);
  o.memory.reset();
  o.cpu = "0%";
  EXPECT_EQ(build_spawn_payload(o, "/").error().context.rfind("--cpu: ", 0), 0u);
  o.cpu.reset();
  o.env = {"=x"};
  EXPECT_EQ(build_spawn_payload(o, "/").error().context, "--env: expected NAME=VALUE, got '=x'");
  o.env = {"NOEQUALS"};
  EXPECT_FALSE(build_spawn_payload(o, "/"));
  o.env.clear();
  o.pids = 0;
  EXPECT_FALSE(build_spawn_payload(o, "/"));
}

}  // namespace
}  // namespace agentos::cli

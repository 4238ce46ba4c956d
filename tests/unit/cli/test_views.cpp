#include "cli/views.hpp"

#include <gtest/gtest.h>

#include "cli/client.hpp"
#include "cli/table.hpp"

namespace agentos::cli {
namespace {

json running_agent() {
  return json::parse(
      R"({"id": 1, "name": "w1", "pid": 4242, "state": "RUNNING", "status": "running",
    "running": true, "exit_code": null, "signal": null, "oom_killed": false, "restarts": 2,
    "uptime_ms": 192000, "limits": {"memory": 67108864, "max_pids": 16, "cpu_quota": 50000},
    "memory_bytes": 3145728, "llm": {"prompt_tokens": 100, "completion_tokens": 23}})");
}

json ended_agent() {
  return json::parse(R"({"id": 2, "name": "w2", "pid": 4343, "state": "FAILED", "status": "exited",
    "running": false, "exit_code": 3, "signal": null, "oom_killed": false, "restarts": 0,
    "uptime_ms": 500, "limits": {"memory": null}, "memory_bytes": 147456})");
}

TEST(StatusText, EachWayAnAgentEnds) {
  EXPECT_EQ(status_text(running_agent()), "running");
  EXPECT_EQ(status_text(ended_agent()), "exited (3)");
  EXPECT_EQ(status_text(json{{"status", "killed"}, {"signal", 15}}), "killed (SIGTERM)");
  EXPECT_EQ(status_text(json{{"status", "oom_killed"}, {"signal", 9}, {"oom_killed", true}}),
            "oom-killed");
  EXPECT_EQ(signal_name(9), "SIGKILL");
  EXPECT_EQ(signal_name(1000), "signal 1000");
}

TEST(ExitCode, ShellConvention) {
  EXPECT_EQ(exit_code_of(ended_agent()), 3);
  EXPECT_EQ(exit_code_of(json{{"exit_code", 0}, {"signal", nullptr}}), 0);
  EXPECT_EQ(exit_code_of(json{{"exit_code", nullptr}, {"signal", 15}}), 143);
  EXPECT_EQ(exit_code_of(json{{"exit_code", nullptr}, {"signal", 9}, {"oom_killed", true}}), 137);
  EXPECT_EQ(exit_code_of(json::object()), 1);
  EXPECT_EQ(describe_end(ended_agent()), "w2 exited with code 3");
  EXPECT_EQ(describe_end(json{{"name", "w"}, {"signal", 9}, {"oom_killed", true}}),
            "w was killed by SIGKILL (out of memory)");
  EXPECT_EQ(describe_end(json{{"name", "w"}, {"signal", 15}}), "w was killed by SIGTERM");
}

TEST(RenderPs, OneRowPerAgentWithCpuFromStats) {
  const json agents = json::array({running_agent(), ended_agent()});
  const json stats = json::parse(R"({"agents": [{"id": 1, "cpu_percent": 12.34}]})");
  EXPECT_EQ(render_ps(agents, stats),
            "ID   NAME    PID   STATE     STATUS       UPTIME    CPU%   MEM / LIMIT    RESTARTS   "
            "LLM-TOKENS\n"
            " 1   w1     4242   RUNNING   running       3m12s   12.3%   3MiB / 64MiB          2    "
            "      123\n"
            " 2   w2        -   FAILED    exited (3)       0s       -   144KiB / -            0    "
            "        -\n");
}

TEST(RenderPs, WithoutStatsCpuIsADashAndOddFieldsDoNotThrow) {
  const json agents =
      json::array({json{{"id", "x"}, {"name", 5}, {"running", "yes"}, {"limits", 3}}});
  const std::string out = render_ps(agents, json());
  EXPECT_NE(out.find("?   ?"), std::string::npos) << out;
  EXPECT_EQ(render_ps(json::object(), json()).find('\n'), out.find('\n'));  // header only
}

TEST(RenderTop, HeaderLinesAndAgentRows) {
  const json stats = json::parse(R"({
    "kernel": {"pid": 77, "uptime_ms": 61000, "rss_bytes": 10485760, "fds": 12, "connections": 2,
               "agents_running": 1, "agents_total": 3,
               "llm": {"queued": 4, "inflight": 1, "requests": 9, "errors": 0, "prompt_tokens": 12000,
                       "completion_tokens": 50}},
    "agents": [{"id": 1, "name": "w1", "state": "RUNNING", "cpu_percent": 50.0, "memory_bytes": 1048576,
                "memory_limit": 67108864, "pids": 3, "pids_limit": 16, "throttled_count": 5,
                "throttled_ms": 120, "oom_kills": 0, "restarts": 1,
                "llm": {"prompt_tokens": 10, "completion_tokens": 5}}]})");
  const std::string out = render_top(stats, 0);
  EXPECT_EQ(out,
            "agentos_kernel pid 77 · up 1m01s · rss 10MiB · fds 12 · connections 2 · agents 1 "
            "running / 3\n"
            "LLM: queue 4 · in flight 1 · requests 9 · errors 0 · tokens 12.0k in / 50 out\n"
            "\n"
            "ID   NAME   STATE      CPU%   MEM / LIMIT    PIDS     THROTTLED   OOM   RESTARTS   "
            "LLM-TOKENS\n"
            " 1   w1     RUNNING   50.0%   1MiB / 64MiB   3 / 16   5 (120ms)     0          1      "
            "     15\n");
  // (Found by ASan: the string_view used to outlive render_top's string.)
  const std::string screen = render_top(stats, 20);
  for (const std::string_view line : {std::string_view(screen)}) {
    size_t start = 0;
    while (start < line.size()) {
      const size_t nl = line.find('\n', start);
      EXPECT_LE(display_width(line.substr(start, nl - start)), 20u);
      start = nl + 1;
    }
  }
}

TEST(RenderTop, EmptyReplyStillRenders) {
  const std::string out = render_top(json::object(), 0);
  EXPECT_NE(out.find("agentos_kernel pid -"), std::string::npos) << out;
  EXPECT_NE(out.find("ID   NAME"), std::string::npos) << out;
}

TEST(LogAndEventLines, Format) {
  const json line = {
      {"ts", "2026-11-24T10:15:02.123456Z"}, {"stream", "stdout"}, {"text", "hello"}};
  EXPECT_EQ(format_log_line(line, false), "hello");
  EXPECT_EQ(format_log_line(line, true), "2026-11-24T10:15:02.123456Z hello");
  const json ev = {{"seq", 7},           {"ts", "2026-11-24T10:15:02Z"},
                   {"mono_ms", 5},       {"id", 3},
                   {"name", "w"},        {"type", "exited"},
                   {"exit_code", 1},     {"signal", nullptr},
                   {"status", "exited"}, {"reason", "too many restarts"}};
  EXPECT_EQ(format_event(ev),
            "2026-11-24T10:15:02Z  w[3]  exited  exit_code=1  reason=\"too many restarts\"  "
            "status=exited");
  EXPECT_EQ(format_event(json::array()), "-  ?[?]  ?");
}

TEST(RenderInfo, NamesTheEssentials) {
  const json hello = json::parse(R"({"protocol": 1, "kernel": "0.1.0", "features": ["noop", "logs"],
    "agent_id": 0, "max_payload": 1048576,
    "llm": {"configured": true, "provider": "gemini", "model": "m1", "queued": 0, "inflight": 0,
            "max_inflight": 8, "requests": 3, "errors": 1, "prompt_tokens": 10, "completion_tokens": 20}})");
  const json agents = json::array({running_agent(), ended_agent()});
  const std::string out = render_info("/tmp/a.sock", hello, json(), agents);
  for (const char* want :
       {"Socket:      /tmp/a.sock\n", "agentos_kernel 0.1.0, protocol 1", "Caller:      operator",
        "Features:    noop logs\n", "Max payload: 1MiB", "1 running, 2 known", "gemini, model m1",
        "3 requests, 1 errors, 10 prompt + 20 completion tokens"}) {
    EXPECT_NE(out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << out;
  }
  EXPECT_EQ(out.find("Process:"), std::string::npos);  // no STATS: no process line
  json unconfigured = hello;
  unconfigured["llm"]["configured"] = false;
  EXPECT_NE(render_info("s", unconfigured, json(), json()).find("not configured"),
            std::string::npos);
}

TEST(CheckReply, ErrorsBecomeErrorsAndUnknownOpcodesSaySo) {
  EXPECT_TRUE(check_reply(json::array(), ipc::Op::kList, "s"));
  EXPECT_TRUE(check_reply(json{{"content", "x"}, {"error", nullptr}}, ipc::Op::kThink, "s"));
  EXPECT_TRUE(check_reply(json{{"content", "x"}, {"error", ""}}, ipc::Op::kThink, "s"));
  auto e =
      check_reply(json{{"killed", false}, {"error", "no agent named 'x'"}}, ipc::Op::kKill, "s");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(), "no agent named 'x'");
  auto u = check_reply(json{{"error", "unknown opcode 0x13"}}, ipc::Op::kLogs, "/tmp/k.sock");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().message(),
            "the kernel at /tmp/k.sock does not support LOGS (unknown opcode 0x13): it is older "
            "than this client");
}

}  // namespace
}  // namespace agentos::cli

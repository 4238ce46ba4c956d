// The SPAWN payload as the kernel handles it: parse_json_payload, then
// parse_spawn_request, then the restart policy it produced.
//
// Oracle: a request that parses satisfies every rule docs/PROTOCOL.md states
// for SPAWN (so the agent manager can trust it without re-checking), and an
// error message can be sent back as JSON.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "kernel/kernel.hpp"
#include "runtime/restart_policy.hpp"
#include "runtime/spawn_request.hpp"

namespace {

using agentos::runtime::SpawnRequest;

bool no_nul(const std::string& s) { return s.find('\0') == std::string::npos; }

void check_strings(const SpawnRequest& r) {
  FUZZ_CHECK(agentos::runtime::valid_agent_name(r.name));
  FUZZ_CHECK(!r.script.empty() && no_nul(r.script));
  FUZZ_CHECK(!r.python.empty() && no_nul(r.python));
  for (const auto& a : r.args) FUZZ_CHECK(no_nul(a));
  for (const auto& [k, v] : r.env) {
    FUZZ_CHECK(!k.empty() && k.find('=') == std::string::npos && no_nul(k) && no_nul(v));
    FUZZ_CHECK(!k.starts_with("AGENTOS_"));
  }
}

void check_positive_rate(const std::optional<double>& v) {
  if (v) FUZZ_CHECK(std::isfinite(*v) && *v > 0);
}

void check_limits(const agentos::runtime::SpawnLimits& l) {
  if (l.memory) FUZZ_CHECK(*l.memory >= agentos::runtime::kMinMemoryBytes);
  if (l.max_pids) FUZZ_CHECK(*l.max_pids >= 1 && *l.max_pids <= 4194304);
  if (l.cpu_quota) FUZZ_CHECK(*l.cpu_quota >= 1000);
  if (l.cpu_period) FUZZ_CHECK(*l.cpu_period >= 1000 && *l.cpu_period <= 1000000);
  if (l.llm_tokens) FUZZ_CHECK(*l.llm_tokens >= 1);
  check_positive_rate(l.llm_rpm);
  check_positive_rate(l.llm_tpm);
  check_positive_rate(l.llm_weight);
}

void check_restart(const agentos::runtime::RestartPolicy& p) {
  using namespace std::chrono_literals;
  FUZZ_CHECK(p.window > 0s && p.window <= std::chrono::hours(24 * 365));
  FUZZ_CHECK(p.delay >= 0ms && p.max_delay >= p.delay);
  FUZZ_CHECK(p.max_restarts <= 10000);
  // Drive the tracker a few runs: its arithmetic must hold for any policy
  // SPAWN accepts.
  agentos::runtime::RestartTracker tracker(p);
  auto now = agentos::Clock::time_point{} + 1000h;
  for (int run = 0; run < 4; ++run) {
    const auto d = tracker.on_exit(/*failed=*/true, now, run % 2 ? 1s : 20s);
    FUZZ_CHECK(!d.restart || (d.delay >= 0ms && d.delay <= std::max(p.delay, p.max_delay)));
    FUZZ_CHECK(d.restart || !d.reason.empty());
    now += 1s;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto payload = agentos::parse_json_payload(agentos::fuzz::as_view(data, size), nlohmann::json::object());
  if (!payload) {
    agentos::fuzz::check_error_serialises(payload.error().message());
    return 0;
  }
  auto request = agentos::runtime::parse_spawn_request(*payload);
  if (!request) {
    agentos::fuzz::check_error_serialises(request.error().message());
    return 0;
  }
  check_strings(*request);
  check_limits(request->limits);
  check_restart(request->restart);
  return 0;
}

// The declarative config file (agentos.toml): parse_config_text over
// arbitrary text, then plan_reload over what it declared.
//
// Oracle: every declared agent is a SPAWN payload that parse_spawn_request
// accepts, with a unique name and an absolute script path; reloading the same
// file keeps everything and starting from nothing starts everything, in file
// order; errors carry the source name and serialise as JSON.
#include <cstdint>
#include <set>
#include <string>

#include "fuzz_check.hpp"
#include "kernel/config_file.hpp"
#include "runtime/spawn_request.hpp"

namespace {

constexpr const char* kSource = "/etc/agentos/fuzz.toml";

void check_agents(const std::vector<nlohmann::json>& agents) {
  std::set<std::string> names;
  for (const auto& spec : agents) {
    auto request = agentos::runtime::parse_spawn_request(spec);
    FUZZ_CHECK(request.has_value());
    FUZZ_CHECK(names.insert(request->name).second);
    FUZZ_CHECK(request->script.starts_with("/"));
    FUZZ_CHECK(!spec.dump().empty());  // strict dump: declared strings are valid UTF-8
  }
}

void check_reload(const std::vector<nlohmann::json>& agents) {
  auto same = agentos::plan_reload(agents, agents);
  FUZZ_CHECK(same.has_value());
  FUZZ_CHECK(same->start.empty() && same->stop.empty() && same->restart.empty());
  FUZZ_CHECK(same->keep.size() == agents.size());
  auto fresh = agentos::plan_reload({}, agents);
  FUZZ_CHECK(fresh.has_value());
  FUZZ_CHECK(fresh->start == agents);
  auto gone = agentos::plan_reload(agents, {});
  FUZZ_CHECK(gone.has_value() && gone->stop.size() == agents.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = agentos::parse_config_text(agentos::fuzz::as_view(data, size), kSource);
  if (!config) {
    const std::string message = config.error().message();
    FUZZ_CHECK(message.find(kSource) != std::string::npos);
    agentos::fuzz::check_error_serialises(message);
    return 0;
  }
  check_agents(config->agents);
  check_reload(config->agents);
  return 0;
}

// parse_json_payload: the first step of every JSON syscall (SPAWN, KILL,
// LIST and the selectors of LOGS/STATS/PAUSE/RESUME/WAIT/EVENTS).
//
// Oracle: blank payloads are the empty value; anything accepted serialises
// with the kernel's strict dump() (an exception there would escape the event
// loop) and that text parses again, so what the kernel echoes back to a
// client is valid JSON; the error message serialises.
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"
#include "kernel/kernel.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = agentos::fuzz::as_view(data, size);
  const auto empty = nlohmann::json::object();
  auto j = agentos::parse_json_payload(text, empty);
  const bool blank = text.find_first_not_of(" \t\r\n") == std::string_view::npos;
  if (!j) {
    FUZZ_CHECK(!blank);
    agentos::fuzz::check_error_serialises(j.error().message());
    return 0;
  }
  if (blank) FUZZ_CHECK(*j == empty);
  const std::string dumped = j->dump();
  const auto again = nlohmann::json::parse(dumped, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!again.is_discarded());
  // The selector shapes KILL/STATS/... read: these lookups must not throw.
  if (j->is_object()) {
    for (const char* key : {"name", "id", "all", "follow", "timeout_ms"}) {
      if (auto it = j->find(key); it != j->end()) FUZZ_CHECK(!it->dump().empty());
    }
  }
  return 0;
}

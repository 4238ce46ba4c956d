// Shared helpers for the libFuzzer targets.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

// An oracle failure: print what broke and abort, so libFuzzer saves the input
// as a crash (a plain return would count as a passing run).
#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace agentos::fuzz {

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// The kernel answers every failed request with `{"error": message}` built by
/// nlohmann::json::dump(), which throws on invalid UTF-8. An exception there
/// would escape the event-loop callback, so every message must serialise.
inline void check_error_serialises(const std::string& message) {
  const std::string reply = nlohmann::json{{"error", message}}.dump();
  FUZZ_CHECK(!reply.empty());
}

}  // namespace agentos::fuzz

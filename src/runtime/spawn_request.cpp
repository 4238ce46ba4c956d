#include "runtime/spawn_request.hpp"

#include <fmt/format.h>

#include <cctype>

namespace agentos::runtime {
namespace {

using nlohmann::json;

std::unexpected<Error> field_error(std::string_view field, std::string_view what) {
  return make_error(fmt::format("invalid field '{}': {}", field, what));
}

Result<std::string> get_string(const json& v, std::string_view field, bool allow_empty = false) {
  if (!v.is_string()) return field_error(field, "expected a string");
  auto s = v.get<std::string>();
  if (!allow_empty && s.empty()) return field_error(field, "must not be empty");
  if (s.find('\0') != std::string::npos) return field_error(field, "must not contain NUL");
  return s;
}

Result<bool> get_bool(const json& v, std::string_view field) {
  if (!v.is_boolean()) return field_error(field, "expected true or false");
  return v.get<bool>();
}

// A positive integer (JSON numbers like 1e6 that are integral are accepted).
Result<uint64_t> get_positive(const json& v, std::string_view field) {
  if (v.is_number_unsigned()) {
    const auto n = v.get<uint64_t>();
    if (n == 0) return field_error(field, "must be greater than zero");
    return n;
  }
  if (v.is_number_integer()) {
    const auto n = v.get<int64_t>();
    if (n <= 0) return field_error(field, "must be greater than zero");
    return static_cast<uint64_t>(n);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d >= 1 && d <= 9.0e18 && d == static_cast<double>(static_cast<uint64_t>(d))) {
      return static_cast<uint64_t>(d);
    }
    return field_error(field, "expected a positive whole number");
  }
  return field_error(field, "expected a positive whole number");
}

// A whole number in [0, max].
Result<uint64_t> get_count(const json& v, std::string_view field, uint64_t max) {
  if (v.is_number_unsigned() && v.get<uint64_t>() <= max) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0 && static_cast<uint64_t>(v.get<int64_t>()) <= max) {
    return static_cast<uint64_t>(v.get<int64_t>());
  }
  return field_error(field, fmt::format("expected a whole number from 0 to {}", max));
}

Result<double> get_positive_double(const json& v, std::string_view field) {
  if (!v.is_number()) return field_error(field, "expected a positive number");
  const double d = v.get<double>();
  if (!(d > 0) || d > 1e15) return field_error(field, "must be a positive number");
  return d;
}

Result<std::vector<std::string>> get_args(const json& v) {
  if (!v.is_array()) return field_error("args", "expected an array of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_string()) return field_error(fmt::format("args[{}]", i), "expected a string");
    out.push_back(AOS_TRY(get_string(v[i], fmt::format("args[{}]", i), true)));
  }
  return out;
}

Result<std::map<std::string, std::string>> get_env(const json& v) {
  if (!v.is_object()) return field_error("env", "expected an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, val] : v.items()) {
    const std::string field = "env." + k;
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos) {
      return field_error(field, "names must be non-empty and contain no '=' or NUL");
    }
    if (k.rfind("AGENTOS_", 0) == 0) return field_error(field, "AGENTOS_* variables are set by the kernel");
    out[k] = AOS_TRY(get_string(val, field, true));
  }
  return out;
}

Result<SpawnLimits> get_limits(const json& v) {
  if (!v.is_object()) return field_error("limits", "expected an object");
  SpawnLimits l;
  for (const auto& [k, val] : v.items()) {
    const std::string field = "limits." + k;
    if (k == "memory") {
      l.memory = AOS_TRY(get_positive(val, field));
      if (*l.memory < kMinMemoryBytes) {
        return field_error(field, fmt::format("{} bytes is below the minimum of {} (8 MiB)", *l.memory, kMinMemoryBytes));
      }
    } else if (k == "max_pids") {
      l.max_pids = AOS_TRY(get_positive(val, field));
      if (*l.max_pids > 4194304) return field_error(field, "must be at most 4194304");
    } else if (k == "cpu_quota") {
      l.cpu_quota = AOS_TRY(get_positive(val, field));
      if (*l.cpu_quota < 1000) return field_error(field, "must be at least 1000 µs (the kernel's minimum)");
    } else if (k == "cpu_period") {
      l.cpu_period = AOS_TRY(get_positive(val, field));
      if (*l.cpu_period < 1000 || *l.cpu_period > 1000000) {
        return field_error(field, "must be between 1000 and 1000000 µs");
      }
    } else if (k == "llm_rpm") {
      l.llm_rpm = AOS_TRY(get_positive_double(val, field));
    } else if (k == "llm_tpm") {
      l.llm_tpm = AOS_TRY(get_positive_double(val, field));
    } else if (k == "llm_tokens") {
      l.llm_tokens = AOS_TRY(get_positive(val, field));
    } else if (k == "llm_weight") {
      l.llm_weight = AOS_TRY(get_positive_double(val, field));
    } else {
      return field_error(field, "unknown limit (known: memory, max_pids, cpu_quota, cpu_period, llm_rpm, llm_tpm, llm_tokens, llm_weight)");
    }
  }
  return l;
}

// Applies one top-level field to `r`.
Result<void> apply_field(SpawnRequest& r, const std::string& k, const json& v) {
  if (k == "name") {
    r.name = AOS_TRY(get_string(v, k));
    if (!valid_agent_name(r.name)) {
      return field_error(k, "1-63 characters of [A-Za-z0-9._-], starting with a letter or digit");
    }
  } else if (k == "script") {
    r.script = AOS_TRY(get_string(v, k));
  } else if (k == "python") {
    r.python = AOS_TRY(get_string(v, k));
  } else if (k == "args") {
    r.args = AOS_TRY(get_args(v));
  } else if (k == "env") {
    r.env = AOS_TRY(get_env(v));
  } else if (k == "sandboxed") {
    r.sandboxed = AOS_TRY(get_bool(v, k));
  } else if (k == "network") {
    r.network = AOS_TRY(get_bool(v, k));
  } else if (k == "allow_spawn") {
    r.allow_spawn = AOS_TRY(get_bool(v, k));
  } else if (k == "limits") {
    if (!v.is_null()) r.limits = AOS_TRY(get_limits(v));
  } else if (k == "restart") {
    const std::string mode = AOS_TRY(get_string(v, k));
    r.restart.mode = AOS_TRY(parse_restart_mode(mode));
  } else if (k == "max_restarts") {
    r.restart.max_restarts = static_cast<uint32_t>(AOS_TRY(get_count(v, k, 10000)));
  } else if (k == "restart_window") {
    // Compared before the conversion: 2^63 seconds would wrap negative.
    const uint64_t seconds = AOS_TRY(get_positive(v, k));
    if (seconds > 365ULL * 24 * 3600) return field_error(k, "must be at most a year (31536000 s)");
    r.restart.window = std::chrono::seconds(seconds);
  } else if (k == "restart_delay_ms") {
    r.restart.delay = std::chrono::milliseconds(AOS_TRY(get_count(v, k, 3'600'000)));
  } else if (k == "restart_max_delay_ms") {
    r.restart.max_delay = std::chrono::milliseconds(AOS_TRY(get_count(v, k, 3'600'000)));
  } else {
    return field_error(k, "unknown field (known: name, script, python, args, env, sandboxed, network, allow_spawn, "
                          "limits, restart, max_restarts, restart_window, restart_delay_ms, restart_max_delay_ms)");
  }
  return {};
}

}  // namespace

bool valid_agent_name(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

Result<SpawnRequest> parse_spawn_request(const json& payload) {
  if (!payload.is_object()) return make_error("SPAWN expects a JSON object");
  SpawnRequest r;
  for (const auto& [k, v] : payload.items()) AOS_TRY_VOID(apply_field(r, k, v));
  if (r.name.empty()) return field_error("name", "required");
  if (r.script.empty()) return field_error("script", "required");
  if (r.restart.max_delay < r.restart.delay) {
    return field_error("restart_max_delay_ms", "must not be less than restart_delay_ms");
  }
  return r;
}

}  // namespace agentos::runtime

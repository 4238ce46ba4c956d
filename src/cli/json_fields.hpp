// Type-checked reads of reply fields. The kernel's replies are trusted to be
// JSON, not to have every field: a missing or mistyped field reads as empty
// rather than throwing (nlohmann's value() throws on a type mismatch).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace agentos::cli {

using nlohmann::json;

/// The member `key` of object `j`, or nullptr.
inline const json* field(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

inline std::optional<int64_t> get_int(const json& j, std::string_view key) {
  const json* v = field(j, key);
  if (!v || !v->is_number_integer()) return std::nullopt;
  return v->get<int64_t>();
}

inline std::optional<uint64_t> get_uint(const json& j, std::string_view key) {
  auto v = get_int(j, key);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

inline std::optional<double> get_number(const json& j, std::string_view key) {
  const json* v = field(j, key);
  if (!v || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

inline std::string get_string(const json& j, std::string_view key, std::string fallback = {}) {
  const json* v = field(j, key);
  return v && v->is_string() ? v->get<std::string>() : std::move(fallback);
}

inline bool get_bool(const json& j, std::string_view key, bool fallback = false) {
  const json* v = field(j, key);
  return v && v->is_boolean() ? v->get<bool>() : fallback;
}

/// The member `key` if it is an object, else an empty object.
inline const json& get_object(const json& j, std::string_view key) {
  static const json kEmpty = json::object();
  const json* v = field(j, key);
  return v && v->is_object() ? *v : kEmpty;
}

/// The member `key` if it is an array, else an empty array.
inline const json& get_array(const json& j, std::string_view key) {
  static const json kEmpty = json::array();
  const json* v = field(j, key);
  return v && v->is_array() ? *v : kEmpty;
}

}  // namespace agentos::cli

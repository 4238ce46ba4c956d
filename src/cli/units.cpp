#include "cli/units.hpp"

#include <array>
#include <cctype>
#include <optional>

#include <fmt/format.h>

namespace agentos::cli {
namespace {

using u128 = unsigned __int128;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

constexpr u128 kMaxDigitsValue = u128{1'000'000'000'000} * 1'000'000'000'000;  // 10^24

// "12.345" -> 12345 with scale 3 (digits past the scale are dropped).
// Accepts digits with at most one '.', starting with a digit; nothing else.
std::optional<u128> parse_scaled(std::string_view s, int scale) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front()))) return std::nullopt;
  u128 value = 0;
  int frac_digits = -1;  // -1: before the point
  for (char c : s) {
    if (c == '.' && frac_digits < 0) {
      frac_digits = 0;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    if (frac_digits >= scale) continue;
    if (value > kMaxDigitsValue) return std::nullopt;  // absurdly long: keeps the math in range
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (frac_digits >= 0) ++frac_digits;
  }
  if (frac_digits == 0) return std::nullopt;  // "12." is not a number
  for (int i = std::max(frac_digits, 0); i < scale; ++i) value *= 10;
  return value;
}

// The multiplier of a size unit letter (Docker's units are binary).
std::optional<uint64_t> unit_multiplier(char c) {
  switch (std::tolower(static_cast<unsigned char>(c))) {
    case 'b':
      return uint64_t{1};
    case 'k':
      return uint64_t{1} << 10;
    case 'm':
      return uint64_t{1} << 20;
    case 'g':
      return uint64_t{1} << 30;
    case 't':
      return uint64_t{1} << 40;
    case 'p':
      return uint64_t{1} << 50;
    default:
      return std::nullopt;
  }
}

// Splits "64 MiB" into the number and the multiplier of its unit suffix.
std::optional<std::pair<std::string_view, uint64_t>> split_size_unit(std::string_view s) {
  size_t end = s.size();
  auto lower_at = [&](size_t i) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  };
  bool has_b = end > 0 && lower_at(end - 1) == 'b';
  if (has_b) --end;
  bool has_i = end > 0 && lower_at(end - 1) == 'i';
  if (has_i) --end;
  uint64_t mult = 1;
  if (end > 0 && std::isalpha(static_cast<unsigned char>(s[end - 1]))) {
    auto m = unit_multiplier(s[end - 1]);
    if (!m || lower_at(end - 1) == 'b') return std::nullopt;
    mult = *m;
    --end;
  } else if (has_i) {
    return std::nullopt;  // "12i", "12ib"
  }
  return std::pair{trim(s.substr(0, end)), mult};
}

}  // namespace

Result<uint64_t> parse_memory(std::string_view text) {
  const std::string_view s = trim(text);
  const auto bad = [&](std::string_view why) {
    return make_error(fmt::format("invalid size '{}': {}", text, why), EINVAL);
  };
  auto parts = split_size_unit(s);
  if (!parts) return bad("expected a number with an optional unit such as 512K, 64M or 1.5G");
  constexpr int kScale = 6;
  auto scaled = parse_scaled(parts->first, kScale);
  if (!scaled) return bad("expected a number with an optional unit such as 512K, 64M or 1.5G");
  constexpr u128 kOne = 1'000'000;  // 10^kScale
  const u128 whole = *scaled / kOne;
  if (whole > u128{UINT64_MAX}) return bad("too large");
  const u128 bytes = whole * parts->second + *scaled % kOne * parts->second / kOne;
  if (bytes == 0) return bad("must be greater than zero");
  if (bytes > u128{UINT64_MAX}) return bad("too large");
  return static_cast<uint64_t>(bytes);
}

Result<uint64_t> parse_cpu(std::string_view text) {
  std::string_view s = trim(text);
  const bool percent = !s.empty() && s.back() == '%';
  if (percent) s = trim(s.substr(0, s.size() - 1));
  // A percentage p is p*1000 µs per 100 ms; a CPU count c is c*100000 µs.
  auto quota = parse_scaled(s, percent ? 3 : 5);
  if (!quota) {
    return make_error(
        fmt::format("invalid CPU share '{}': expected a percentage such as 50% or 150%, "
                    "or a number of CPUs such as 0.5",
                    text),
        EINVAL);
  }
  if (*quota < 1000) {
    return make_error(fmt::format("invalid CPU share '{}': the minimum is 1% (0.01 CPUs)", text),
                      EINVAL);
  }
  if (*quota > u128{1000} * kCpuPeriodUs) {
    return make_error(
        fmt::format("invalid CPU share '{}': the maximum is 1000 CPUs (100000%)", text), EINVAL);
  }
  return static_cast<uint64_t>(*quota);
}

std::string format_bytes(uint64_t bytes) {
  static constexpr std::array<const char*, 7> kUnits = {"B",   "KiB", "MiB", "GiB",
                                                        "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < kUnits.size()) {
    v /= 1024.0;
    ++unit;
  }
  // 4 significant digits can round 1023.99 up to "1024"; that is fine.
  return fmt::format("{:.4g}{}", v, kUnits[unit]);
}

std::string format_duration(uint64_t ms) {
  const uint64_t s = ms / 1000;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string format_percent(double percent) { return fmt::format("{:.1f}%", percent); }

std::string format_count(uint64_t n) {
  if (n < 10000) return fmt::format("{}", n);
  if (n < 1'000'000) return fmt::format("{:.1f}k", static_cast<double>(n) / 1e3);
  if (n < 1'000'000'000) return fmt::format("{:.2f}M", static_cast<double>(n) / 1e6);
  return fmt::format("{:.2f}G", static_cast<double>(n) / 1e9);
}

}  // namespace agentos::cli

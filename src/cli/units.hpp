// Human units for the command line: sizes as Docker reads them, CPU shares
// as percentages or CPUs, and the compact forms the tables print. Pure code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace agentos::cli {

/// The CFS period the kernel uses when SPAWN gives none (µs).
inline constexpr uint64_t kCpuPeriodUs = 100000;

/// Parses a size the way `docker run --memory` does: a number (fractions
/// allowed) and an optional binary unit, case-insensitive, with optional
/// "i"/"b": "512" bytes, "512K", "64M" = 64 MiB, "1.5g", "2GiB", "10MB".
/// Zero, negative numbers and junk are errors.
Result<uint64_t> parse_memory(std::string_view text);

/// Parses a CPU share into a CFS quota in µs per kCpuPeriodUs:
/// "50%" -> 50000, "150%" -> 150000, "0.5" (CPUs, like `docker --cpus`)
/// -> 50000. Below 1% (the kernel's 1000 µs minimum) is an error.
Result<uint64_t> parse_cpu(std::string_view text);

/// Bytes with a binary unit and up to 4 significant digits, as `docker
/// stats` prints them: "512B", "1.5KiB", "64MiB", "12.34GiB".
std::string format_bytes(uint64_t bytes);

/// A duration in two units at most: "0s", "45s", "3m12s", "2h05m", "3d04h".
std::string format_duration(uint64_t ms);

/// A percentage with one decimal: "12.5%".
std::string format_percent(double percent);

/// A count, compact above 9999: "1234", "12.3k", "4.56M".
std::string format_count(uint64_t n);

}  // namespace agentos::cli

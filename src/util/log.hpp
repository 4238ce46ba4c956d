// Logging goes through spdlog's default logger (stderr). The kernel sets the
// level once from --log-level; nothing else configures it.
#pragma once

#include <spdlog/spdlog.h>

namespace agentos::log {
using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::trace;
using spdlog::warn;
}  // namespace agentos::log

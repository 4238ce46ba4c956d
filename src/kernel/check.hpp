// `agentos_kernel --check`: what this machine lets the kernel enforce.
#pragma once

#include <nlohmann/json.hpp>

#include "kernel/config.hpp"

namespace agentos {

/// Probes the machine (cgroups, namespaces, seccomp, pidfd/clone3, root).
nlohmann::json check_machine(const KernelConfig& cfg);

/// Human-readable rendering of check_machine()'s result.
std::string render_check(const nlohmann::json& report);

}  // namespace agentos

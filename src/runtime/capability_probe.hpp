// What this machine lets the sandbox do, for `agentos_kernel --check`.
#pragma once

#include <nlohmann/json.hpp>

namespace agentos::runtime {

/// Tries each mechanism for real: clone3 with a pidfd, every namespace kind
/// (a short-lived child cloned with that flag, plus CLONE_NEWUSER when the
/// kernel is not root, as the sandbox would do), an unprivileged user
/// namespace, seccomp filters (kill-process action), the Landlock ABI,
/// mount_setattr, and whether the kernel runs as root. Blocks for a few
/// milliseconds (it waits for its test children): not for the event loop.
nlohmann::json probe_capabilities();

}  // namespace agentos::runtime

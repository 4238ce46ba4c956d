// Finding the real interpreter for an agent and what of it a sandbox must
// expose. The `python3` first on PATH may be a shell shim (pyenv's, ~110 ms
// per start and useless inside a sandbox that hides $HOME), so shims are
// skipped and /usr/bin is preferred.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/result.hpp"

namespace agentos::runtime {

struct Interpreter {
  /// What to execve: the real path, except for a virtualenv's interpreter,
  /// which must be started through the venv's bin/ to find its pyvenv.cfg.
  std::string path;
  std::string real_path;  // realpath() of the executable
  std::string version;    // "3.11" when the names tell; else empty
  /// Host paths to bind read-only (the sandbox already has /usr, so paths
  /// under it are harmless duplicates that the mount planner skips).
  std::vector<std::string> ro_dirs;
};

/// Resolves `name`: an absolute path is taken as it is; a bare name is
/// looked up in /usr/bin first, then in `path_env` (a PATH value), skipping
/// shell-script shims. The error lists what was tried and skipped.
Result<Interpreter> resolve_interpreter(std::string_view name, std::string_view path_env);

/// Whether `path` starts with a `#!` line whose interpreter is a shell
/// (sh, bash, dash, zsh, ...; also through /usr/bin/env).
bool is_shell_script(const std::string& path);

/// The read-only host paths an interpreter needs, from its exec path and
/// realpath: for a prefix such as /usr or /opt/python3.12 or
/// ~/.pyenv/versions/3.12.1 the whole installation prefix; when the prefix
/// would be a home or top-level directory itself (/root/bin/python3), only
/// the binary, lib/pythonX.Y and lib/libpython*; plus a virtualenv's root.
/// Never /root or /home as such.
std::vector<std::string> interpreter_dirs(const std::string& path, const std::string& real_path,
                                          const std::string& version);

}  // namespace agentos::runtime

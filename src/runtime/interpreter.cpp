#include "runtime/interpreter.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/unique_fd.hpp"

namespace agentos::runtime {
namespace {

namespace fs = std::filesystem;

constexpr std::array kShells = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish"};

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// "#!/usr/bin/env -S bash -e" -> "bash"; "#!/bin/sh" -> "sh".
std::string shebang_program(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) words.emplace_back(line.substr(start, i - start));
  }
  if (words.empty()) return "";
  std::string prog = fs::path(words[0]).filename().string();
  if (prog != "env") return prog;
  for (size_t w = 1; w < words.size(); ++w) {
    if (!words[w].starts_with("-") && words[w].find('=') == std::string::npos) {
      return fs::path(words[w]).filename().string();
    }
  }
  return "";
}

// "python3.11" -> "3.11" (anywhere in the name: "libpython3.11.so" too).
// Hand-rolled: std::regex trips GCC 12's -Wmaybe-uninitialized under ASan.
std::string version_from_name(const std::string& name) {
  auto digits = [&](size_t i) {
    size_t j = i;
    while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
    return j;
  };
  for (size_t at = name.find("python"); at != std::string::npos; at = name.find("python", at + 1)) {
    size_t major = at + 6, dot = digits(major);
    if (dot == major || dot >= name.size() || name[dot] != '.') continue;
    size_t end = digits(dot + 1);
    if (end > dot + 1) return name.substr(major, end - major);
  }
  return "";
}

// The only lib/pythonX.Y with an os.py under `prefix`, if there is exactly one.
std::string version_from_prefix(const fs::path& prefix) {
  std::error_code ec;
  std::string found;
  for (const auto& entry : fs::directory_iterator(prefix / "lib", ec)) {
    std::string v = version_from_name(entry.path().filename().string());
    if (v.empty() || !path_exists(entry.path() / "os.py")) continue;
    if (!found.empty()) return "";
    found = v;
  }
  return found;
}

// A home directory, /home itself or a top-level directory: too much to expose whole.
bool too_broad(const fs::path& prefix) {
  auto depth = std::distance(prefix.begin(), prefix.end());  // "/" counts as one element
  return depth <= 2 || prefix.parent_path() == "/home";
}

Result<Interpreter> describe(const std::string& path) {
  std::error_code ec;
  fs::path real = fs::canonical(path, ec);
  if (ec) return make_error(fmt::format("interpreter {}: {}", path, ec.message()), ec.value());
  Interpreter in;
  in.real_path = real.string();
  in.version = version_from_name(real.filename().string());
  if (in.version.empty()) in.version = version_from_name(fs::path(path).filename().string());
  if (in.version.empty()) in.version = version_from_prefix(real.parent_path().parent_path());
  fs::path venv = fs::path(path).parent_path().parent_path();
  in.path = path_exists(venv / "pyvenv.cfg") ? path : in.real_path;
  in.ro_dirs = interpreter_dirs(path, in.real_path, in.version);
  return in;
}

}  // namespace

bool is_shell_script(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 2 || buf[0] != '#' || buf[1] != '!') return false;
  std::string_view head(buf + 2, static_cast<size_t>(n - 2));
  std::string prog = shebang_program(head.substr(0, head.find('\n')));
  return std::find(kShells.begin(), kShells.end(), prog) != kShells.end();
}

std::vector<std::string> interpreter_dirs(const std::string& path, const std::string& real_path,
                                          const std::string& version) {
  std::vector<std::string> dirs;
  fs::path real(real_path);
  fs::path prefix = real.parent_path().parent_path();
  if (too_broad(prefix)) {
    dirs.push_back(real_path);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(prefix / "lib", ec)) {
      std::string name = entry.path().filename().string();
      if ((!version.empty() && name == "python" + version) || name.starts_with("libpython")) {
        dirs.push_back(entry.path().string());
      }
    }
  } else {
    dirs.push_back(prefix.string());
  }
  // A virtualenv: its root holds pyvenv.cfg and site-packages.
  fs::path venv = fs::path(path).parent_path().parent_path();
  if (path_exists(venv / "pyvenv.cfg") && !too_broad(venv)) dirs.push_back(venv.string());
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  return dirs;
}

Result<Interpreter> resolve_interpreter(std::string_view name, std::string_view path_env) {
  if (name.empty()) return make_error("interpreter: empty name");
  if (name.find('/') != std::string_view::npos) {
    if (!name.starts_with("/"))
      return make_error(fmt::format("interpreter {}: not an absolute path", name));
    if (!is_executable_file(std::string(name))) {
      return make_error(fmt::format("interpreter {}: not an executable file", name),
                        errno ? errno : EACCES);
    }
    return describe(std::string(name));
  }
  std::vector<std::string> candidates{fmt::format("/usr/bin/{}", name)};
  for (size_t start = 0; start <= path_env.size();) {
    size_t end = std::min(path_env.find(':', start), path_env.size());
    std::string_view dir = path_env.substr(start, end - start);
    if (dir.starts_with("/")) candidates.push_back(fmt::format("{}/{}", dir, name));
    start = end + 1;
  }
  std::vector<std::string> shims;
  for (const auto& c : candidates) {
    if (!is_executable_file(c)) continue;
    if (is_shell_script(c)) {
      shims.push_back(c);
      continue;
    }
    return describe(c);
  }
  return make_error(fmt::format("interpreter {}: no executable in /usr/bin or PATH{}", name,
                                shims.empty() ? ""
                                              : fmt::format(" (shell-script shims skipped: {})",
                                                            fmt::join(shims, ", "))),
                    ENOENT);
}

}  // namespace agentos::runtime

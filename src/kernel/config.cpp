#include "kernel/config.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

namespace agentos {

std::string instance_name(const std::string& socket_path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(socket_path, ec);
  const std::string key = ec ? socket_path : abs.lexically_normal().string();
  uint32_t h = 2166136261u;  // FNV-1a: stable across runs and builds
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  return fmt::format("agentos-{:08x}", h);
}

void resolve_paths(KernelConfig& cfg) {
  if (cfg.instance.empty()) cfg.instance = instance_name(cfg.socket_path);
  const bool root = ::geteuid() == 0;
  if (cfg.runtime_dir.empty()) {
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    std::string base = root ? "/run/agentos"
                       : (xdg && *xdg) ? std::string(xdg) + "/agentos"
                                       : fmt::format("/tmp/agentos-{}", ::geteuid());
    cfg.runtime_dir = base + "/" + cfg.instance;
  }
  if (cfg.state_dir.empty()) {
    const char* xdg = std::getenv("XDG_STATE_HOME");
    const char* home = std::getenv("HOME");
    std::string base = root ? "/var/lib/agentos"
                       : (xdg && *xdg) ? std::string(xdg) + "/agentos"
                       : (home && *home) ? std::string(home) + "/.local/state/agentos"
                                         : fmt::format("/tmp/agentos-{}/state", ::geteuid());
    cfg.state_dir = base + "/" + cfg.instance;
  }
}

}  // namespace agentos

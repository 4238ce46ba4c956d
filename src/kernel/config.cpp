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

namespace agentos {

Result<void> apply_llm_flags(llm::LlmConfig& cfg, const std::string& provider, const std::string& model,
                             const std::string& base_url) {
  if (!provider.empty() && provider != cfg.provider) {
    cfg.provider = provider;
    const bool gemini = provider == "gemini";
    cfg.model = gemini ? llm::LlmConfig::kGeminiDefaultModel : llm::LlmConfig::kOpenAiDefaultModel;
    const char* url = std::getenv(gemini ? "GEMINI_BASE_URL" : "OPENAI_BASE_URL");
    cfg.base_url = (url && *url) ? url : gemini ? llm::LlmConfig::kGeminiDefaultUrl : llm::LlmConfig::kOpenAiDefaultUrl;
    const char* key = gemini ? std::getenv("GEMINI_API_KEY") : std::getenv("OPENAI_API_KEY");
    if (gemini && !(key && *key)) key = std::getenv("GOOGLE_API_KEY");
    cfg.api_key = key ? key : "";
  }
  if (!model.empty()) cfg.model = model;
  if (!base_url.empty()) cfg.base_url = base_url;
  if (auto r = cfg.validate(); !r) return std::unexpected(r.error().wrap("LLM configuration"));
  return {};
}

std::string default_sdk_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (const auto& candidate : {exe.parent_path() / ".." / "agents" / "python_sdk",
                                exe.parent_path() / ".." / "share" / "agentos" / "python_sdk"}) {
    if (std::filesystem::exists(candidate / "agentos.py", ec)) {
      return std::filesystem::canonical(candidate, ec).string();
    }
  }
  return "";
}

}  // namespace agentos

#include "kernel/config.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>

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

namespace {

template <class T>
void set_if(const std::optional<T>& from, T& to) {
  if (from) to = *from;
}

void apply_kernel_settings(const KernelSettings& s, KernelConfig& cfg) {
  set_if(s.socket, cfg.socket_path);
  set_if(s.log_level, cfg.log_level);
  set_if(s.state_dir, cfg.state_dir);
  set_if(s.runtime_dir, cfg.runtime_dir);
  set_if(s.cgroup_parent, cfg.cgroup_parent);
  set_if(s.sdk_dir, cfg.sdk_dir);
  set_if(s.max_connections, cfg.max_connections);
  set_if(s.max_output_bytes, cfg.max_output_bytes);
  set_if(s.sandbox, cfg.enable_sandboxing);
  set_if(s.kill_grace_ms, cfg.kill_grace_ms);
  set_if(s.stats_interval_ms, cfg.stats_interval_ms);
  set_if(s.log_max_bytes, cfg.log_max_bytes);
  set_if(s.log_max_files, cfg.log_max_files);
}

// The file's llm_* keys as the environment variables they mirror. Handing
// LlmConfig::from_env() these as fallbacks keeps its one set of rules (the
// provider follows the key present unless named, ...) and makes a variable
// that is set win over the file.
std::map<std::string, std::string, std::less<>> llm_variables_of(const KernelSettings& s) {
  std::map<std::string, std::string, std::less<>> vars;
  if (s.llm_provider) vars["AGENTOS_LLM_PROVIDER"] = *s.llm_provider;
  if (s.llm_model) vars["AGENTOS_LLM_MODEL"] = *s.llm_model;
  if (s.llm_base_url) vars["GEMINI_BASE_URL"] = vars["OPENAI_BASE_URL"] = *s.llm_base_url;
  if (s.llm_scheduler) vars["AGENTOS_LLM_SCHEDULER"] = *s.llm_scheduler;
  // fmt's "{}" is the shortest text that reads back as the same number.
  if (s.llm_max_inflight) vars["AGENTOS_LLM_MAX_INFLIGHT"] = fmt::format("{}", *s.llm_max_inflight);
  if (s.llm_rpm) vars["AGENTOS_LLM_RPM"] = fmt::format("{}", *s.llm_rpm);
  if (s.llm_tpm) vars["AGENTOS_LLM_TPM"] = fmt::format("{}", *s.llm_tpm);
  if (s.llm_timeout) vars["AGENTOS_LLM_TIMEOUT_S"] = fmt::format("{}", *s.llm_timeout);
  return vars;
}

}  // namespace

Result<KernelConfig> layered_config(const std::optional<ConfigFile>& file, const GetenvFn& getenv_fn) {
  KernelConfig cfg;
  const KernelSettings no_settings;
  const KernelSettings& settings = file ? file->kernel : no_settings;
  apply_kernel_settings(settings, cfg);
  if (const char* socket = getenv_fn("AGENTOS_SOCKET"); socket && *socket) cfg.socket_path = socket;
  const auto from_file = llm_variables_of(settings);
  auto env_then_file = [&](const char* name) -> const char* {
    if (const char* v = getenv_fn(name); v && *v) return v;
    auto it = from_file.find(name);
    return it == from_file.end() ? nullptr : it->second.c_str();
  };
  cfg.llm = AOS_TRY(llm::LlmConfig::from_env(env_then_file));
  if (file) {
    cfg.config_path = file->path;
    cfg.declared_agents = file->agents;
  }
  return cfg;
}

}  // namespace agentos

#include "kernel/check.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "kernel/kernel.hpp"
#include "runtime/capability_probe.hpp"
#include "runtime/cgroup.hpp"

namespace agentos {
namespace {

using nlohmann::json;

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

}  // namespace

json check_machine(const KernelConfig& cfg) {
  json r;
  r["kernel_version"] = AGENTOS_VERSION;
  r["root"] = ::geteuid() == 0;
  r["socket"] = cfg.socket_path;
  r["instance"] = cfg.instance;
  r["state_dir"] = cfg.state_dir;
  r["runtime_dir"] = cfg.runtime_dir;
  r["sdk_dir"] = !cfg.sdk_dir.empty()
                     ? cfg.sdk_dir
                     : "none found beside the binary (../agents/python_sdk, ../share/agentos/python_sdk): "
                       "agents cannot import agentos unless they bring it (--sdk-dir DIR)";
  r["sandboxing"] = cfg.enable_sandboxing ? "enabled" : "disabled (--no-sandbox)";
  r["user_namespaces_max"] = read_first_line("/proc/sys/user/max_user_namespaces");
  r["sandbox"] = runtime::probe_capabilities();
  runtime::CgroupOptions opts;
  opts.instance = cfg.instance + "-check";
  if (!cfg.cgroup_parent.empty()) opts.parent = cfg.cgroup_parent;
  // Opening the backend creates (and on destruction removes) a scratch
  // instance directory: the check proves the kernel can really write there.
  if (auto cg = runtime::open_cgroups(opts)) {
    r["cgroups"] = (*cg)->describe();
  } else {
    r["cgroups"] = {{"available", false}, {"error", cg.error().message()}};
  }
  r["llm"] = cfg.llm.describe();
  r["features"] = kernel_features();
  return r;
}

std::string render_check(const json& report) {
  std::ostringstream out;
  for (const auto& [key, value] : report.items()) {
    if (value.is_object()) {
      out << key << ":\n";
      for (const auto& [k, v] : value.items()) out << "  " << k << ": " << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
    } else {
      out << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
    }
  }
  return out.str();
}

}  // namespace agentos

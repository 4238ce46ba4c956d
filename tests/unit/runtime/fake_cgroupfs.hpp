// Pieces shared by the fake cgroupfs of the v1 and v2 backend tests: a
// cgroup directory is a plain directory whose control files are plain files.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "runtime/cgroup.hpp"

namespace agentos::runtime::fake {

namespace fs = std::filesystem;

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void put(const fs::path& p, std::string_view text) { std::ofstream(p) << text; }

/// rmdir as the kernel does it: ENOENT when gone, EBUSY with child cgroups or member
/// processes; the control files go with the directory.
inline Result<void> remove_cgroup_dir(CgroupFs& real, const std::string& path) {
  if (!fs::exists(path)) return make_error("rmdir " + path, ENOENT);
  for (const auto& e : fs::directory_iterator(path)) {
    if (e.is_directory()) return make_error("rmdir " + path, EBUSY);
  }
  if (!cgroup_util::split_words(slurp(fs::path(path) / "cgroup.procs")).empty()) {
    return make_error("rmdir " + path, EBUSY);
  }
  for (const auto& e : fs::directory_iterator(path)) fs::remove(e.path());
  return real.CgroupFs::remove_dir(path);
}

}  // namespace agentos::runtime::fake

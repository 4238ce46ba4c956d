// Interpreter resolution: shims skipped, /usr/bin preferred, what to expose.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "runtime/interpreter.hpp"
#include "runtime/spawn_harness.hpp"

namespace agentos::runtime {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void write_executable(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << content;
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(Interpreter, RecognisesShellShims) {
  TempDir dir;
  const fs::path d = dir.path;
  write_executable(d / "sh", "#!/bin/sh\nexec foo\n");
  write_executable(d / "bash_env", "#!/usr/bin/env bash\nset -e\n");
  write_executable(d / "env_s", "#!/usr/bin/env -S bash -e\n");
  write_executable(d / "py", "#!/usr/bin/python3\nprint(1)\n");
  write_executable(d / "py_env", "#!/usr/bin/env python3\n");
  write_executable(d / "plain", "not a script");
  EXPECT_TRUE(is_shell_script(d / "sh"));
  EXPECT_TRUE(is_shell_script(d / "bash_env"));
  EXPECT_TRUE(is_shell_script(d / "env_s"));
  EXPECT_FALSE(is_shell_script(d / "py"));
  EXPECT_FALSE(is_shell_script(d / "py_env"));
  EXPECT_FALSE(is_shell_script(d / "plain"));
  EXPECT_FALSE(is_shell_script("/usr/bin/python3"));  // an ELF binary
}

TEST(Interpreter, PathSearchSkipsShims) {
  TempDir dir;
  const fs::path d = dir.path;
  write_executable(d / "shims/agentos-fake-python", "#!/usr/bin/env bash\nexec real \"$@\"\n");
  fs::create_directories(d / "real");
  fs::copy_file("/bin/true", d / "real/agentos-fake-python");
  auto in = resolve_interpreter("agentos-fake-python",
                                (d / "shims").string() + ":" + (d / "real").string());
  ASSERT_TRUE(in) << in.error().message();
  EXPECT_EQ(in->path, (d / "real/agentos-fake-python").string());

  auto only_shim = resolve_interpreter("agentos-fake-python", (d / "shims").string());
  ASSERT_FALSE(only_shim);
  EXPECT_NE(only_shim.error().message().find("shims skipped"), std::string::npos)
      << only_shim.error().message();
}

TEST(Interpreter, PrefersUsrBinPython) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  // A pyenv-style shim first on PATH, as on the development machines.
  TempDir dir;
  write_executable(fs::path(dir.path) / "python3",
                   "#!/usr/bin/env bash\nexec pyenv exec python3 \"$@\"\n");
  auto in = resolve_interpreter("python3", dir.path + ":/usr/local/bin:/usr/bin");
  ASSERT_TRUE(in) << in.error().message();
  EXPECT_EQ(in->real_path, fs::canonical("/usr/bin/python3").string());
  EXPECT_EQ(in->path, in->real_path);
  EXPECT_FALSE(in->version.empty());
  EXPECT_TRUE(contains(in->ro_dirs, "/usr/lib/python" + in->version))
      << ::testing::PrintToString(in->ro_dirs);
  for (const auto& d : in->ro_dirs) {
    EXPECT_FALSE(d == "/usr" || d.starts_with("/root") || d.starts_with("/home")) << d;
  }
}

TEST(Interpreter, InstallationDirectories) {
  // Pure path logic: none of these need to exist.
  EXPECT_EQ(
      interpreter_dirs("/opt/python3.12/bin/python3", "/opt/python3.12/bin/python3.12", "3.12"),
      std::vector<std::string>{"/opt/python3.12"});
  EXPECT_EQ(interpreter_dirs("/root/.pyenv/versions/3.12.1/bin/python3",
                             "/root/.pyenv/versions/3.12.1/bin/python3.12", "3.12"),
            std::vector<std::string>{"/root/.pyenv/versions/3.12.1"});
  // The prefix would be a home (or /root) itself: only the binary.
  EXPECT_EQ(interpreter_dirs("/home/u/bin/python3", "/home/u/bin/python3.12", "3.12"),
            std::vector<std::string>{"/home/u/bin/python3.12"});
  EXPECT_EQ(interpreter_dirs("/root/bin/python3", "/root/bin/python3", ""),
            std::vector<std::string>{"/root/bin/python3"});
}

TEST(Interpreter, VirtualenvKeepsItsPathAndRoot) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  TempDir dir;
  const fs::path venv = fs::path(dir.path) / "venv";
  fs::create_directories(venv / "bin");
  std::ofstream(venv / "pyvenv.cfg") << "home = /usr/bin\n";
  fs::create_symlink("/usr/bin/python3", venv / "bin/python3");
  auto in = resolve_interpreter((venv / "bin/python3").string(), "");
  ASSERT_TRUE(in) << in.error().message();
  EXPECT_EQ(in->path, (venv / "bin/python3").string());  // pyvenv.cfg is found next to it
  EXPECT_TRUE(contains(in->ro_dirs, venv.string())) << ::testing::PrintToString(in->ro_dirs);
}

TEST(Interpreter, ErrorsNameTheProblem) {
  EXPECT_FALSE(resolve_interpreter("", "/usr/bin"));
  EXPECT_FALSE(resolve_interpreter("bin/python3", "/usr/bin"));
  auto missing = resolve_interpreter("agentos-no-such-interpreter", "/usr/bin:/bin");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("agentos-no-such-interpreter"), std::string::npos);
}

}  // namespace
}  // namespace agentos::runtime

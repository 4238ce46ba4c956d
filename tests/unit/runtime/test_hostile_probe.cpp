// Runs tests/probes/hostile_probe.py inside a sandbox, as an unprivileged
// uid, and checks every verdict. (The fork bomb needs cgroups: not here.)
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "runtime/interpreter.hpp"
#include "runtime/landlock.hpp"
#include "runtime/spawn_harness.hpp"

namespace agentos::runtime {
namespace {

namespace fs = std::filesystem;
using testing::run_to_end;
using testing::TempDir;

// The repository: $AGENTOS_SOURCE_DIR (set by ctest), else from __FILE__
// (which a compiler cache may have made relative, hence absolute()).
const fs::path kRepo = std::getenv("AGENTOS_SOURCE_DIR")
                           ? fs::path(std::getenv("AGENTOS_SOURCE_DIR"))
                           : fs::absolute(fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path());
const fs::path kProbe = kRepo / "tests/probes/hostile_probe.py";

UniqueFd listen_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 ||
      ::listen(fd.get(), 4) < 0)
    return {};
  ::chmod(path.c_str(), 0777);  // connect() needs write permission on the socket file
  return fd;
}

class HostileProbe : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::can_sandbox()) return;
    dir_ = new TempDir;
    fs::path sock = fs::path(dir_->path) / "agent.sock";
    listener_ = new UniqueFd(listen_unix(sock.string()));
    auto interp = resolve_interpreter("python3", "/usr/bin:/bin");
    ASSERT_TRUE(interp) << interp.error().message();
    SpawnSpec s;
    s.name = "hostile";
    s.exe = interp->path;
    s.argv = {"python3", kProbe.string(), (kRepo / "CMakeLists.txt").string(),
              std::to_string(::getpid()), "/tmp/agentos.sock"};
    s.env = {"PATH=/usr/bin:/bin", "HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"};
    s.ro_paths = interp->ro_dirs;
    s.ro_paths.push_back(kProbe.parent_path().string());
    s.socket_host_path = sock.string();
    s.socket_sandbox_path = "/tmp/agentos.sock";
    if (testing::is_root()) {
      s.uid = 61234;
      s.gid = 61234;
    }
    auto o = run_to_end(std::move(s));
    ASSERT_TRUE(o) << o.error().message();
    ASSERT_TRUE(o->exec) << o->exec.error().message();
    ASSERT_TRUE(testing::exited_with(*o, 0)) << testing::exit_text(*o) << "\n" << o->out;
    result_ = new nlohmann::json(nlohmann::json::parse(o->out));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete listener_;
    delete dir_;
  }
  void SetUp() override {
    if (!testing::can_sandbox())
      GTEST_SKIP() << "no sandbox here: neither root nor user namespaces";
    ASSERT_NE(result_, nullptr) << "the probe did not run (see the first test's failure)";
  }
  static const nlohmann::json& facts() { return (*result_)["facts"]; }
  static void expect_blocked(const char* attempt, bool blocked = true) {
    const auto& a = (*result_)["attempts"][attempt];
    EXPECT_EQ(a["blocked"], blocked) << attempt << ": " << a.dump();
  }

  static TempDir* dir_;
  static UniqueFd* listener_;
  static nlohmann::json* result_;
};

TempDir* HostileProbe::dir_ = nullptr;
UniqueFd* HostileProbe::listener_ = nullptr;
nlohmann::json* HostileProbe::result_ = nullptr;

// As root the agent gets uid 61234; without root it is root of its own user
// namespace. Either way without a single capability.
TEST_F(HostileProbe, RunsUnprivilegedWithoutCapabilities) {
  if (testing::is_root()) {
    EXPECT_EQ(facts()["uid"], 61234);
    EXPECT_EQ(facts()["gid"], 61234);
    EXPECT_EQ(facts()["groups"], nlohmann::json::array());
  } else {
    EXPECT_EQ(facts()["uid"], 0);
  }
  EXPECT_EQ(facts()["cap_eff"], "0000000000000000");
  EXPECT_EQ(facts()["cap_bnd"], "0000000000000000");
  EXPECT_EQ(facts()["no_new_privs"], "1");
  EXPECT_EQ(facts()["seccomp"], "2");  // filter mode
  EXPECT_EQ(facts()["usr_nosuid"], true);
  EXPECT_EQ(facts()["hostname"], "hostile");
}

TEST_F(HostileProbe, SeesOnlyItsOwnProcessesAndFds) {
  EXPECT_EQ(facts()["pids"], nlohmann::json::array({1, facts()["pid"].get<int>()}));
  EXPECT_EQ(facts()["fds"], nlohmann::json::array({0, 1, 2}));
  expect_blocked("signal_host_process");
  // Root: another uid and no CAP_KILL. Rootless: same uid, but Landlock's
  // signal scope (ABI 6) keeps signals inside the agent's domain.
  auto abi = landlock_abi();
  expect_blocked(
      "signal_init",
      testing::is_root() || (abi && *abi >= 6));  // rootless: same uid (and it only forwards)
}

TEST_F(HostileProbe, SeesOnlyTheExposedFilesystem) {
  const auto& entries = facts()["root_entries"];
  for (const char* hidden :
       {"home", "root", "var", "run", "sys", "boot", "opt", "srv", "mnt", "media"}) {
    EXPECT_EQ(std::count(entries.begin(), entries.end(), hidden), 0)
        << hidden << " visible: " << entries.dump();
  }
  for (const char* shown : {"usr", "etc", "tmp", "proc", "dev"}) {
    EXPECT_EQ(std::count(entries.begin(), entries.end(), shown), 1)
        << shown << " missing: " << entries.dump();
  }
  expect_blocked("read_etc_shadow");
  expect_blocked("list_root_home");
  expect_blocked("list_home");
  expect_blocked("read_repo_file");
}

TEST_F(HostileProbe, WritesOnlyWhereAllowed) {
  expect_blocked("write_usr");
  expect_blocked("write_etc");
  expect_blocked("write_root");
  expect_blocked("write_proc_sys");
  expect_blocked("mknod_tmp");
  expect_blocked("write_tmp", false);
  expect_blocked("write_dev_null", false);
}

TEST_F(HostileProbe, NetworkIsClosedButTheAgentSocketWorks) {
  expect_blocked("tcp_connect");
  expect_blocked("tcp_bind");
  expect_blocked("unix_socket_connect", false);
}

TEST_F(HostileProbe, PrivilegedSyscallsAreDenied) {
  for (const char* a :
       {"sethostname", "chroot", "mount", "ptrace_traceme", "unshare_user", "clone_newns", "bpf",
        "keyctl", "perf_event_open", "userfaultfd", "io_uring_setup", "personality_no_aslr"}) {
    expect_blocked(a);
  }
  EXPECT_NE((*result_)["attempts"]["clone3"]["detail"].get<std::string>().find("ENOSYS"),
            std::string::npos);
  expect_blocked("personality_query", false);
  expect_blocked("fork_works", false);
}

}  // namespace
}  // namespace agentos::runtime

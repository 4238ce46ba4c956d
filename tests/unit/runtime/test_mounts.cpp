// The filesystem plan, against a fake host tree (FsSpec::host_root).
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "runtime/mounts.hpp"
#include "runtime/spawn_harness.hpp"

namespace agentos::runtime {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using Kind = MountStep::Kind;

class MountPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path r = host_.path;
    for (const char* d : {"usr/bin", "usr/lib", "usr/share/zoneinfo", "etc/ssl", "etc/python3.11",
                          "home/user", "root", "opt/py/bin", "run", "dev", "data/ws"}) {
      fs::create_directories(r / d);
    }
    fs::create_directory_symlink("usr/bin", r / "bin");
    fs::create_directory_symlink("usr/lib", r / "lib");
    for (const char* f : {"etc/passwd", "etc/shadow", "etc/ld.so.cache", "run/resolv.conf",
                          "usr/share/zoneinfo/UTC", "dev/null", "dev/zero", "data/file"}) {
      std::ofstream(r / f) << "x";
    }
    fs::create_symlink("/usr/share/zoneinfo/UTC", r / "etc/localtime");
    fs::create_symlink("../run/resolv.conf", r / "etc/resolv.conf");
    spec_.hostname = "agent";
    spec_.uid = 61234;
    spec_.gid = 61235;
    spec_.host_root = host_.path;
  }

  Result<MountPlan> plan() const { return plan_filesystem(spec_); }

  static const MountStep* find(const MountPlan& p, Kind kind, const std::string& dst) {
    auto it = std::find_if(p.steps.begin(), p.steps.end(), [&](const MountStep& s) {
      return s.kind == kind && s.dst == "/newroot" + dst;
    });
    return it == p.steps.end() ? nullptr : &*it;
  }
  static size_t index_of(const MountPlan& p, const MountStep* s) {
    return static_cast<size_t>(s - p.steps.data());
  }
  static bool mentions(const MountPlan& p, const std::string& text) {
    return std::any_of(p.steps.begin(), p.steps.end(), [&](const MountStep& s) {
      return s.src.find(text) != std::string::npos || s.dst.find(text) != std::string::npos;
    });
  }

  TempDir host_;
  FsSpec spec_;
};

TEST_F(MountPlanTest, SystemDirectoriesAreReadOnlyBindsOrSymlinks) {
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  const MountStep* usr = find(*p, Kind::kBind, "/usr");
  ASSERT_NE(usr, nullptr);
  EXPECT_EQ(usr->src, "/oldroot/usr");
  EXPECT_TRUE(usr->recursive);
  EXPECT_NE(usr->attr & MOUNT_ATTR_RDONLY, 0u);
  EXPECT_NE(usr->attr & MOUNT_ATTR_NOSUID, 0u);
  const MountStep* bin = find(*p, Kind::kSymlink, "/bin");
  ASSERT_NE(bin, nullptr);
  EXPECT_EQ(bin->data, "usr/bin");
  EXPECT_EQ(find(*p, Kind::kBind, "/sbin"), nullptr);  // absent on this host: skipped
}

TEST_F(MountPlanTest, HomesShadowAndTheRestOfTheHostStayHidden) {
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  for (const char* hidden : {"shadow", "/home", "/root", "/opt", "/data", "resolv.conf"}) {
    EXPECT_FALSE(mentions(*p, hidden)) << hidden;
  }
}

TEST_F(MountPlanTest, MinimalEtc) {
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  const MountStep* passwd = find(*p, Kind::kWrite, "/etc/passwd");
  ASSERT_NE(passwd, nullptr);
  EXPECT_NE(passwd->data.find("agent:x:61234:61235:"), std::string::npos) << passwd->data;
  EXPECT_NE(find(*p, Kind::kWrite, "/etc/hostname"), nullptr);
  EXPECT_EQ(find(*p, Kind::kWrite, "/etc/hostname")->data, "agent\n");
  const MountStep* localtime = find(*p, Kind::kSymlink, "/etc/localtime");
  ASSERT_NE(localtime, nullptr);
  EXPECT_EQ(localtime->data, "/usr/share/zoneinfo/UTC");
  EXPECT_NE(find(*p, Kind::kBind, "/etc/ld.so.cache"), nullptr);
  EXPECT_NE(find(*p, Kind::kBind, "/etc/python3.11"), nullptr);
  EXPECT_EQ(find(*p, Kind::kBind, "/etc/ssl"), nullptr);  // network only
}

TEST_F(MountPlanTest, NetworkAddsResolverAndCertificates) {
  spec_.network = true;
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  // /etc/resolv.conf points into /run, which is not exposed: bind the target.
  const MountStep* resolv = find(*p, Kind::kBind, "/etc/resolv.conf");
  ASSERT_NE(resolv, nullptr);
  EXPECT_EQ(resolv->src, "/oldroot/run/resolv.conf");
  EXPECT_NE(find(*p, Kind::kBind, "/etc/ssl"), nullptr);
  EXPECT_NE(find(*p, Kind::kWrite, "/etc/nsswitch.conf")->data.find("hosts: files dns"),
            std::string::npos);
}

TEST_F(MountPlanTest, RoPathsAreBoundOnceAndNeverOverTheSandbox) {
  spec_.ro_paths = {"/opt/py", "/opt/py/bin", "/usr/lib", "/lib"};
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_NE(find(*p, Kind::kBind, "/opt/py"), nullptr);
  EXPECT_EQ(find(*p, Kind::kBind, "/opt/py/bin"), nullptr);  // inside /opt/py
  EXPECT_EQ(find(*p, Kind::kBind, "/usr/lib"), nullptr);     // inside /usr
  EXPECT_EQ(find(*p, Kind::kBind, "/lib"), nullptr);         // a symlink into /usr
  for (const char* bad : {"/etc", "/", "/dev/null", "relative/path"}) {
    spec_.ro_paths = {bad};
    EXPECT_FALSE(plan()) << bad;
  }
  spec_.ro_paths = {"/opt/missing"};
  auto missing = plan();
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/opt/missing"), std::string::npos);
}

TEST_F(MountPlanTest, TmpProcDevAndTheirOrder) {
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  const MountStep* tmp = find(*p, Kind::kTmpfs, "/tmp");
  ASSERT_NE(tmp, nullptr);
  EXPECT_EQ(tmp->data, "mode=1777,size=67108864");
  EXPECT_NE(find(*p, Kind::kProc, "/proc"), nullptr);
  EXPECT_NE(find(*p, Kind::kBind, "/dev/null"), nullptr);
  EXPECT_EQ(find(*p, Kind::kBind, "/dev/tty"), nullptr);  // not on the fake host
  const MountStep* dev_ro = find(*p, Kind::kAttr, "/dev");
  const MountStep* shm = find(*p, Kind::kTmpfs, "/dev/shm");
  ASSERT_NE(dev_ro, nullptr);
  ASSERT_NE(shm, nullptr);
  EXPECT_LT(index_of(*p, shm), index_of(*p, dev_ro));  // /dev goes read-only last
}

TEST_F(MountPlanTest, WorkspaceMustBeADirectory) {
  spec_.workspace = "/data/ws";
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  const MountStep* ws = find(*p, Kind::kBind, "/workspace");
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->src, "/oldroot/data/ws");
  EXPECT_EQ(ws->attr & MOUNT_ATTR_RDONLY, 0u);
  spec_.workspace = "/data/file";
  EXPECT_FALSE(plan());
}

TEST_F(MountPlanTest, SocketIsBoundAfterTmp) {
  spec_.socket_host_path = "/run/agent.sock";
  spec_.socket_sandbox_path = "/tmp/agentos.sock";
  EXPECT_FALSE(plan()) << "not a socket yet";
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  (host_.path + "/run/agent.sock").copy(addr.sun_path, sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto p = plan();
  ASSERT_TRUE(p) << p.error().message();
  const MountStep* sock = find(*p, Kind::kBind, "/tmp/agentos.sock");
  ASSERT_NE(sock, nullptr);
  EXPECT_EQ(sock->src, "/oldroot/run/agent.sock");
  EXPECT_GT(index_of(*p, sock), index_of(*p, find(*p, Kind::kTmpfs, "/tmp")));
  EXPECT_NE(find(*p, Kind::kFile, "/tmp/agentos.sock"), nullptr);
}

}  // namespace
}  // namespace agentos::runtime

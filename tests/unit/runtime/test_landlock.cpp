// Landlock: the plan per ABI, and the rules enforced in a forked child.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "runtime/landlock.hpp"
#include "runtime/spawn_harness.hpp"

namespace agentos::runtime {
namespace {

using testing::TempDir;

constexpr uint64_t kReadDir = 1ULL << 3, kWriteFile = 1ULL << 1, kRefer = 1ULL << 13;

const LandlockRule* rule_for(const LandlockPlan& plan, const std::string& path) {
  auto it = std::find_if(plan.rules.begin(), plan.rules.end(),
                         [&](const auto& r) { return r.path == path; });
  return it == plan.rules.end() ? nullptr : &*it;
}

TEST(LandlockPlan, UsesOnlyTheRightsOfTheAbi) {
  std::vector<Exposure> exposures = {{"/usr", Access::kReadOnly}, {"/tmp", Access::kReadWrite}};
  LandlockPlan v1 = plan_landlock(1, exposures, false);
  EXPECT_EQ(v1.handled_fs & kRefer, 0u);
  EXPECT_EQ(v1.handled_net, 0u);
  EXPECT_EQ(v1.scoped, 0u);
  LandlockPlan v7 = plan_landlock(7, exposures, false);
  EXPECT_NE(v7.handled_fs & kRefer, 0u);
  EXPECT_EQ(v7.handled_net, 3u);  // TCP bind + connect, no rule: denied
  EXPECT_EQ(v7.scoped, 3u);       // abstract unix sockets + signals
  EXPECT_EQ(plan_landlock(7, exposures, true).handled_net, 0u);
}

TEST(LandlockPlan, ReadOnlyPathsGetNoWriteRights) {
  LandlockPlan plan =
      plan_landlock(7, {{"/usr", Access::kReadOnly}, {"/tmp", Access::kReadWrite}}, false);
  ASSERT_NE(rule_for(plan, "/usr"), nullptr);
  EXPECT_EQ(rule_for(plan, "/usr")->access & kWriteFile, 0u);
  EXPECT_EQ(rule_for(plan, "/tmp")->access, plan.handled_fs);
  EXPECT_EQ(rule_for(plan, "/")->access, kReadDir);
}

// Applies `plan` in a child and runs `probe` there; returns its exit code.
int under_landlock(const LandlockPlan& plan, const std::function<int()>& probe) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ChildError err;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || !apply_landlock(plan, err)) _exit(100);
    _exit(probe());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

int open_errno(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

class LandlockEnforced : public ::testing::Test {
 protected:
  void SetUp() override {
    auto abi = landlock_abi();
    if (!abi) GTEST_SKIP() << abi.error().message();
    abi_ = *abi;
    std::filesystem::create_directories(dir_.path + "/ro");
    std::filesystem::create_directories(dir_.path + "/rw");
    std::ofstream(dir_.path + "/ro/file") << "data";
    std::ofstream(dir_.path + "/secret") << "secret";
  }
  LandlockPlan plan(bool network = false) const {
    return plan_landlock(
        abi_, {{dir_.path + "/ro", Access::kReadOnly}, {dir_.path + "/rw", Access::kReadWrite}},
        network);
  }
  TempDir dir_;
  int abi_ = 0;
};

TEST_F(LandlockEnforced, ReadOnlyReadWriteAndHidden) {
  std::string d = dir_.path;
  EXPECT_EQ(under_landlock(plan(), [&] { return open_errno(d + "/ro/file", O_RDONLY); }), 0);
  EXPECT_EQ(under_landlock(plan(), [&] { return open_errno(d + "/ro/file", O_WRONLY); }), EACCES);
  EXPECT_EQ(under_landlock(plan(), [&] { return open_errno(d + "/ro/new", O_WRONLY | O_CREAT); }),
            EACCES);
  EXPECT_EQ(under_landlock(plan(), [&] { return open_errno(d + "/rw/new", O_WRONLY | O_CREAT); }),
            0);
  EXPECT_EQ(under_landlock(plan(), [&] { return open_errno(d + "/secret", O_RDONLY); }), EACCES);
}

TEST_F(LandlockEnforced, TcpIsDeniedWithoutNetwork) {
  if (abi_ < 4) GTEST_SKIP() << "TCP rules need Landlock ABI 4, this kernel has " << abi_;
  auto bind_errno = [] {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    int rc = ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    return rc < 0 ? errno : 0;
  };
  EXPECT_EQ(under_landlock(plan(false), bind_errno), EACCES);
  EXPECT_EQ(under_landlock(plan(true), bind_errno), 0);
}

}  // namespace
}  // namespace agentos::runtime

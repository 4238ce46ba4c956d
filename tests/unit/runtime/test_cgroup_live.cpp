// Against the real cgroup hierarchy: root only. The instance subtree goes
// under the test process's own cgroup(s), as the kernel's default does, and
// must be gone afterwards. Skips (with the reason) when not root or when a
// needed controller is missing.
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "runtime/cgroup.hpp"

namespace agentos::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
constexpr uint64_t kMiB = 1024 * 1024;

/// A forked child that waits for a byte on a pipe before running `body`,
/// so the parent can attach() it first. Killed and reaped on destruction.
class Child {
 public:
  template <class F>
  explicit Child(F body) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[1]);
      char c;
      if (::read(p[0], &c, 1) != 1) ::_exit(120);
      body();
      ::_exit(0);
    }
    ::close(p[0]);
    go_ = p[1];
  }
  ~Child() {
    if (go_ >= 0) ::close(go_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  /// Lets the child run `body`.
  void release() {
    if (::write(go_, "g", 1) != 1) ADD_FAILURE() << "pipe write";
    ::close(go_);
    go_ = -1;
  }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool reaped_ = false;
};

/// Polls `pred` every 10 ms until it holds or `limit` passes.
template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

class CgroupLiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
    CgroupOptions opts;
    opts.instance = "agentos-test-" + std::to_string(::getpid());
    auto b = open_cgroups(opts);
    if (!b) GTEST_SKIP() << "no usable cgroup hierarchy: " << b.error().message();
    backend_ = std::move(*b);
    auto missing = backend_->describe()["controllers"]["missing"];
    for (auto c : {"memory", "cpu", "pids"})
      if (missing.contains(c)) GTEST_SKIP() << c << " controller missing: " << missing[c];
    made_ = backend_->describe()["instance_paths"].get<std::vector<std::string>>();
  }
  void TearDown() override {
    backend_.reset();
    for (const auto& p : made_) EXPECT_FALSE(fs::exists(p)) << p << " left behind";
  }
  std::unique_ptr<AgentCgroup> create(const char* leaf, const CgroupLimits& lim) {
    auto cg = backend_->create(leaf, lim);
    EXPECT_TRUE(cg) << cg.error().message();
    if (cg) made_.push_back((*cg)->path());
    return cg ? std::move(*cg) : nullptr;
  }

  std::unique_ptr<CgroupBackend> backend_;
  std::vector<std::string> made_;
};

TEST_F(CgroupLiveTest, MemoryLimitOomKillsTheChild) {
  auto cg = create("oom", CgroupLimits{.memory_bytes = 32 * kMiB, .cpu_quota_us = 50000});
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->enforced()["memory"], 32 * kMiB);
  Child child([] {
    size_t len = 100 * kMiB;
    auto* p = static_cast<char*>(::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (p == MAP_FAILED) ::_exit(121);
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
    ::_exit(0);  // not reached under a 32 MiB limit
  });
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(cg->attach(child.pid()));
  child.release();
  int status = child.wait();
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto s = cg->stats();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_GE(s->oom_kills, 1u);
  EXPECT_EQ(s->memory_limit, 32 * kMiB);
  EXPECT_LE(s->memory_peak, 32 * kMiB);
  std::cout << "[ live ] oom: oom_kills=" << s->oom_kills << " peak=" << s->memory_peak
            << " limit_hits=" << s->memory_max_hits << " backend=" << backend_->version() << "\n";
}

TEST_F(CgroupLiveTest, CpuQuotaThrottlesABusyChild) {
  auto cg = create("busy", CgroupLimits{.cpu_quota_us = 10000, .cpu_period_us = 100000});
  ASSERT_TRUE(cg);
  Child child([] {
    volatile uint64_t spin = 0;
    for (;;) spin = spin + 1;
  });
  ASSERT_TRUE(cg->attach(child.pid()));
  child.release();
  CgroupStats last;
  bool throttled = eventually([&] {
    auto s = cg->stats();
    if (s) last = *s;
    return s && s->nr_throttled > 0;
  });
  EXPECT_TRUE(throttled) << "nr_throttled stayed 0";
  EXPECT_GT(last.cpu_usage_us, 0u);
  std::cout << "[ live ] cpu: nr_throttled=" << last.nr_throttled << " throttled_us=" << last.throttled_us
            << " usage_us=" << last.cpu_usage_us << "\n";
  ASSERT_TRUE(cg->kill_all());
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST_F(CgroupLiveTest, KillAllKillsAForkingTree) {
  auto cg = create("tree", CgroupLimits{.max_pids = 64});
  ASSERT_TRUE(cg);
  EXPECT_EQ(cg->enforced()["max_pids"], 64);
  // 1 + 3 + 9 processes, every one sleeping forever; the leaves keep trying
  // to fork so the tree is still changing when it is killed.
  Child child([] {
    for (int depth = 0; depth < 2; ++depth) {
      for (int i = 0; i < 3; ++i) {
        if (::fork() == 0) goto next_level;
      }
      for (;;) ::pause();
    next_level:;
    }
    for (;;) {
      pid_t p = ::fork();
      if (p == 0) ::_exit(0);
      if (p > 0) ::waitpid(p, nullptr, 0);
    }
  });
  ASSERT_TRUE(cg->attach(child.pid()));
  child.release();
  ASSERT_TRUE(eventually([&] {
    auto s = cg->stats();
    return s && s->pids_current >= 13;
  })) << "tree never reached 13 processes";
  ASSERT_TRUE(cg->kill_all());
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_TRUE(eventually([&] {
    auto s = cg->stats();
    return s && !s->populated;
  })) << "processes survived kill_all";
}

TEST_F(CgroupLiveTest, DestructorKillsWhatIsLeftAndRemovesTheCgroup) {
  auto cg = create("leftover", CgroupLimits{.memory_bytes = 64 * kMiB});
  ASSERT_TRUE(cg);
  Child child([] {
    for (;;) ::pause();
  });
  ASSERT_TRUE(cg->attach(child.pid()));
  child.release();
  std::string dir = cg->path();
  cg.reset();
  EXPECT_FALSE(fs::exists(dir));
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// The v2 paths (cgroup.kill, cgroup.freeze, CLONE_INTO_CGROUP, nesting) on
// a real cgroup2 mount: the unified hierarchy of a hybrid machine (no
// controllers there, so limits are reported not enforced) or the root of a
// v2 machine.
pid_t clone_into(int cgroup_fd) {
  clone_args args{};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) {
    for (;;) ::pause();
  }
  return static_cast<pid_t>(pid);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(CgroupLiveV2, CloneIntoCgroupNestFreezeAndKill) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  CgroupOptions opts;
  opts.instance = "agentos-test-" + std::to_string(::getpid()) + "-v2";
  if (!CgroupFs().is_cgroup2_mount(opts.root)) opts.root = "/sys/fs/cgroup/unified";
  if (!CgroupFs().is_cgroup2_mount(opts.root)) GTEST_SKIP() << "no cgroup2 mount";
  auto b = open_cgroups(opts);
  ASSERT_TRUE(b) << b.error().message();
  std::string inst = (*b)->describe()["instance"];
  auto parent = (*b)->create("a", CgroupLimits{.memory_bytes = 64 * kMiB});
  ASSERT_TRUE(parent) << parent.error().message();
  auto child = (*b)->create("b", CgroupLimits{.memory_bytes = 32 * kMiB}, parent->get());
  ASSERT_TRUE(child) << child.error().message();
  EXPECT_EQ((*child)->path(), inst + "/a/b");
  EXPECT_EQ((*child)->enforced()["nested_in"], inst + "/a");

  const pid_t p1 = clone_into(*(*parent)->clone_into_fd());
  ASSERT_GT(p1, 0) << std::strerror(errno);
  const pid_t p2 = clone_into(*(*child)->clone_into_fd());
  ASSERT_GT(p2, 0) << std::strerror(errno);
  const std::string rel = inst.substr(opts.root.size());
  EXPECT_NE(read_all("/proc/" + std::to_string(p1) + "/cgroup").find("0::" + rel + "/a/self\n"), std::string::npos);
  EXPECT_NE(read_all("/proc/" + std::to_string(p2) + "/cgroup").find("0::" + rel + "/a/b/self\n"), std::string::npos);

  // Freezing the parent freezes the agent nested in it.
  ASSERT_TRUE((*parent)->freeze(true));
  EXPECT_TRUE(eventually([&] { return read_all(inst + "/a/b/cgroup.events").find("frozen 1") != std::string::npos; }));
  // Killing the parent kills both.
  ASSERT_TRUE((*parent)->kill_all());
  for (pid_t pid : {p1, p2}) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }
  // The parent goes first, taking the nested directory along; the child's
  // own cleanup then finds nothing left to do.
  parent->reset();
  EXPECT_FALSE(fs::exists(inst + "/a"));
  child->reset();
  b->reset();
  EXPECT_FALSE(fs::exists(inst));
}

}  // namespace
}  // namespace agentos::runtime

// cgroup v2 backend against a fake cgroupfs: a plain directory tree plus a
// CgroupFs subclass that does what the kernel would (populate control files
// on mkdir, move pids between cgroup.procs files, refuse subtree_control
// with member processes and members where subtree_control is set, rmdir
// with control files inside).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "runtime/cgroup.hpp"
#include "runtime/fake_cgroupfs.hpp"

namespace agentos::runtime {
namespace {

namespace fs = std::filesystem;
using cgroup_util::split_words;

using fake::put;
using fake::slurp;

/// A cgroup2 "kernel" over a temp directory. Records writes and signals in
/// one log so tests can check their order.
class FakeV2Fs : public CgroupFs {
 public:
  explicit FakeV2Fs(fs::path root) : root_(std::move(root)) {}

  bool has_kill = true;       // cgroup.kill (5.14+)
  bool has_peak = true;       // memory.peak (5.19+)
  bool swap_accounting = true;
  std::map<std::string, int> fail_write;  // file name -> errno
  int rmdir_busy = 0;                     // next N rmdirs answer EBUSY
  std::vector<std::string> log;           // "write <file> <value>", "kill <pid> <sig>"
  std::vector<std::chrono::milliseconds> pauses;

  Result<void> make_dir(const std::string& path) override {
    AOS_TRY_VOID(CgroupFs::make_dir(path));
    populate(path);
    return {};
  }
  Result<void> remove_dir(const std::string& path) override {
    if (rmdir_busy > 0 && rmdir_busy--) return make_error("rmdir " + path, EBUSY);
    return fake::remove_cgroup_dir(*this, path);
  }
  Result<void> write(const std::string& path, std::string_view value) override {
    std::string name = fs::path(path).filename();
    log.push_back("write " + name + " " + std::string(value));
    if (auto it = fail_write.find(name); it != fail_write.end()) return make_error("write " + path, it->second);
    if (!fs::exists(path)) return make_error("open " + path, ENOENT);
    if (name == "cgroup.procs") return move_pid(path, std::string(value));
    if (name == "cgroup.subtree_control") return subtree_control(path, value);
    return CgroupFs::write(path, value);
  }
  int send_signal(pid_t pid, int sig) override {
    log.push_back("kill " + std::to_string(pid) + " " + std::to_string(sig));
    remove_pid_everywhere(std::to_string(pid));  // it dies
    return 0;
  }
  void pause(std::chrono::milliseconds d) override { pauses.push_back(d); }

 private:
  void populate(const fs::path& dir) {
    std::string controllers = slurp(dir.parent_path() / "cgroup.subtree_control");
    put(dir / "cgroup.procs", "");
    put(dir / "cgroup.controllers", controllers);
    put(dir / "cgroup.subtree_control", "");
    put(dir / "cgroup.events", "populated 0\nfrozen 0\n");
    put(dir / "cgroup.freeze", "0");
    if (has_kill) put(dir / "cgroup.kill", "");
    put(dir / "cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n");
    for (const auto& c : split_words(controllers)) {
      if (c == "memory") {
        for (auto f : {"memory.current", "memory.oom.group"}) put(dir / f, "0\n");
        put(dir / "memory.max", "max\n");
        if (has_peak) put(dir / "memory.peak", "0\n");
        if (swap_accounting) put(dir / "memory.swap.max", "max\n");
        put(dir / "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
      } else if (c == "cpu") {
        put(dir / "cpu.max", "max 100000\n");
      } else if (c == "pids") {
        put(dir / "pids.max", "max\n");
        put(dir / "pids.current", "0\n");
      }
    }
  }
  void remove_pid_everywhere(const std::string& pid) {
    for (const auto& e : fs::recursive_directory_iterator(root_)) {
      if (e.path().filename() != "cgroup.procs") continue;
      std::string out;
      for (const auto& p : split_words(slurp(e.path())))
        if (p != pid) out += p + "\n";
      put(e.path(), out);
    }
  }
  Result<void> move_pid(const std::string& path, const std::string& pid) {
    // "No internal processes": a cgroup that enables controllers for its
    // children takes no process (the root excepted).
    fs::path dir = fs::path(path).parent_path();
    if (dir != root_ && !slurp(dir / "cgroup.subtree_control").empty()) return make_error("write " + path, EBUSY);
    remove_pid_everywhere(pid);
    put(path, slurp(path) + pid + "\n");
    return {};
  }
  Result<void> subtree_control(const std::string& path, std::string_view value) {
    fs::path dir = fs::path(path).parent_path();
    if (dir != root_ && !split_words(slurp(dir / "cgroup.procs")).empty()) return make_error("write " + path, EBUSY);
    auto words = split_words(slurp(path));
    std::set<std::string> on(words.begin(), words.end());
    for (const auto& tok : split_words(value)) {
      if (tok[0] == '+') on.insert(tok.substr(1));
      if (tok[0] == '-') on.erase(tok.substr(1));
    }
    std::string out;
    for (const auto& c : on) out += (out.empty() ? "" : " ") + c;
    put(path, out);
    return {};
  }
  fs::path root_;
};

class CgroupV2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agentos-cgv2-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fake_ = std::make_shared<FakeV2Fs>(root_);
    put(root_ / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    put(root_ / "cgroup.subtree_control", "cpu memory pids\n");
    put(root_ / "cgroup.procs", "1\n");
    ASSERT_TRUE(fake_->make_dir((root_ / "svc").string()));  // the kernel's own cgroup
    put(root_ / "self-cgroup", "0::/svc\n");
    opts_.root = root_.string();
    opts_.proc_self_cgroup = (root_ / "self-cgroup").string();
    opts_.instance = "agentos-test";
    opts_.fs = fake_;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<CgroupBackend> open() {
    auto b = open_cgroups(opts_);
    EXPECT_TRUE(b) << b.error().message();
    return b ? std::move(*b) : nullptr;
  }
  fs::path inst() const { return root_ / "svc" / "agentos-test"; }

  fs::path root_;
  std::shared_ptr<FakeV2Fs> fake_;
  CgroupOptions opts_;
};

TEST_F(CgroupV2Test, DetectsUnifiedLayoutAndDelegatesFromEmptyParent) {
  auto b = open();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->version(), "v2");
  auto d = b->describe();
  EXPECT_EQ(d["parent"], (root_ / "svc").string());
  EXPECT_EQ(d["instance"], inst().string());
  EXPECT_EQ(d["controllers"]["available"], nlohmann::json({"cpu", "memory", "pids"}));
  EXPECT_TRUE(d["controllers"]["missing"].empty());
  EXPECT_EQ(d["delegation"]["enabled_in_parent"], nlohmann::json({"cpu", "memory", "pids"}));
  EXPECT_TRUE(d["delegation"]["kernel_moved_to"].is_null());
  EXPECT_EQ(slurp(root_ / "svc" / "cgroup.subtree_control"), "cpu memory pids");
  EXPECT_EQ(slurp(inst() / "cgroup.subtree_control"), "cpu memory pids");
}

TEST_F(CgroupV2Test, WritesLimitsWithExactValues) {
  auto b = open();
  ASSERT_TRUE(b);
  CgroupLimits lim{.memory_bytes = 52428800, .max_pids = 64, .cpu_quota_us = 10000};
  auto cg = b->create("agent-7", lim);
  ASSERT_TRUE(cg) << cg.error().message();
  fs::path leaf = inst() / "agent-7";
  EXPECT_EQ((*cg)->path(), leaf.string());
  EXPECT_EQ(slurp(leaf / "memory.max"), "52428800");
  EXPECT_EQ(slurp(leaf / "memory.swap.max"), "0");
  EXPECT_EQ(slurp(leaf / "memory.oom.group"), "1");
  EXPECT_EQ(slurp(leaf / "cpu.max"), "10000 100000");
  EXPECT_EQ(slurp(leaf / "pids.max"), "64");
  nlohmann::json want = {{"backend", "v2"},      {"memory", 52428800},    {"swap", 0},
                         {"oom_group", true},    {"cpu_quota_us", 10000}, {"cpu_period_us", 100000},
                         {"max_pids", 64}};
  EXPECT_EQ((*cg)->enforced(), want);
}

TEST_F(CgroupV2Test, AbsentLimitsAreNotWritten) {
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  EXPECT_EQ(slurp(inst() / "a" / "memory.max"), "max\n");
  EXPECT_EQ(slurp(inst() / "a" / "cpu.max"), "max 100000\n");
  EXPECT_FALSE((*cg)->enforced().contains("memory"));
  EXPECT_FALSE((*cg)->enforced().contains("not_enforced"));
}

TEST_F(CgroupV2Test, ParsesStatsFromRealFormatFiles) {
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 33554432});
  ASSERT_TRUE(cg);
  fs::path leaf = inst() / "a";
  // Captured from a 6.x kernel.
  put(leaf / "memory.current", "1249280\n");
  put(leaf / "memory.peak", "33554432\n");
  // The agent's memory.events counts kills in agents it spawned too; its
  // own are those of "self".
  put(leaf / "memory.events", "low 0\nhigh 0\nmax 1714\noom 3\noom_kill 5\noom_group_kill 1\n");
  put(leaf / "self" / "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 2\noom_group_kill 0\n");
  put(leaf / "cpu.stat",
      "usage_usec 1532807\nuser_usec 1502113\nsystem_usec 30694\nnr_periods 152\nnr_throttled 149\n"
      "throttled_usec 13523480\nnr_bursts 0\nburst_usec 0\n");
  put(leaf / "pids.current", "3\n");
  put(leaf / "cgroup.events", "populated 1\nfrozen 0\n");
  auto s = (*cg)->stats();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->memory_current, 1249280u);
  EXPECT_EQ(s->memory_peak, 33554432u);
  EXPECT_FALSE(s->memory_peak_sampled);
  EXPECT_EQ(s->memory_limit, 33554432u);
  EXPECT_EQ(s->oom_kills, 2u);
  EXPECT_EQ(s->memory_max_hits, 1714u);
  EXPECT_EQ(s->cpu_usage_us, 1532807u);
  EXPECT_EQ(s->nr_throttled, 149u);
  EXPECT_EQ(s->throttled_us, 13523480u);
  EXPECT_EQ(s->pids_current, 3u);
  EXPECT_TRUE(s->populated);
  put(leaf / "cgroup.events", "populated 0\nfrozen 0\n");
  put(leaf / "memory.max", "max\n");
  s = (*cg)->stats();
  EXPECT_FALSE(s->populated);
  EXPECT_EQ(s->memory_limit, 0u);
}

TEST_F(CgroupV2Test, UsageReadsOnlyWhatTheSamplerNeeds) {
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 33554432});
  ASSERT_TRUE(cg);
  fs::path leaf = inst() / "a";
  put(leaf / "memory.current", "1249280\n");
  put(leaf / "memory.peak", "2000000\n");
  put(leaf / "self" / "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\n");
  put(leaf / "cpu.stat", "usage_usec 700\nuser_usec 600\nsystem_usec 100\nnr_periods 3\nnr_throttled 2\n"
                         "throttled_usec 450\n");
  put(leaf / "pids.current", "5\n");
  // The files usage() skips are made unreadable: it must not need them.
  fs::remove(leaf / "cgroup.events");
  fs::remove(leaf / "memory.max");
  auto s = (*cg)->usage();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->memory_current, 1249280u);
  EXPECT_EQ(s->memory_peak, 2000000u);
  EXPECT_EQ(s->oom_kills, 1u);
  EXPECT_EQ(s->cpu_usage_us, 700u);
  EXPECT_EQ(s->nr_throttled, 2u);
  EXPECT_EQ(s->throttled_us, 450u);
  EXPECT_EQ(s->pids_current, 5u);
  EXPECT_EQ(s->memory_limit, 0u);  // not read
  // A cgroup that is gone is an error, not a sample of zeros.
  fs::remove(leaf / "cpu.stat");
  EXPECT_FALSE((*cg)->usage().has_value());
}

TEST_F(CgroupV2Test, WithoutMemoryPeakTracksTheLargestSample) {
  fake_->has_peak = false;
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  put(inst() / "a" / "memory.current", "4096\n");
  EXPECT_EQ((*cg)->stats()->memory_peak, 4096u);
  put(inst() / "a" / "memory.current", "1024\n");
  auto s = (*cg)->stats();
  EXPECT_EQ(s->memory_current, 1024u);
  EXPECT_EQ(s->memory_peak, 4096u);
  EXPECT_TRUE(s->memory_peak_sampled);
}

TEST_F(CgroupV2Test, MissingControllerIsReportedNotFatal) {
  put(root_ / "svc" / "cgroup.controllers", "cpu memory\n");  // pids not delegated from above
  auto b = open();
  ASSERT_TRUE(b);
  auto d = b->describe();
  ASSERT_TRUE(d["controllers"]["missing"].contains("pids"));
  EXPECT_NE(d["controllers"]["missing"]["pids"].get<std::string>().find("cgroup.controllers"), std::string::npos);
  auto cg = b->create("a", CgroupLimits{.max_pids = 10});
  ASSERT_TRUE(cg) << cg.error().message();
  auto e = (*cg)->enforced();
  EXPECT_FALSE(e.contains("max_pids"));
  ASSERT_TRUE(e["not_enforced"].contains("max_pids"));
  EXPECT_FALSE(fs::exists(inst() / "a" / "pids.max"));
}

TEST_F(CgroupV2Test, MissingSwapAccountingIsReported) {
  fake_->swap_accounting = false;
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216});
  ASSERT_TRUE(cg);
  EXPECT_EQ((*cg)->enforced()["memory"], 16777216);
  EXPECT_FALSE((*cg)->enforced().contains("swap"));
  EXPECT_NE((*cg)->enforced()["not_enforced"]["swap"].get<std::string>().find("swapaccount"), std::string::npos);
}

TEST_F(CgroupV2Test, MovesTheKernelOutOfItsCgroupAndBackWhenAlone) {
  put(root_ / "svc" / "cgroup.procs", std::to_string(::getpid()) + "\n");
  auto b = open();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->describe()["delegation"]["kernel_moved_to"], (inst() / "kernel").string());
  EXPECT_EQ(slurp(inst() / "kernel" / "cgroup.procs"), std::to_string(::getpid()) + "\n");
  EXPECT_EQ(slurp(root_ / "svc" / "cgroup.procs"), "");
  EXPECT_EQ(slurp(inst() / "cgroup.subtree_control"), "cpu memory pids");
  {
    auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216});
    ASSERT_TRUE(cg);
    EXPECT_EQ((*cg)->enforced()["memory"], 16777216);
    EXPECT_FALSE(b->create("kernel", CgroupLimits{}));  // reserved
  }
  b.reset();
  EXPECT_EQ(slurp(root_ / "svc" / "cgroup.procs"), std::to_string(::getpid()) + "\n");
  EXPECT_EQ(slurp(root_ / "svc" / "cgroup.subtree_control"), "");
  EXPECT_FALSE(fs::exists(inst()));
}

TEST_F(CgroupV2Test, ParentWithOtherProcessesTellsTheOperatorWhatToDo) {
  std::string procs = "4242\n" + std::to_string(::getpid()) + "\n";
  put(root_ / "svc" / "cgroup.procs", procs);
  auto b = open();
  ASSERT_TRUE(b);
  EXPECT_EQ(slurp(root_ / "svc" / "cgroup.procs"), procs);  // nobody moved
  auto why = b->describe()["controllers"]["missing"]["memory"].get<std::string>();
  EXPECT_NE(why.find("--cgroup-parent"), std::string::npos) << why;
  EXPECT_NE(why.find("Delegate=yes"), std::string::npos) << why;
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216});
  ASSERT_TRUE(cg);
  EXPECT_EQ((*cg)->enforced()["not_enforced"]["memory"], why);
}

TEST_F(CgroupV2Test, RejectedWriteNamesFileErrnoAndHintAndCleansUp) {
  fake_->fail_write["cpu.max"] = EINVAL;
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216, .cpu_quota_us = 500});
  ASSERT_FALSE(cg);
  std::string msg = cg.error().message();
  EXPECT_EQ(cg.error().code, EINVAL);
  EXPECT_NE(msg.find((inst() / "a" / "cpu.max").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Invalid argument"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quota"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(inst() / "a"));
}

TEST_F(CgroupV2Test, AttachCloneFdFreezeAndKill) {
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  fs::path leaf = inst() / "a";
  // The agent's processes go to "self": <leaf> enables the controllers for
  // its children, so it may hold none itself.
  EXPECT_EQ(slurp(leaf / "cgroup.subtree_control"), "cpu memory pids");
  ASSERT_TRUE((*cg)->attach(7001));
  EXPECT_EQ(slurp(leaf / "self" / "cgroup.procs"), "7001\n");
  EXPECT_EQ(slurp(leaf / "cgroup.procs"), "");
  auto fd = (*cg)->clone_into_fd();
  ASSERT_TRUE(fd);
  struct stat a {}, c {};
  ASSERT_EQ(::fstat(*fd, &a), 0);
  ASSERT_EQ(::stat((leaf / "self").c_str(), &c), 0);
  EXPECT_EQ(a.st_ino, c.st_ino);
  ASSERT_TRUE((*cg)->freeze(true));
  EXPECT_EQ(slurp(leaf / "cgroup.freeze"), "1");
  ASSERT_TRUE((*cg)->kill_all());
  EXPECT_EQ(fake_->log.back(), "write cgroup.kill 1");
  EXPECT_EQ(std::count_if(fake_->log.begin(), fake_->log.end(), [](auto& l) { return l.starts_with("kill"); }), 0);
}

// An agent spawned by an agent: <parent>/<child>, with the child's
// processes in <parent>/<child>/self; the parent's limits bound both.
TEST_F(CgroupV2Test, NestedAgentLivesInsideItsParent) {
  fake_->has_kill = false;  // so the kill shows which processes it reached
  auto b = open();
  auto parent = b->create("agent-1", CgroupLimits{.memory_bytes = 16777216});
  ASSERT_TRUE(parent);
  auto child = b->create("agent-2", CgroupLimits{.memory_bytes = 8388608}, parent->get());
  ASSERT_TRUE(child) << child.error().message();
  fs::path p = inst() / "agent-1", c = p / "agent-2";
  EXPECT_EQ((*child)->path(), c.string());
  EXPECT_EQ((*child)->enforced()["nested_in"], p.string());
  EXPECT_EQ(slurp(c / "memory.max"), "8388608");
  EXPECT_EQ(slurp(c / "cgroup.subtree_control"), "cpu memory pids");
  EXPECT_FALSE(fs::exists(inst() / "agent-2"));
  ASSERT_TRUE((*parent)->attach(7001));
  ASSERT_TRUE((*child)->attach(7002));
  EXPECT_EQ(slurp(p / "self" / "cgroup.procs"), "7001\n");
  EXPECT_EQ(slurp(c / "self" / "cgroup.procs"), "7002\n");

  // OOM kills are the agent's own: one in the child shows in the parent's
  // memory.events (hierarchical), not in its "self".
  put(c / "self" / "memory.events", "low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\noom_group_kill 0\n");
  put(p / "memory.events", "low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\noom_group_kill 0\n");
  EXPECT_EQ((*parent)->usage()->oom_kills, 0u);
  EXPECT_EQ((*child)->usage()->oom_kills, 1u);

  put(p / "cgroup.events", "populated 1\nfrozen 1\n");
  fake_->log.clear();
  ASSERT_TRUE((*parent)->kill_all());
  ASSERT_EQ(fake_->log.size(), 4u);
  std::sort(fake_->log.begin() + 1, fake_->log.end() - 1);  // directory order is the filesystem's
  std::vector<std::string> want = {"write cgroup.freeze 1", "kill 7001 9", "kill 7002 9", "write cgroup.freeze 0"};
  EXPECT_EQ(fake_->log, want);

  parent->reset();
  EXPECT_FALSE(fs::exists(p));
  child->reset();  // finds nothing left
  EXPECT_EQ(*b->remove_stale(), 0u);
}

TEST_F(CgroupV2Test, KillWithoutCgroupKillFreezesSignalsThaws) {
  fake_->has_kill = false;
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  ASSERT_TRUE((*cg)->attach(7001));
  ASSERT_TRUE((*cg)->attach(7002));
  put(inst() / "a" / "cgroup.events", "populated 1\nfrozen 1\n");
  fake_->log.clear();
  ASSERT_TRUE((*cg)->kill_all());
  std::vector<std::string> want = {"write cgroup.freeze 1", "kill 7001 9", "kill 7002 9", "write cgroup.freeze 0"};
  EXPECT_EQ(fake_->log, want);
}

TEST_F(CgroupV2Test, DestructorKillsLeftoversAndRemovesDirectories) {
  auto b = open();
  {
    auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216});
    ASSERT_TRUE(cg);
    ASSERT_TRUE((*cg)->attach(7001));
    put(inst() / "a" / "cgroup.events", "populated 1\nfrozen 0\n");
  }
  EXPECT_FALSE(fs::exists(inst() / "a"));
  EXPECT_NE(std::find(fake_->log.begin(), fake_->log.end(), "write cgroup.kill 1"), fake_->log.end());
  b.reset();
  EXPECT_FALSE(fs::exists(inst()));
  EXPECT_TRUE(fs::exists(root_ / "svc"));  // not ours
  EXPECT_EQ(slurp(root_ / "svc" / "cgroup.subtree_control"), "");  // restored
}

TEST_F(CgroupV2Test, RmdirIsRetriedBrieflyOnEbusy) {
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  fake_->rmdir_busy = 3;
  cg->reset();
  EXPECT_FALSE(fs::exists(inst() / "a"));
  std::vector<std::chrono::milliseconds> want = {std::chrono::milliseconds(1), std::chrono::milliseconds(2),
                                                 std::chrono::milliseconds(4)};
  EXPECT_EQ(fake_->pauses, want);
}

TEST_F(CgroupV2Test, RmdirGivesUpAfterAShortBoundedWait) {
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  fake_->rmdir_busy = 1000;
  cg->reset();
  EXPECT_TRUE(fs::exists(inst() / "a"));
  std::chrono::milliseconds total{0};
  for (auto p : fake_->pauses) total += p;
  EXPECT_LE(total.count(), 100);
  fake_->rmdir_busy = 0;
  auto removed = b->remove_stale();  // the backend retries what an agent could not remove
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, 1u);
  EXPECT_FALSE(fs::exists(inst() / "a"));
}

TEST_F(CgroupV2Test, RemoveStaleKillsAndRemovesLeftoversOfACrashedRun) {
  ASSERT_TRUE(fake_->make_dir(inst().string()));  // a crashed run's subtree
  put(inst() / "cgroup.subtree_control", "cpu memory pids");
  ASSERT_TRUE(fake_->make_dir((inst() / "agent-3").string()));
  ASSERT_TRUE(fake_->make_dir((inst() / "agent-3" / "nested").string()));
  put(inst() / "agent-3" / "cgroup.procs", "8001\n");
  put(inst() / "agent-3" / "nested" / "cgroup.procs", "8002\n");
  auto b = open();
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->describe()["adopted_existing"]);
  auto live = b->create("agent-9", CgroupLimits{});
  ASSERT_TRUE(live);
  auto removed = b->remove_stale();
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 1u);
  EXPECT_FALSE(fs::exists(inst() / "agent-3"));
  EXPECT_TRUE(fs::exists(inst() / "agent-9"));
  EXPECT_NE(std::find(fake_->log.begin(), fake_->log.end(), "kill 8001 9"), fake_->log.end());
  EXPECT_NE(std::find(fake_->log.begin(), fake_->log.end(), "kill 8002 9"), fake_->log.end());
}

TEST_F(CgroupV2Test, RefusesBadNamesAndMissingParent) {
  auto b = open();
  for (auto bad : {"", "..", "a/b", "kernel", "x y"}) EXPECT_FALSE(b->create(bad, CgroupLimits{})) << bad;
  auto ok = b->create("ok", CgroupLimits{});
  ASSERT_TRUE(ok);
  auto again = b->create("ok", CgroupLimits{});  // in use
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, EEXIST);
  opts_.parent = "/does/not/exist";
  opts_.instance = "other";
  auto r = open_cgroups(opts_);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("does not exist"), std::string::npos);
  opts_.parent = "../escape";
  EXPECT_FALSE(open_cgroups(opts_));
  opts_.parent.reset();
  opts_.instance = "bad/name";
  EXPECT_FALSE(open_cgroups(opts_));
}

TEST(CgroupUtil, ParsesProcSelfCgroup) {
  auto e = cgroup_util::parse_proc_cgroup("12:cpu,cpuacct:/a/b\n1:name=systemd:/x:y\n0::/user.slice\n");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[0].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ((*e)[0].path, "/a/b");
  EXPECT_EQ((*e)[1].path, "/x:y");
  EXPECT_TRUE((*e)[2].controllers.empty());
  EXPECT_EQ((*e)[2].id, "0");
  EXPECT_FALSE(cgroup_util::parse_proc_cgroup("garbage\n"));
}

TEST(CgroupUtil, ParsesNumbersAndKeys) {
  EXPECT_EQ(cgroup_util::parse_u64(" 42\n"), 42u);
  EXPECT_EQ(cgroup_util::parse_u64("max\n"), std::nullopt);
  EXPECT_EQ(cgroup_util::parse_u64("-1"), std::nullopt);
  EXPECT_EQ(cgroup_util::keyed_u64("nr_periods 5\nnr_throttled 3\n", "nr_throttled"), 3u);
  EXPECT_EQ(cgroup_util::keyed_u64("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"), std::nullopt);
  EXPECT_EQ(cgroup_util::parse_pids("12\n13\n\n"), (std::vector<pid_t>{12, 13}));
  EXPECT_EQ(cgroup_util::join("/sys/fs/cgroup/", "/a/"), "/sys/fs/cgroup/a");
  EXPECT_EQ(cgroup_util::join("/", "a"), "/a");
  EXPECT_EQ(*cgroup_util::normalise_parent("a//b/"), "/a/b");
}

}  // namespace
}  // namespace agentos::runtime

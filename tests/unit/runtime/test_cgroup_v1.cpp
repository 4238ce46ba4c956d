// cgroup v1 backend against a fake cgroupfs: plain directories per
// hierarchy, populated with control files on mkdir the way the kernel does.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/cgroup.hpp"
#include "runtime/fake_cgroupfs.hpp"

namespace agentos::runtime {
namespace {

namespace fs = std::filesystem;
using cgroup_util::split_words;

using fake::put;
using fake::slurp;

/// v1 "kernel" over a temp directory: the first path component under the
/// root names the hierarchy ("memory", "cpu,cpuacct", ...).
class FakeV1Fs : public CgroupFs {
 public:
  explicit FakeV1Fs(fs::path root) : root_(std::move(root)) {}

  bool memsw = true;
  std::map<std::string, int> fail_write;  // file name -> errno
  std::vector<std::string> log;           // "write <file> <value>", "kill <pid> <sig>"

  Result<void> make_dir(const std::string& path) override {
    AOS_TRY_VOID(CgroupFs::make_dir(path));
    populate(path);
    return {};
  }
  Result<void> remove_dir(const std::string& path) override {
    return fake::remove_cgroup_dir(*this, path);
  }
  Result<void> write(const std::string& path, std::string_view value) override {
    std::string name = fs::path(path).filename();
    fs::path rel = fs::path(path).lexically_relative(root_);
    log.push_back("write " + rel.begin()->string() + "/" + name + " " + std::string(value));
    if (auto it = fail_write.find(name); it != fail_write.end()) return make_error("write " + path, it->second);
    if (!fs::exists(path)) return make_error("open " + path, ENOENT);
    if (name == "cgroup.procs") {
      remove_pid_everywhere(root_ / *rel.begin(), std::string(value));
      put(path, slurp(path) + std::string(value) + "\n");
      return {};
    }
    return CgroupFs::write(path, value);
  }
  int send_signal(pid_t pid, int sig) override {
    log.push_back("kill " + std::to_string(pid) + " " + std::to_string(sig));
    remove_pid_everywhere(root_, std::to_string(pid));
    return 0;
  }
  void pause(std::chrono::milliseconds) override {}

 private:
  void populate(const fs::path& dir) {
    put(dir / "cgroup.procs", "");
    put(dir / "tasks", "");
    for (const auto& c : split(dir.lexically_relative(root_).begin()->string())) {
      if (c == "memory") {
        put(dir / "memory.limit_in_bytes", "9223372036854771712\n");
        if (memsw) put(dir / "memory.memsw.limit_in_bytes", "9223372036854771712\n");
        if (memsw) put(dir / "memory.memsw.failcnt", "0\n");
        put(dir / "memory.swappiness", "60\n");
        for (auto f : {"memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt"}) put(dir / f, "0\n");
        put(dir / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
      } else if (c == "cpu") {
        put(dir / "cpu.cfs_period_us", "100000\n");
        put(dir / "cpu.cfs_quota_us", "-1\n");
        put(dir / "cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n");
      } else if (c == "cpuacct") {
        put(dir / "cpuacct.usage", "0\n");
      } else if (c == "pids") {
        put(dir / "pids.max", "max\n");
        put(dir / "pids.current", "0\n");
      } else if (c == "freezer") {
        put(dir / "freezer.state", "THAWED\n");
      }
    }
  }
  static std::vector<std::string> split(std::string list) {
    std::replace(list.begin(), list.end(), ',', ' ');
    return split_words(list);
  }
  static void remove_pid_everywhere(const fs::path& under, const std::string& pid) {
    for (const auto& e : fs::recursive_directory_iterator(under)) {
      if (e.path().filename() != "cgroup.procs") continue;
      std::string out;
      for (const auto& p : split_words(slurp(e.path())))
        if (p != pid) out += p + "\n";
      put(e.path(), out);
    }
  }
  fs::path root_;
};

constexpr std::string_view kSelf = "/process_api/5a13";

class CgroupV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agentos-cgv1-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fake_ = std::make_shared<FakeV1Fs>(root_);
    opts_.root = root_.string();
    opts_.proc_self_cgroup = (root_ / "self-cgroup").string();
    opts_.instance = "agentos-test";
    opts_.fs = fake_;
  }
  void TearDown() override { fs::remove_all(root_); }

  /// This machine's layout: each controller in its own hierarchy, an empty
  /// cgroup2 at unified, the kernel in a nested memory cgroup.
  void make_hybrid(bool with_pids = true) {
    for (auto h : {"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd", "unified"}) {
      if (!with_pids && std::string_view(h) == "pids") continue;
      fs::create_directories(root_ / h);
      put(root_ / h / "cgroup.procs", "1\n");
    }
    put(root_ / "unified" / "cgroup.controllers", "");
    fs::create_directories(root_ / "memory" / "process_api" / "5a13");
    put(root_ / "memory" / "process_api" / "5a13" / "cgroup.procs", std::to_string(::getpid()) + "\n");
    put(root_ / "self-cgroup",
        std::string("9:name=systemd:/\n") + (with_pids ? "8:pids:/\n" : "") +
            "7:blkio:/\n6:freezer:/\n5:devices:/\n4:memory:" + std::string(kSelf) +
            "\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n");
  }
  /// Older distributions: cpu and cpuacct co-mounted, with symlinks.
  void make_legacy() {
    for (auto h : {"cpu,cpuacct", "memory", "pids", "freezer", "systemd"}) fs::create_directories(root_ / h);
    fs::create_directory_symlink("cpu,cpuacct", root_ / "cpu");
    fs::create_directory_symlink("cpu,cpuacct", root_ / "cpuacct");
    fs::create_directories(root_ / "memory" / "user.slice");
    put(root_ / "self-cgroup",
        "5:freezer:/\n4:pids:/user.slice\n3:memory:/user.slice\n2:cpu,cpuacct:/\n1:name=systemd:/user.slice\n");
    fs::create_directories(root_ / "pids" / "user.slice");
  }
  std::unique_ptr<CgroupBackend> open() {
    auto b = open_cgroups(opts_);
    EXPECT_TRUE(b) << b.error().message();
    return b ? std::move(*b) : nullptr;
  }
  fs::path mem_inst() const { return root_ / "memory" / "process_api" / "5a13" / "agentos-test"; }

  fs::path root_;
  std::shared_ptr<FakeV1Fs> fake_;
  CgroupOptions opts_;
};

TEST_F(CgroupV1Test, DetectsHybridLayoutLikeThisMachine) {
  make_hybrid();
  auto b = open();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->version(), "v1");
  auto d = b->describe();
  std::vector<std::string> paths = d["instance_paths"];
  std::vector<std::string> want = {mem_inst().string(), (root_ / "cpu" / "agentos-test").string(),
                                   (root_ / "cpuacct" / "agentos-test").string(),
                                   (root_ / "pids" / "agentos-test").string(),
                                   (root_ / "freezer" / "agentos-test").string()};
  EXPECT_EQ(paths, want);
  for (const auto& p : paths) EXPECT_TRUE(fs::is_directory(p)) << p;
  EXPECT_TRUE(d["controllers"]["missing"].empty());
  b.reset();
  for (const auto& p : paths) EXPECT_FALSE(fs::exists(p)) << p;
  EXPECT_TRUE(fs::exists(root_ / "memory" / "process_api" / "5a13"));
}

TEST_F(CgroupV1Test, DetectsLegacyLayoutWithCoMountedCpuAndCpuacct) {
  make_legacy();
  auto b = open();
  ASSERT_TRUE(b);
  auto d = b->describe();
  ASSERT_EQ(d["hierarchies"].size(), 3u + 1u);  // memory, cpu+cpuacct, pids, freezer
  bool found = false;
  for (const auto& h : d["hierarchies"]) {
    if (h["controllers"] == nlohmann::json({"cpu", "cpuacct"})) {
      found = true;
      EXPECT_EQ(h["mount"], (root_ / "cpu,cpuacct").string());
      EXPECT_EQ(h["instance"], (root_ / "cpu,cpuacct" / "agentos-test").string());
    }
  }
  EXPECT_TRUE(found) << d.dump();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216, .cpu_quota_us = 20000});
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_EQ((*cg)->path(), (root_ / "memory" / "user.slice" / "agentos-test" / "a").string());
  EXPECT_EQ(slurp(root_ / "cpu,cpuacct" / "agentos-test" / "a" / "cpu.cfs_quota_us"), "20000");
}

TEST_F(CgroupV1Test, NoHierarchyAtAllIsAClearError) {
  put(root_ / "self-cgroup", "0::/\n");
  auto b = open_cgroups(opts_);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("no cgroup found"), std::string::npos) << b.error().message();
}

TEST_F(CgroupV1Test, WritesLimitsWithExactValuesInOrder) {
  make_hybrid();
  auto b = open();
  fake_->log.clear();
  CgroupLimits lim{.memory_bytes = 52428800, .max_pids = 64, .cpu_quota_us = 10000};
  auto cg = b->create("agent-7", lim);
  ASSERT_TRUE(cg) << cg.error().message();
  std::vector<std::string> want = {
      "write memory/memory.limit_in_bytes 52428800", "write memory/memory.memsw.limit_in_bytes 52428800",
      "write cpu/cpu.cfs_period_us 100000",          "write cpu/cpu.cfs_quota_us 10000",
      "write pids/pids.max 64"};
  EXPECT_EQ(fake_->log, want);
  EXPECT_EQ(slurp(mem_inst() / "agent-7" / "memory.limit_in_bytes"), "52428800");
  EXPECT_EQ(slurp(mem_inst() / "agent-7" / "memory.memsw.limit_in_bytes"), "52428800");
  nlohmann::json e = {{"backend", "v1"},         {"memory", 52428800},       {"swap", 0},
                      {"cpu_quota_us", 10000},   {"cpu_period_us", 100000},  {"max_pids", 64}};
  EXPECT_EQ((*cg)->enforced(), e);
  EXPECT_EQ((*cg)->path(), (mem_inst() / "agent-7").string());
  EXPECT_EQ((*cg)->clone_into_fd(), std::nullopt);
}

TEST_F(CgroupV1Test, WithoutMemswSwappinessIsZeroAndSwapReportedUnlimited) {
  fake_->memsw = false;
  make_hybrid();
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216});
  ASSERT_TRUE(cg);
  EXPECT_EQ(slurp(mem_inst() / "a" / "memory.swappiness"), "0");
  auto e = (*cg)->enforced();
  EXPECT_EQ(e["memory"], 16777216);
  EXPECT_EQ(e["swappiness"], 0);
  EXPECT_FALSE(e.contains("swap"));
  EXPECT_NE(e["not_enforced"]["swap"].get<std::string>().find("swapaccount=1"), std::string::npos);
}

TEST_F(CgroupV1Test, ParsesStatsFromRealFormatFiles) {
  make_hybrid();
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 33554432});
  ASSERT_TRUE(cg);
  fs::path mem = mem_inst() / "a";
  // Captured on this machine (Linux 6.18, hybrid v1).
  put(mem / "memory.usage_in_bytes", "33353728\n");
  put(mem / "memory.max_usage_in_bytes", "33554432\n");
  put(mem / "memory.failcnt", "3\n");
  put(mem / "memory.memsw.failcnt", "2466\n");
  put(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
  put(root_ / "cpuacct" / "agentos-test" / "a" / "cpuacct.usage", "66894412515\n");
  put(root_ / "cpu" / "agentos-test" / "a" / "cpu.stat",
      "nr_periods 21\nnr_throttled 20\nthrottled_time 1787342910\nnr_bursts 0\nburst_time 0\n");
  put(root_ / "pids" / "agentos-test" / "a" / "pids.current", "5\n");
  put(mem / "cgroup.procs", "321\n");
  auto s = (*cg)->stats();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->memory_current, 33353728u);
  EXPECT_EQ(s->memory_peak, 33554432u);
  EXPECT_EQ(s->memory_limit, 33554432u);
  EXPECT_EQ(s->memory_max_hits, 2469u);
  EXPECT_EQ(s->oom_kills, 1u);
  EXPECT_TRUE(s->oom_kills_exact);
  EXPECT_EQ(s->cpu_usage_us, 66894412u);
  EXPECT_EQ(s->nr_throttled, 20u);
  EXPECT_EQ(s->throttled_us, 1787342u);
  EXPECT_EQ(s->pids_current, 5u);
  EXPECT_TRUE(s->populated);
  put(mem / "cgroup.procs", "");
  put(mem / "memory.limit_in_bytes", "9223372036854771712\n");  // v1's "unlimited"
  put(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 1\n");  // kernel < 4.13
  s = (*cg)->stats();
  EXPECT_FALSE(s->populated);
  EXPECT_EQ(s->memory_limit, 0u);
  EXPECT_FALSE(s->oom_kills_exact);
  EXPECT_EQ(s->oom_kills, 1u);
}

TEST_F(CgroupV1Test, UsageReadsOnlyWhatTheSamplerNeeds) {
  make_hybrid();
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 33554432});
  ASSERT_TRUE(cg);
  fs::path mem = mem_inst() / "a";
  put(mem / "memory.usage_in_bytes", "1000\n");
  put(mem / "memory.max_usage_in_bytes", "2000\n");
  put(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  put(mem / "memory.failcnt", "7\n");
  put(root_ / "cpuacct" / "agentos-test" / "a" / "cpuacct.usage", "5000000\n");
  put(root_ / "cpu" / "agentos-test" / "a" / "cpu.stat", "nr_periods 2\nnr_throttled 1\nthrottled_time 3000000\n");
  put(root_ / "pids" / "agentos-test" / "a" / "pids.current", "4\n");
  // The files usage() skips are made unreadable: it must not need them.
  fs::remove(mem / "cgroup.procs");
  fs::remove(mem / "memory.limit_in_bytes");
  auto s = (*cg)->usage();
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->memory_current, 1000u);
  EXPECT_EQ(s->memory_peak, 2000u);
  EXPECT_EQ(s->oom_kills, 2u);
  EXPECT_EQ(s->cpu_usage_us, 5000u);
  EXPECT_EQ(s->nr_throttled, 1u);
  EXPECT_EQ(s->throttled_us, 3000u);
  EXPECT_EQ(s->pids_current, 4u);
  EXPECT_EQ(s->memory_max_hits, 0u);  // not read: informational only
  // A cgroup that is gone is an error, not a sample of zeros.
  fs::remove(mem / "memory.usage_in_bytes");
  EXPECT_FALSE((*cg)->usage().has_value());
}

TEST_F(CgroupV1Test, MissingControllerIsReported) {
  make_hybrid(/*with_pids=*/false);
  auto b = open();
  ASSERT_TRUE(b);
  auto missing = b->describe()["controllers"]["missing"];
  ASSERT_TRUE(missing.contains("pids")) << missing.dump();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216, .max_pids = 8});
  ASSERT_TRUE(cg) << cg.error().message();
  auto e = (*cg)->enforced();
  EXPECT_EQ(e["memory"], 16777216);
  EXPECT_FALSE(e.contains("max_pids"));
  EXPECT_EQ(e["not_enforced"]["max_pids"], missing["pids"]);
  auto s = (*cg)->stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pids_current, 0u);
}

TEST_F(CgroupV1Test, AttachJoinsEveryHierarchy) {
  make_hybrid();
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  ASSERT_TRUE((*cg)->attach(7001));
  // (a named copy: a range-for over a temporary's member would dangle)
  auto paths = b->describe()["instance_paths"];
  for (const auto& p : paths)
    EXPECT_EQ(slurp(fs::path(p.get<std::string>()) / "a" / "cgroup.procs"), "7001\n") << p;
}

TEST_F(CgroupV1Test, KillAllFreezesSignalsEveryTaskThenThaws) {
  make_hybrid();
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  ASSERT_TRUE((*cg)->attach(7001));
  ASSERT_TRUE((*cg)->attach(7002));
  fake_->log.clear();
  ASSERT_TRUE((*cg)->kill_all());
  std::vector<std::string> want = {"write freezer/freezer.state FROZEN", "kill 7001 9", "kill 7002 9",
                                   "write freezer/freezer.state THAWED"};
  EXPECT_EQ(fake_->log, want);
  ASSERT_TRUE((*cg)->freeze(true));
  EXPECT_EQ(slurp(root_ / "freezer" / "agentos-test" / "a" / "freezer.state"), "FROZEN");
}

TEST_F(CgroupV1Test, WithoutFreezerKillStillSignalsAndFreezeFailsClearly) {
  make_hybrid();
  put(root_ / "self-cgroup", "4:memory:" + std::string(kSelf) + "\n1:cpu:/\n");
  auto b = open();
  auto cg = b->create("a", CgroupLimits{});
  ASSERT_TRUE(cg);
  EXPECT_TRUE((*cg)->enforced()["not_enforced"].contains("freezer"));
  ASSERT_TRUE((*cg)->attach(7001));
  fake_->log.clear();
  ASSERT_TRUE((*cg)->kill_all());
  EXPECT_EQ(fake_->log, std::vector<std::string>{"kill 7001 9"});
  auto r = (*cg)->freeze(true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EOPNOTSUPP);
}

TEST_F(CgroupV1Test, RejectedWriteNamesFileErrnoAndHintAndCleansUp) {
  make_hybrid();
  fake_->fail_write["memory.limit_in_bytes"] = EBUSY;
  auto b = open();
  auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216, .max_pids = 5});
  ASSERT_FALSE(cg);
  std::string msg = cg.error().message();
  EXPECT_EQ(cg.error().code, EBUSY);
  EXPECT_NE(msg.find((mem_inst() / "a" / "memory.limit_in_bytes").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Device or resource busy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("above the new limit"), std::string::npos) << msg;
  // (a named copy: a range-for over a temporary's member would dangle)
  auto paths = b->describe()["instance_paths"];
  for (const auto& p : paths)
    EXPECT_FALSE(fs::exists(fs::path(p.get<std::string>()) / "a")) << p;
}

TEST_F(CgroupV1Test, AgentDestructorKillsAndRemovesEveryHierarchy) {
  make_hybrid();
  auto b = open();
  {
    auto cg = b->create("a", CgroupLimits{.memory_bytes = 16777216});
    ASSERT_TRUE(cg);
    ASSERT_TRUE((*cg)->attach(7001));
  }
  EXPECT_NE(std::find(fake_->log.begin(), fake_->log.end(), "kill 7001 9"), fake_->log.end());
  // (a named copy: a range-for over a temporary's member would dangle)
  auto paths = b->describe()["instance_paths"];
  for (const auto& p : paths) {
    EXPECT_TRUE(fs::exists(p.get<std::string>()));
    EXPECT_FALSE(fs::exists(fs::path(p.get<std::string>()) / "a")) << p;
  }
}

// An agent spawned by an agent: its cgroup is made inside the parent's in
// every hierarchy, so the parent's limits bound both; killing the parent
// kills both, under one freeze; the parent's removal takes the nested
// directories, and the child's own cleanup afterwards is harmless.
TEST_F(CgroupV1Test, NestedAgentLivesInsideItsParentInEveryHierarchy) {
  make_hybrid();
  auto b = open();
  auto parent = b->create("agent-1", CgroupLimits{.memory_bytes = 16777216});
  ASSERT_TRUE(parent);
  auto child = b->create("agent-2", CgroupLimits{.memory_bytes = 8388608, .max_pids = 8}, parent->get());
  ASSERT_TRUE(child) << child.error().message();
  EXPECT_EQ((*child)->path(), (mem_inst() / "agent-1" / "agent-2").string());
  EXPECT_EQ((*child)->enforced()["nested_in"], (mem_inst() / "agent-1").string());
  EXPECT_EQ(slurp(mem_inst() / "agent-1" / "agent-2" / "memory.limit_in_bytes"), "8388608");
  EXPECT_EQ(slurp(root_ / "pids" / "agentos-test" / "agent-1" / "agent-2" / "pids.max"), "8");
  EXPECT_FALSE(fs::exists(mem_inst() / "agent-2"));  // not beside the parent
  ASSERT_TRUE((*parent)->attach(7001));
  ASSERT_TRUE((*child)->attach(7002));
  EXPECT_EQ(slurp(root_ / "freezer" / "agentos-test" / "agent-1" / "agent-2" / "cgroup.procs"), "7002\n");

  fake_->log.clear();
  ASSERT_TRUE((*parent)->kill_all());
  std::vector<std::string> want = {"write freezer/freezer.state FROZEN", "kill 7001 9", "kill 7002 9",
                                   "write freezer/freezer.state THAWED"};
  EXPECT_EQ(fake_->log, want);

  parent->reset();
  auto paths = b->describe()["instance_paths"];
  for (const auto& p : paths) EXPECT_FALSE(fs::exists(fs::path(p.get<std::string>()) / "agent-1")) << p;
  child->reset();
  EXPECT_TRUE(b->remove_stale());
  EXPECT_EQ(*b->remove_stale(), 0u);
}

TEST_F(CgroupV1Test, RemoveStaleCleansLeftoversOfTheSameInstanceOnly) {
  make_hybrid();
  // A crashed run left agent-3 in two hierarchies, with a process and a
  // nested cgroup; another instance's subtree must not be touched.
  ASSERT_TRUE(fake_->make_dir(mem_inst().string()));
  ASSERT_TRUE(fake_->make_dir((mem_inst() / "agent-3").string()));
  ASSERT_TRUE(fake_->make_dir((mem_inst() / "agent-3" / "sub").string()));
  ASSERT_TRUE(fake_->make_dir((root_ / "freezer" / "agentos-test").string()));
  ASSERT_TRUE(fake_->make_dir((root_ / "freezer" / "agentos-test" / "agent-3").string()));
  put(root_ / "freezer" / "agentos-test" / "agent-3" / "cgroup.procs", "8001\n");
  put(mem_inst() / "agent-3" / "sub" / "cgroup.procs", "8002\n");
  ASSERT_TRUE(fake_->make_dir((root_ / "freezer" / "agentos-other").string()));
  ASSERT_TRUE(fake_->make_dir((root_ / "freezer" / "agentos-other" / "agent-1").string()));
  auto b = open();
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->describe()["adopted_existing"]);
  auto live = b->create("agent-9", CgroupLimits{});
  ASSERT_TRUE(live);
  fake_->log.clear();
  auto removed = b->remove_stale();
  ASSERT_TRUE(removed) << removed.error().message();
  EXPECT_EQ(*removed, 1u);
  EXPECT_EQ(fake_->log.front(), "write freezer/freezer.state FROZEN");
  EXPECT_NE(std::find(fake_->log.begin(), fake_->log.end(), "kill 8001 9"), fake_->log.end());
  EXPECT_NE(std::find(fake_->log.begin(), fake_->log.end(), "kill 8002 9"), fake_->log.end());
  EXPECT_FALSE(fs::exists(mem_inst() / "agent-3"));
  EXPECT_FALSE(fs::exists(root_ / "freezer" / "agentos-test" / "agent-3"));
  EXPECT_TRUE(fs::exists(mem_inst() / "agent-9"));
  EXPECT_TRUE(fs::exists(root_ / "freezer" / "agentos-other" / "agent-1"));
}

TEST_F(CgroupV1Test, ConfiguredParentMustExist) {
  make_hybrid();
  opts_.parent = "agentos";
  auto b = open_cgroups(opts_);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("does not exist"), std::string::npos) << b.error().message();
  for (auto h : {"memory", "cpu", "cpuacct", "pids", "freezer"}) fs::create_directories(root_ / h / "agentos");
  b = open_cgroups(opts_);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_TRUE(fs::is_directory(root_ / "memory" / "agentos" / "agentos-test"));
}

}  // namespace
}  // namespace agentos::runtime

#include "kernel/config_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "kernel/config.hpp"
#include "runtime/spawn_request.hpp"

namespace agentos {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kSource = "/etc/agentos/agentos.toml";

ConfigFile parse_ok(std::string_view text) {
  auto r = parse_config_text(text, kSource);
  EXPECT_TRUE(r.has_value()) << r.error().message();
  return r ? std::move(*r) : ConfigFile{};
}

std::string parse_error(std::string_view text) {
  auto r = parse_config_text(text, kSource);
  EXPECT_FALSE(r.has_value()) << "parsed:\n" << text;
  return r ? "" : r.error().message();
}

// "<file>:<line>:" — the start of every positioned error.
std::string at_line(int line) { return std::string(kSource) + ":" + std::to_string(line) + ":"; }

// --- [kernel] ----------------------------------------------------------------

TEST(ConfigFile, EmptyFileIsValid) {
  auto f = parse_ok("");
  EXPECT_TRUE(f.agents.empty());
  EXPECT_FALSE(f.kernel.socket.has_value());
  EXPECT_FALSE(f.kernel.sandbox.has_value());
}

TEST(ConfigFile, EveryKernelKeyAndType) {
  auto f = parse_ok(R"(
[kernel]
socket = "/run/agentos/agentos.sock"
log_level = "debug"
state_dir = "/var/lib/agentos"
runtime_dir = "/run/agentos"
max_connections = 2048
max_output_bytes = "8M"
sandbox = false
cgroup_parent = "/agentos.slice"
sdk_dir = "/usr/share/agentos/python_sdk"
kill_grace_ms = 2500
llm_provider = "openai"
llm_model = "gpt-test"
llm_base_url = "http://127.0.0.1:9/v1"
llm_max_inflight = 4
llm_rpm = 60
llm_tpm = 1.5e4
llm_timeout = 12.5
llm_scheduler = "fifo"
stats_interval_ms = 500
log_max_bytes = "1M"
log_max_files = 7
)");
  const auto& k = f.kernel;
  EXPECT_EQ(k.socket, "/run/agentos/agentos.sock");
  EXPECT_EQ(k.log_level, "debug");
  EXPECT_EQ(k.state_dir, "/var/lib/agentos");
  EXPECT_EQ(k.runtime_dir, "/run/agentos");
  EXPECT_EQ(k.max_connections, 2048u);
  EXPECT_EQ(k.max_output_bytes, 8u << 20);
  EXPECT_EQ(k.sandbox, false);
  EXPECT_EQ(k.cgroup_parent, "/agentos.slice");
  EXPECT_EQ(k.sdk_dir, "/usr/share/agentos/python_sdk");
  EXPECT_EQ(k.kill_grace_ms, 2500);
  EXPECT_EQ(k.llm_provider, "openai");
  EXPECT_EQ(k.llm_model, "gpt-test");
  EXPECT_EQ(k.llm_base_url, "http://127.0.0.1:9/v1");
  EXPECT_EQ(k.llm_max_inflight, 4u);
  EXPECT_EQ(k.llm_rpm, 60.0);
  EXPECT_EQ(k.llm_tpm, 15000.0);
  EXPECT_EQ(k.llm_timeout, 12.5);
  EXPECT_EQ(k.llm_scheduler, "fifo");
  EXPECT_EQ(k.stats_interval_ms, 500u);
  EXPECT_EQ(k.log_max_bytes, 1u << 20);
  EXPECT_EQ(k.log_max_files, 7u);
}

TEST(ConfigFile, NoSandboxIsTheInverseOfSandbox) {
  EXPECT_EQ(parse_ok("[kernel]\nno_sandbox = true\n").kernel.sandbox, false);
  EXPECT_EQ(parse_ok("[kernel]\nno_sandbox = false\n").kernel.sandbox, true);
  EXPECT_NE(parse_error("[kernel]\nsandbox = true\nno_sandbox = true\n").find("not both"),
            std::string::npos);
}

TEST(ConfigFile, RelativeKernelPathsResolveAgainstTheFilesDirectory) {
  auto f = parse_ok(
      "[kernel]\nsocket = \"run/a.sock\"\nstate_dir = \"../state\"\nruntime_dir = \"./rt\"\n");
  EXPECT_EQ(f.kernel.socket, "/etc/agentos/run/a.sock");
  EXPECT_EQ(f.kernel.state_dir, "/etc/state");
  EXPECT_EQ(f.kernel.runtime_dir, "/etc/agentos/rt");
}

TEST(ConfigFile, KernelSettingsCompareForReload) {
  const auto a = parse_ok("[kernel]\nmax_connections = 8\n").kernel;
  EXPECT_EQ(a, parse_ok("[kernel]\nmax_connections = 8\n").kernel);
  EXPECT_NE(a, parse_ok("[kernel]\nmax_connections = 9\n").kernel);
  EXPECT_NE(a, parse_ok("").kernel);
}

TEST(ConfigFile, ByteCountsAcceptIntegers) {
  auto f = parse_ok("[kernel]\nmax_output_bytes = 131072\nlog_max_bytes = 65536\n");
  EXPECT_EQ(f.kernel.max_output_bytes, 131072u);
  EXPECT_EQ(f.kernel.log_max_bytes, 65536u);
}

TEST(ConfigFile, KernelErrorsNameKeyLineAndReason) {
  const std::map<std::string, std::string> cases = {
      {"[kernel]\n\nmax_connections = 0\n",
       "3:1: [kernel] max_connections: must be between 1 and 1048576"},
      {"[kernel]\nmax_connections = \"many\"\n",
       "2:1: [kernel] max_connections: expected an integer, not a string"},
      {"[kernel]\nlog_level = \"loud\"\n",
       "2:1: [kernel] log_level: 'loud' is not one of: trace, debug"},
      {"[kernel]\n  log_level = 42\n",
       "2:3: [kernel] log_level: expected a string, not an integer"},
      {"[kernel]\nllm_provider = \"claude\"\n",
       "2:1: [kernel] llm_provider: 'claude' is not one of: gemini, openai"},
      {"[kernel]\nllm_base_url = \"ftp://x\"\n",
       "2:1: [kernel] llm_base_url: must start with http://"},
      {"[kernel]\nllm_rpm = -1\n", "2:1: [kernel] llm_rpm: must be between 0 and"},
      {"[kernel]\nllm_timeout = inf\n", "2:1: [kernel] llm_timeout: must be between"},
      {"[kernel]\nsandbox = \"yes\"\n",
       "2:1: [kernel] sandbox: expected true or false, not a string"},
      {"[kernel]\nsocket = \"\"\n", "2:1: [kernel] socket: must not be empty"},
      {"[kernel]\nlog_max_bytes = \"1k\"\n",
       "2:1: [kernel] log_max_bytes: 1024 bytes is not between 65536 and"},
      {"[kernel]\nlog_max_bytes = \"ten\"\n", "2:1: [kernel] log_max_bytes: 'ten' is not a size"},
      {"[kernel]\nlog_max_files = 0\n", "2:1: [kernel] log_max_files: must be between 1 and 1000"},
      {"[kernel]\nstats_interval_ms = 5\n",
       "2:1: [kernel] stats_interval_ms: must be between 100 and"},
      {"[kernel]\nkill_grace_ms = 3600001\n",
       "2:1: [kernel] kill_grace_ms: must be between 0 and 3600000"},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_NE(parse_error(text).find(std::string(kSource) + ":" + expected), std::string::npos)
        << "input:\n"
        << text << "error: " << parse_error(text);
  }
}

TEST(ConfigFile, UnknownKernelKeyIsAnErrorAtTheKey) {
  auto e = parse_error("[kernel]\nsocket = \"/s\"\n  sockett = \"/s\"\n");
  EXPECT_NE(e.find(at_line(3) + "3: [kernel]: unknown key 'sockett' (known: socket, "),
            std::string::npos)
      << e;
}

TEST(ConfigFile, UnknownTopLevelTablesAndKeysAreErrors) {
  EXPECT_NE(parse_error("[kernel]\n[agents]\nname = \"x\"\n")
                .find(at_line(2) + "2: unknown top-level key 'agents'"),
            std::string::npos);
  EXPECT_NE(parse_error("socket = \"/s\"\n").find(at_line(1) + "1: unknown top-level key 'socket'"),
            std::string::npos);
  EXPECT_NE(parse_error("kernel = 1\n").find("'kernel' must be a table"), std::string::npos);
  EXPECT_NE(parse_error("[agent]\nname = \"x\"\n")
                .find(at_line(1) + "2: declare agents as an array of tables"),
            std::string::npos);
}

TEST(ConfigFile, TomlSyntaxErrorsCarryLineAndColumn) {
  auto e = parse_error("[kernel]\nsocket = \"/s\"\nlog_level = info\n");
  EXPECT_EQ(e.rfind(at_line(3), 0), 0u) << e;
  auto dup = parse_error("[kernel]\nsocket = \"/a\"\nsocket = \"/b\"\n");
  EXPECT_EQ(dup.rfind(at_line(3), 0), 0u) << dup;
}

// --- [[agent]] ---------------------------------------------------------------

TEST(ConfigFile, AgentBecomesTheSpawnPayload) {
  auto f = parse_ok(R"(
[[agent]]
name = "worker"
script = "/srv/agents/worker.py"
python = "/usr/bin/python3"
args = ["--rounds", "3", ""]
env = { MODE = "batch", EMPTY = "" }
sandboxed = true
network = false
allow_spawn = true
limits = { memory = 67108864, max_pids = 32, cpu_quota = 20000, cpu_period = 50000, llm_rpm = 30, llm_tpm = 1000.5, llm_tokens = 5000, llm_weight = 2.0 }
restart = "no"
)");
  ASSERT_EQ(f.agents.size(), 1u);
  const json expected = json::parse(R"({
    "name": "worker", "script": "/srv/agents/worker.py", "python": "/usr/bin/python3",
    "args": ["--rounds", "3", ""], "env": {"MODE": "batch", "EMPTY": ""},
    "sandboxed": true, "network": false, "allow_spawn": true,
    "limits": {"memory": 67108864, "max_pids": 32, "cpu_quota": 20000, "cpu_period": 50000,
               "llm_rpm": 30, "llm_tpm": 1000.5, "llm_tokens": 5000, "llm_weight": 2.0},
    "restart": "no"})");
  EXPECT_EQ(f.agents[0], expected) << f.agents[0].dump();
  // Counts are unsigned, as they are in a payload parsed off the wire.
  EXPECT_TRUE(f.agents[0]["limits"]["max_pids"].is_number_unsigned());
  EXPECT_TRUE(runtime::parse_spawn_request(f.agents[0]).has_value());
}

TEST(ConfigFile, AgentsKeepFileOrder) {
  auto f = parse_ok(R"(
[[agent]]
name = "b"
script = "/b.py"
[[agent]]
name = "a"
script = "/a.py"
[[agent]]
name = "c"
script = "/c.py"
)");
  ASSERT_EQ(f.agents.size(), 3u);
  EXPECT_EQ(f.agents[0]["name"], "b");
  EXPECT_EQ(f.agents[1]["name"], "a");
  EXPECT_EQ(f.agents[2]["name"], "c");
}

TEST(ConfigFile, RelativeScriptAndPythonPathsResolveAgainstTheFilesDirectory) {
  auto f = parse_ok(R"(
[[agent]]
name = "rel"
script = "agents/../agents/w.py"
python = "venv/bin/python3"
[[agent]]
name = "up"
script = "../shared/x.py"
python = "python3"
[[agent]]
name = "abs"
script = "/opt/x.py"
)");
  EXPECT_EQ(f.agents[0]["script"], "/etc/agentos/agents/w.py");
  EXPECT_EQ(f.agents[0]["python"], "/etc/agentos/venv/bin/python3");
  EXPECT_EQ(f.agents[1]["script"], "/etc/shared/x.py");
  EXPECT_EQ(f.agents[1]["python"], "python3");  // a bare name is looked up on PATH
  EXPECT_EQ(f.agents[2]["script"], "/opt/x.py");
}

TEST(ConfigFile, RelativeSourceNameResolvesAgainstTheWorkingDirectory) {
  auto r = parse_config_text("[[agent]]\nname = \"a\"\nscript = \"a.py\"\n", "conf/agentos.toml");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->agents[0]["script"], (fs::current_path() / "conf" / "a.py").string());
}

TEST(ConfigFile, MemoryUnitsBecomeBytes) {
  const std::map<std::string, uint64_t> cases = {
      {"\"256M\"", 256ull << 20}, {"\"1G\"", 1ull << 30},       {"\"1.5g\"", 3ull << 29},
      {"\"64MiB\"", 64ull << 20}, {"\"512 mb\"", 512ull << 20}, {"\"16777216\"", 16777216},
      {"33554432", 33554432}};
  for (const auto& [value, bytes] : cases) {
    auto f = parse_ok("[[agent]]\nname = \"m\"\nscript = \"/m.py\"\nlimits = { memory = " + value +
                      " }\n");
    ASSERT_EQ(f.agents.size(), 1u) << value;
    EXPECT_EQ(f.agents[0]["limits"]["memory"], bytes) << value;
  }
}

TEST(ConfigFile, CpuPercentBecomesQuotaOfThePeriod) {
  auto half = parse_ok("[[agent]]\nname = \"c\"\nscript = \"/c.py\"\nlimits = { cpu = \"50%\" }\n");
  EXPECT_EQ(half.agents[0]["limits"], json({{"cpu_quota", 50000}}));
  auto two = parse_ok(
      "[[agent]]\nname = \"c\"\nscript = \"/c.py\"\n[agent.limits]\ncpu = \"150%\"\ncpu_period = "
      "20000\n");
  EXPECT_EQ(two.agents[0]["limits"], json({{"cpu_quota", 30000}, {"cpu_period", 20000}}));
  auto tenth = parse_ok("[[agent]]\nname = \"c\"\nscript = \"/c.py\"\nlimits.cpu = \"2.5%\"\n");
  EXPECT_EQ(tenth.agents[0]["limits"]["cpu_quota"], 2500);
}

TEST(ConfigFile, CpuAndMemoryErrors) {
  const std::string head = "[[agent]]\nname = \"c\"\nscript = \"/c.py\"\n";
  const std::map<std::string, std::string> cases = {
      {"limits = { cpu = 50 }",
       "4:12: [[agent]] #1 'c': invalid field 'limits.cpu': expected a percentage"},
      {"limits = { cpu = \"fifty%\" }",
       "4:12: [[agent]] #1 'c': invalid field 'limits.cpu': expected a percentage"},
      {"limits = { cpu = \"0.5%\" }",
       "4:12: [[agent]] #1 'c': invalid field 'limits.cpu': 0.5% of a 100000 µs "
       "period is 500 µs, below"},
      {"limits = { cpu = \"50%\", cpu_quota = 1000 }",
       "4:12: [[agent]] #1 'c': invalid field 'limits.cpu': give either"},
      {"limits = { memory = \"lots\" }",
       "4:12: [[agent]] #1 'c': invalid field 'limits.memory': 'lots' is not a size"},
      {"limits = { memory = \"1M\" }",
       "4:12: [[agent]] #1 'c': invalid field 'limits.memory': 1048576 bytes is "
       "below the minimum"},
  };
  for (const auto& [line, expected] : cases) {
    const auto e = parse_error(head + line + "\n");
    EXPECT_NE(e.find(std::string(kSource) + ":" + expected), std::string::npos)
        << line << "\n -> " << e;
  }
}

TEST(ConfigFile, SpawnValidationErrorsPointAtTheField) {
  auto e = parse_error(R"([[agent]]
name = "ok"
script = "/ok.py"

[[agent]]
name = "worker"
script = "/w.py"
  memroy = 5
)");
  EXPECT_EQ(
      e.rfind(at_line(8) + "3: [[agent]] #2 'worker': invalid field 'memroy': unknown field", 0),
      0u)
      << e;

  auto nested = parse_error(
      "[[agent]]\nname = \"w\"\nscript = \"/w.py\"\n[agent.limits]\nmax_pids = 1\nmemroy = 5\n");
  EXPECT_EQ(nested.rfind(at_line(6) + "1: [[agent]] #1 'w': invalid field 'limits.memroy'", 0), 0u)
      << nested;

  auto arg = parse_error("[[agent]]\nname = \"w\"\nscript = \"/w.py\"\nargs = [\"a\",\n  3]\n");
  EXPECT_EQ(
      arg.rfind(at_line(5) + "3: [[agent]] #1 'w': invalid field 'args[1]': expected a string", 0),
      0u)
      << arg;

  auto env =
      parse_error("[[agent]]\nname = \"w\"\nscript = \"/w.py\"\n[agent.env]\nAGENTOS_X = \"1\"\n");
  EXPECT_EQ(env.rfind(at_line(5) + "1: [[agent]] #1 'w': invalid field 'env.AGENTOS_X'", 0), 0u)
      << env;

  auto type = parse_error("[[agent]]\nname = \"w\"\nscript = \"/w.py\"\nnetwork = \"yes\"\n");
  EXPECT_EQ(
      type.rfind(
          at_line(4) + "1: [[agent]] #1 'w': invalid field 'network': expected true or false", 0),
      0u)
      << type;
}

TEST(ConfigFile, MissingRequiredFieldPointsAtTheAgentHeader) {
  auto e = parse_error("[kernel]\n\n[[agent]]\nscript = \"/w.py\"\n");
  EXPECT_EQ(e.rfind(at_line(3) + "1: [[agent]] #1: invalid field 'name': required", 0), 0u) << e;
  auto bad_name = parse_error("[[agent]]\nname = \"no spaces\"\nscript = \"/w.py\"\n");
  EXPECT_EQ(bad_name.rfind(at_line(2) + "1: [[agent]] #1 'no spaces': invalid field 'name'", 0), 0u)
      << bad_name;
}

TEST(ConfigFile, DuplicateAgentNamesAreRefused) {
  auto e = parse_error(R"([[agent]]
name = "twin"
script = "/a.py"

[[agent]]
name = "other"
script = "/b.py"

[[agent]]
name = "twin"
script = "/c.py"
)");
  EXPECT_EQ(
      e.rfind(at_line(10) + "1: [[agent]] #3 'twin': duplicate name (also declared at line 1)", 0),
      0u)
      << e;
}

TEST(ConfigFile, DatesAndNonFiniteNumbersAreRefused) {
  auto date = parse_error("[[agent]]\nname = \"d\"\nscript = \"/d.py\"\nargs = [1979-05-27]\n");
  EXPECT_NE(date.find(at_line(4) + "9: [[agent]] #1 'd': dates and times are not allowed"),
            std::string::npos)
      << date;
  auto nan =
      parse_error("[[agent]]\nname = \"d\"\nscript = \"/d.py\"\nlimits = { llm_rpm = nan }\n");
  EXPECT_NE(nan.find(at_line(4) + "22: [[agent]] #1 'd': inf and nan are not allowed"),
            std::string::npos)
      << nan;
}

// The lead's restart fields pass straight through to SPAWN's parser: the
// file accepts exactly what SPAWN accepts, with the file's line on refusal.
TEST(ConfigFile, RestartFieldsPassThroughAsSpawnJudgesThem) {
  const std::string text = R"([[agent]]
name = "r"
script = "/r.py"
restart = "on-failure"
max_restarts = 3
restart_window = 60
restart_delay_ms = 200
restart_max_delay_ms = 5000
)";
  const json expected = {{"name", "r"},
                         {"script", "/r.py"},
                         {"restart", "on-failure"},
                         {"max_restarts", 3},
                         {"restart_window", 60},
                         {"restart_delay_ms", 200},
                         {"restart_max_delay_ms", 5000}};
  auto spawn = runtime::parse_spawn_request(json::parse(expected.dump()));
  auto r = parse_config_text(text, kSource);
  if (spawn) {
    ASSERT_TRUE(r.has_value()) << r.error().message();
    EXPECT_EQ(r->agents.at(0), expected);
  } else {
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message().find(spawn.error().message()), std::string::npos)
        << r.error().message();
    // The error points at the line of the field SPAWN named.
    const std::string& why = spawn.error().context;  // "invalid field 'max_restarts': ..."
    const std::string field = why.substr(15, why.find('\'', 15) - 15) + " = ";
    const auto line = 1 + std::count(text.begin(), text.begin() + text.find("\n" + field) + 1, '\n');
    EXPECT_EQ(r.error().message().rfind(at_line(static_cast<int>(line)) + "1: ", 0), 0u)
        << r.error().message();
  }
}

TEST(ConfigFile, EmptyAgentArrayIsNoAgents) {
  EXPECT_TRUE(parse_ok("agent = []\n").agents.empty());
}

// --- byte sizes ----------------------------------------------------------------

TEST(ByteSize, DockerUnits) {
  EXPECT_EQ(parse_byte_size("0"), 0u);
  EXPECT_EQ(parse_byte_size("100"), 100u);
  EXPECT_EQ(parse_byte_size("100b"), 100u);
  EXPECT_EQ(parse_byte_size("1k"), 1024u);
  EXPECT_EQ(parse_byte_size("1KB"), 1024u);
  EXPECT_EQ(parse_byte_size("2KiB"), 2048u);
  EXPECT_EQ(parse_byte_size("10M"), 10u << 20);
  EXPECT_EQ(parse_byte_size("1 g"), 1u << 30);
  EXPECT_EQ(parse_byte_size("2T"), 2ull << 40);
  EXPECT_EQ(parse_byte_size("1p"), 1ull << 50);
  EXPECT_EQ(parse_byte_size("0.5k"), 512u);
  EXPECT_EQ(parse_byte_size("1.1k"), 1126u);  // fractions of a byte dropped
}

TEST(ByteSize, RefusesWhatIsNotASize) {
  for (const char* bad :
       {"", "k", "M", "-1", "1x", "1kk", "1 2", "1.2.3", "1ib", " 1", "1  k", "1e3"}) {
    EXPECT_FALSE(parse_byte_size(bad).has_value()) << bad;
  }
  EXPECT_FALSE(parse_byte_size("16384p").has_value());  // 2^64
  EXPECT_FALSE(parse_byte_size("18446744073709551616").has_value());
  EXPECT_TRUE(parse_byte_size("16383p").has_value());
}

// --- load_config_file ------------------------------------------------------------

class ConfigFileOnDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/agentos-config-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    const auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }

  fs::path dir_;
};

TEST_F(ConfigFileOnDisk, LoadsAndResolvesScriptsNextToTheFile) {
  write("w.py", "print('hi')\n");
  const auto path =
      write("agentos.toml",
            "[kernel]\nsocket = \"k.sock\"\n[[agent]]\nname = \"w\"\nscript = \"w.py\"\n");
  auto f = load_config_file(path);
  ASSERT_TRUE(f.has_value()) << f.error().message();
  EXPECT_EQ(f->path, path);
  EXPECT_EQ(f->kernel.socket, (dir_ / "k.sock").string());
  EXPECT_EQ(f->agents.at(0)["script"], (dir_ / "w.py").string());
}

TEST_F(ConfigFileOnDisk, MissingScriptIsRefusedAtItsLine) {
  const auto path = write("agentos.toml", "[[agent]]\nname = \"w\"\nscript = \"gone.py\"\n");
  auto f = load_config_file(path);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().message(), path + ":3:10: [[agent]] #1 'w': invalid field 'script': " +
                                     (dir_ / "gone.py").string() + ": no such file");
  fs::create_directory(dir_ / "adir");
  const auto dir_path = write("d.toml", "[[agent]]\nname = \"w\"\nscript = \"adir\"\n");
  auto d = load_config_file(dir_path);
  ASSERT_FALSE(d.has_value());
  EXPECT_NE(d.error().message().find("not a regular file"), std::string::npos)
      << d.error().message();
}

TEST_F(ConfigFileOnDisk, MissingFileIsAnErrnoError) {
  auto f = load_config_file((dir_ / "nope.toml").string());
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, ENOENT);
  EXPECT_EQ(f.error().context, (dir_ / "nope.toml").string());
}

TEST_F(ConfigFileOnDisk, RefusesAFileOthersCanWrite) {
  const auto path = write("agentos.toml", "", 0666);
  auto f = load_config_file(path);
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message().find("writable by group or others (mode 0666)"), std::string::npos)
      << f.error().message();
  ::chmod(path.c_str(), 0640);
  EXPECT_TRUE(load_config_file(path).has_value());
}

TEST_F(ConfigFileOnDisk, RefusesADirectory) {
  auto f = load_config_file(dir_.string());
  ASSERT_FALSE(f.has_value());
  EXPECT_NE(f.error().message().find("not a regular file"), std::string::npos)
      << f.error().message();
}

// The sample shipped at the repository root must always load.
TEST(ConfigFileSample, RepositoryAgentosTomlLoads) {
  const char* root = std::getenv("AGENTOS_SOURCE_DIR");
  if (root == nullptr) GTEST_SKIP() << "AGENTOS_SOURCE_DIR not set (run through ctest)";
  const auto path = fs::path(root) / "agentos.toml";
  auto f = load_config_file(path.string());
  ASSERT_TRUE(f.has_value()) << f.error().message();
  EXPECT_TRUE(f->kernel.socket.has_value());
  ASSERT_GE(f->agents.size(), 2u);
  bool on_failure = false;
  for (const auto& agent : f->agents) {
    EXPECT_TRUE(fs::path(agent["script"].get<std::string>()).is_absolute()) << agent.dump();
    EXPECT_TRUE(fs::is_regular_file(agent["script"].get<std::string>())) << agent.dump();
    on_failure = on_failure || agent.value("restart", "") == "on-failure";
  }
  EXPECT_TRUE(on_failure) << "the sample should show a restart policy";
}

// --- layered_config ------------------------------------------------------------------

GetenvFn fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(LayeredConfig, FileOverDefaultsAndEnvironmentOverFile) {
  auto f = parse_ok(R"([kernel]
socket = "/file.sock"
max_connections = 7
no_sandbox = true
log_max_bytes = "2M"
llm_provider = "openai"
llm_model = "file-model"
llm_base_url = "http://127.0.0.1:1/v1"
llm_rpm = 12.5
llm_scheduler = "fifo"
[[agent]]
name = "a"
script = "/a.py"
)");
  f.path = kSource;
  auto cfg = layered_config(f, fake_env({}));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->socket_path, "/file.sock");
  EXPECT_EQ(cfg->max_connections, 7u);
  EXPECT_FALSE(cfg->enable_sandboxing);
  EXPECT_EQ(cfg->log_max_bytes, 2u << 20);
  EXPECT_EQ(cfg->llm.provider, "openai");
  EXPECT_EQ(cfg->llm.model, "file-model");
  EXPECT_EQ(cfg->llm.base_url, "http://127.0.0.1:1/v1");
  EXPECT_EQ(cfg->llm.rpm, 12.5);
  EXPECT_EQ(cfg->llm.scheduler, "fifo");
  EXPECT_EQ(cfg->config_path, kSource);
  ASSERT_EQ(cfg->declared_agents.size(), 1u);
  EXPECT_EQ(cfg->declared_agents[0]["name"], "a");

  auto env = layered_config(f, fake_env({{"AGENTOS_SOCKET", "/env.sock"},
                                         {"AGENTOS_LLM_MODEL", "env-model"},
                                         {"AGENTOS_LLM_RPM", "99"},
                                         {"OPENAI_BASE_URL", "http://127.0.0.1:2/v1"}}));
  ASSERT_TRUE(env.has_value()) << env.error().message();
  EXPECT_EQ(env->socket_path, "/env.sock");
  EXPECT_EQ(env->llm.model, "env-model");
  EXPECT_EQ(env->llm.rpm, 99.0);
  EXPECT_EQ(env->llm.base_url, "http://127.0.0.1:2/v1");
  EXPECT_EQ(env->llm.scheduler, "fifo");  // not in the environment: the file's
  EXPECT_EQ(env->max_connections, 7u);
}

TEST(LayeredConfig, FileNamedProviderBeatsTheKeyFoundInTheEnvironment) {
  auto f = parse_ok("[kernel]\nllm_provider = \"openai\"\n");
  auto cfg = layered_config(f, fake_env({{"GEMINI_API_KEY", "g"}, {"OPENAI_API_KEY", "o"}}));
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->llm.provider, "openai");
  EXPECT_EQ(cfg->llm.api_key, "o");
  auto named =
      layered_config(f, fake_env({{"AGENTOS_LLM_PROVIDER", "gemini"}, {"GEMINI_API_KEY", "g"}}));
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(named->llm.provider, "gemini");
}

TEST(LayeredConfig, WithoutAFileItIsDefaultsAndEnvironment) {
  auto cfg = layered_config(std::nullopt, fake_env({{"AGENTOS_SOCKET", "/e.sock"}}));
  ASSERT_TRUE(cfg.has_value());
  const KernelConfig defaults;
  EXPECT_EQ(cfg->socket_path, "/e.sock");
  EXPECT_EQ(cfg->max_connections, defaults.max_connections);
  EXPECT_EQ(cfg->stats_interval_ms, 1000u);
  EXPECT_EQ(cfg->log_max_bytes, 10u << 20);
  EXPECT_EQ(cfg->log_max_files, 3u);
  EXPECT_TRUE(cfg->config_path.empty());
  EXPECT_TRUE(cfg->declared_agents.empty());
}

// --- plan_reload ---------------------------------------------------------------------

json spec(const std::string& name, const std::string& script = "/x.py") {
  return {{"name", name}, {"script", script}};
}

TEST(PlanReload, StartStopRestartKeep) {
  const std::vector<json> running = {spec("a"), spec("b"), spec("c"), spec("d")};
  const std::vector<json> wanted = {spec("e"), spec("c", "/new.py"), spec("a"), spec("f")};
  auto plan = plan_reload(running, wanted);
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  EXPECT_EQ(plan->start, (std::vector<json>{spec("e"), spec("f")}));
  EXPECT_EQ(plan->stop, (std::vector<std::string>{"d", "b"}));  // reverse of running order
  EXPECT_EQ(plan->restart, (std::vector<json>{spec("c", "/new.py")}));
  EXPECT_EQ(plan->keep, (std::vector<std::string>{"a"}));
}

TEST(PlanReload, EmptySides) {
  auto boot = plan_reload({}, {spec("a"), spec("b")});
  ASSERT_TRUE(boot.has_value());
  EXPECT_EQ(boot->start.size(), 2u);
  EXPECT_TRUE(boot->stop.empty() && boot->restart.empty() && boot->keep.empty());
  auto none = plan_reload({spec("a"), spec("b")}, {});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->stop, (std::vector<std::string>{"b", "a"}));
}

TEST(PlanReload, AnyChangeRestartsButKeyOrderAndNumberTypeDoNot) {
  json with_limits = spec("a");
  with_limits["limits"] = {{"memory", 1 << 30}};
  json same = json::parse(with_limits.dump());  // unsigned where the original is signed
  json changed = with_limits;
  changed["limits"]["memory"] = 1 << 29;
  json defaulted = spec("a");
  defaulted["sandboxed"] = true;
  auto plan = plan_reload({with_limits}, {same});
  ASSERT_TRUE(plan.has_value());
  EXPECT_EQ(plan->keep, (std::vector<std::string>{"a"}));
  auto plan2 = plan_reload({with_limits}, {changed});
  ASSERT_TRUE(plan2.has_value());
  EXPECT_EQ(plan2->restart.size(), 1u);
  auto plan3 = plan_reload({spec("a")}, {defaulted});
  ASSERT_TRUE(plan3.has_value());
  EXPECT_EQ(plan3->restart.size(), 1u);
}

TEST(PlanReload, RefusesNamelessAndDuplicateEntries) {
  EXPECT_FALSE(plan_reload({json{{"script", "/x"}}}, {}).has_value());
  EXPECT_FALSE(plan_reload({}, {json{{"name", 3}}}).has_value());
  EXPECT_FALSE(plan_reload({}, {json::array()}).has_value());
  auto dup = plan_reload({spec("a"), spec("a")}, {});
  ASSERT_FALSE(dup.has_value());
  EXPECT_NE(dup.error().message().find("'a' twice"), std::string::npos);
}

}  // namespace
}  // namespace agentos

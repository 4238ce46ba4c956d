#include "runtime/agent_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace agentos::runtime {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr size_t kPrefix = 27 + 1 + 6 + 1;  // timestamp, space, stream, space

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/agentos-log-test-XXXXXX";
    path = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// 2026-11-24T10:15:02.123456Z; counts the reads that asked for a time.
struct FixedClock {
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  AgentLog::WallClock fn() const {
    return [c = calls] {
      ++*c;
      return std::chrono::system_clock::time_point(1'795'515'302'123'456us);
    };
  }
};

void write_all(const UniqueFd& fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd.get(), data.data(), data.size());
    ASSERT_GT(n, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t disk_usage(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

std::string numbered(int i, size_t width = 40) {
  char head[32];
  std::snprintf(head, sizeof head, "line %08d ", i);
  std::string s(head);
  s.resize(width, 'x');
  return s;
}

class AgentLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = Reactor::create();
    ASSERT_TRUE(r) << r.error().message();
    reactor_ = std::move(*r);
    ASSERT_FALSE(dir_.path.empty());
    path_ = dir_.path + "/agent-7.log";
  }

  std::unique_ptr<AgentLog> open_log(LogOptions o = {}) {
    auto log = AgentLog::open(*reactor_, path_, std::move(o), clock_.fn());
    EXPECT_TRUE(log) << log.error().message();
    return log ? std::move(*log) : nullptr;
  }

  // Runs the loop until `done` (a hang guard, not a timing assertion).
  template <class Pred>
  bool spin_until(Pred done) {
    const auto deadline = Clock::now() + 60s;
    while (!done() && Clock::now() < deadline) EXPECT_TRUE(reactor_->run_once(100));
    return done();
  }

  // Writes `out`/`err` on a fresh run, closes the pipes and waits for EOF.
  void run_once(AgentLog& log, std::string_view out, std::string_view err = {}) {
    auto pipes = log.attach();
    ASSERT_TRUE(pipes) << pipes.error().message();
    write_all(pipes->out, out);
    write_all(pipes->err, err);
    pipes->out.reset();
    pipes->err.reset();
    ASSERT_TRUE(spin_until([&] { return !log.attached(); }));
  }

  // Pages through everything kept, checking the paging invariants on the way.
  std::vector<LogLine> read_all(const AgentLog& log, size_t max_bytes = 1 << 30) {
    std::vector<LogLine> all;
    uint64_t since = log.oldest_offset();
    for (;;) {
      auto page = log.read({.since = since, .max_bytes = max_bytes});
      EXPECT_TRUE(page) << page.error().message();
      if (!page) return all;
      EXPECT_EQ(page->start, since);  // no gap, no overlap
      EXPECT_FALSE(page->truncated);
      size_t stored = 0;
      for (const auto& l : page->lines) {
        EXPECT_EQ(l.offset, since + stored);
        stored += kPrefix + l.text.size() + 1;
      }
      if (page->lines.size() > 1) {
        EXPECT_LE(stored, max_bytes);
      }
      EXPECT_EQ(page->next - page->start, stored);
      if (page->lines.empty()) {
        EXPECT_EQ(page->next, log.bytes_written());
        return all;
      }
      all.insert(all.end(), page->lines.begin(), page->lines.end());
      since = page->next;
    }
  }

  TempDir dir_;
  std::string path_;
  FixedClock clock_;
  std::unique_ptr<Reactor> reactor_;
};

TEST_F(AgentLogTest, TagsBothStreamsWithUtcMicrosecondTimestamps) {
  auto log = open_log();
  run_once(*log, "hello\n", "oops\n");
  EXPECT_EQ(slurp(path_).size(), log->bytes_written());
  std::set<std::string> raw;
  std::istringstream in(slurp(path_));
  for (std::string l; std::getline(in, l);) raw.insert(l);
  EXPECT_EQ(raw, (std::set<std::string>{"2026-11-24T10:15:02.123456Z stdout hello",
                                         "2026-11-24T10:15:02.123456Z stderr oops"}));
  auto lines = read_all(*log);
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) {
    EXPECT_EQ(l.ts, "2026-11-24T10:15:02.123456Z");
    EXPECT_EQ(l.text, l.stream == "stdout" ? "hello" : "oops");
  }
  EXPECT_EQ(log->dropped_lines(), 0u);
}

TEST_F(AgentLogTest, RealClockTimestampsAreUtcIso8601) {
  auto r = AgentLog::open(*reactor_, path_);
  ASSERT_TRUE(r);
  run_once(**r, "x\n");
  auto lines = read_all(**r);
  ASSERT_EQ(lines.size(), 1u);
  const std::string& ts = lines[0].ts;
  ASSERT_EQ(ts.size(), 27u) << ts;
  for (size_t i : {4u, 7u}) EXPECT_EQ(ts[i], '-');
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts[19], '.');
  EXPECT_EQ(ts[26], 'Z');
  std::tm tm{};
  const time_t now = ::time(nullptr);
  ::gmtime_r(&now, &tm);
  EXPECT_EQ(ts.substr(0, 4), std::to_string(tm.tm_year + 1900));
}

TEST_F(AgentLogTest, PartialLineWaitsForItsNewline) {
  auto log = open_log();
  auto pipes = log->attach();
  ASSERT_TRUE(pipes);
  write_all(pipes->out, "par");
  ASSERT_TRUE(spin_until([&] { return *clock_.calls >= 1; }));  // "par" was read
  EXPECT_EQ(log->bytes_written(), 0u);
  write_all(pipes->out, "tial\nnext\n");
  pipes->out.reset();
  pipes->err.reset();
  ASSERT_TRUE(spin_until([&] { return !log->attached(); }));
  auto lines = read_all(*log);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "partial");
  EXPECT_EQ(lines[1].text, "next");
}

TEST_F(AgentLogTest, SplitsLongLinesAtUtf8Boundaries) {
  auto log = open_log({.max_line = 10});
  // 25 bytes; exactly 10 (no empty line after it); "é" straddling byte 10.
  run_once(*log, std::string(25, 'a') + "\n" + std::string(10, 'b') + "\n" +
                     std::string(9, 'c') + "\xc3\xa9" + "d\n");
  auto lines = read_all(*log);
  std::vector<std::string> texts;
  for (const auto& l : lines) texts.push_back(l.text);
  EXPECT_EQ(texts, (std::vector<std::string>{std::string(10, 'a'), std::string(10, 'a'),
                                             std::string(5, 'a'), std::string(10, 'b'),
                                             std::string(9, 'c'), "\xc3\xa9" "d"}));
}

TEST_F(AgentLogTest, FlushesTrailingPartialLineAtEof) {
  auto log = open_log();
  run_once(*log, "done\nno newline", "err tail");
  auto lines = read_all(*log);
  std::set<std::string> texts;
  for (const auto& l : lines) texts.insert(l.stream + ":" + l.text);
  EXPECT_EQ(texts, (std::set<std::string>{"stdout:done", "stdout:no newline", "stderr:err tail"}));
}

TEST_F(AgentLogTest, DrainReadsWhatIsLeftWithoutTheLoop) {
  auto log = open_log();
  auto pipes = log->attach();
  ASSERT_TRUE(pipes);
  write_all(pipes->out, "one\ntwo\nthr");
  pipes->out.reset();
  log->drain();  // the write end of stderr is still open: must not block
  EXPECT_FALSE(log->attached());
  auto lines = read_all(*log);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2].text, "thr");
  EXPECT_EQ(reactor_->watched_fds(), 0u);
}

TEST_F(AgentLogTest, NewRunAppendsToTheSameHistory) {
  auto log = open_log();
  run_once(*log, "run 1\n");
  const uint64_t after_first = log->bytes_written();
  run_once(*log, "run 2\n");
  auto page = log->read({.since = after_first});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->lines.size(), 1u);
  EXPECT_EQ(page->lines[0].text, "run 2");
  EXPECT_EQ(page->start, after_first);
}

// Many lines through one pipe, from a writer thread (the pipe blocks it).
void flood(const UniqueFd& fd, int lines, size_t width) {
  std::string chunk;
  for (int i = 0; i < lines; ++i) {
    chunk += numbered(i, width) + "\n";
    if (chunk.size() > (256 << 10) || i == lines - 1) {
      write_all(fd, chunk);
      chunk.clear();
    }
  }
}

TEST_F(AgentLogTest, RotationBoundsDiskUnderAFlood) {
  const LogOptions o{.max_file_bytes = 256 << 10, .max_files = 2};
  auto log = open_log(o);
  auto pipes = log->attach();
  ASSERT_TRUE(pipes);
  constexpr int kLines = 160'000;  // 160k x (100 + 36) bytes ~ 21 MiB
  std::thread writer([&, fd = std::move(pipes->out)] { flood(fd, kLines, 100); });
  pipes->err.reset();
  const bool ended = spin_until([&] { return !log->attached(); });
  writer.join();
  ASSERT_TRUE(ended);

  EXPECT_EQ(log->bytes_written(), uint64_t{kLines} * (kPrefix + 100 + 1));
  EXPECT_LE(disk_usage(dir_.path), (o.max_files + 1) * o.max_file_bytes);
  EXPECT_TRUE(fs::exists(path_ + ".2"));
  EXPECT_FALSE(fs::exists(path_ + ".3"));
  EXPECT_EQ(log->bytes_written() - log->oldest_offset(), disk_usage(dir_.path));

  auto lines = read_all(*log, 64 << 10);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back().text, numbered(kLines - 1, 100));  // the newest is intact
  const int first = std::stoi(lines.front().text.substr(5, 8));
  for (size_t i = 0; i < lines.size(); ++i)
    ASSERT_EQ(lines[i].text, numbered(first + static_cast<int>(i), 100)) << i;
  EXPECT_EQ(log->oldest_offset(), uint64_t(first) * (kPrefix + 101));
  EXPECT_EQ(log->dropped_lines(), 0u);
}

TEST_F(AgentLogTest, NoRotatedFilesKeepsOnlyTheCurrentOne) {
  auto log = open_log({.max_file_bytes = 1000, .max_files = 0});
  std::string out;
  for (int i = 0; i < 100; ++i) out += numbered(i, 40) + "\n";
  run_once(*log, out);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path), fs::directory_iterator()), 1);
  EXPECT_LE(fs::file_size(path_), 1000u);
  auto lines = read_all(*log);
  ASSERT_EQ(lines.size(), 100u % 13);  // 13 lines of 76 bytes fill a file
  EXPECT_EQ(lines.back().text, numbered(99, 40));
}

TEST_F(AgentLogTest, TailSpansRotatedFiles) {
  auto log = open_log({.max_file_bytes = 1000, .max_files = 3});
  std::string out;
  for (int i = 0; i < 100; ++i) out += numbered(i, 40) + "\n";  // 76 bytes stored
  run_once(*log, out);
  // 13 lines per file, 4 files: 52 kept at most.
  auto tail = log->read({.tail_lines = 30});
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->lines.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(tail->lines[i].text, numbered(70 + i, 40));
  EXPECT_EQ(tail->next, log->bytes_written());
  EXPECT_EQ(tail->start, log->bytes_written() - 30 * 76);

  auto all = log->read({.tail_lines = 10'000});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->start, log->oldest_offset());
  EXPECT_EQ(all->lines.size(), (log->bytes_written() - log->oldest_offset()) / 76);
  EXPECT_EQ(all->lines.back().text, numbered(99, 40));

  auto none = log->read({.tail_lines = 0});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->lines.empty());
  EXPECT_EQ(none->start, log->bytes_written());
  EXPECT_EQ(none->next, log->bytes_written());
}

TEST_F(AgentLogTest, TailRespectsMaxBytesAndContinuesWithSince) {
  auto log = open_log({.max_file_bytes = 1000, .max_files = 3});
  std::string out;
  for (int i = 0; i < 100; ++i) out += numbered(i, 40) + "\n";
  run_once(*log, out);
  auto first = log->read({.tail_lines = 20, .max_bytes = 5 * 76});
  ASSERT_TRUE(first);
  ASSERT_EQ(first->lines.size(), 5u);
  EXPECT_EQ(first->lines[0].text, numbered(80, 40));
  auto rest = log->read({.since = first->next, .max_bytes = 1 << 20});
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->lines.size(), 15u);
  EXPECT_EQ(rest->lines[0].text, numbered(85, 40));
}

TEST_F(AgentLogTest, SincePagesCoverTheKeptLogExactly) {
  auto log = open_log({.max_file_bytes = 4096, .max_files = 3});
  std::string out;
  for (int i = 0; i < 500; ++i) out += numbered(i, static_cast<size_t>(20 + i % 50)) + "\n";
  run_once(*log, out);
  const auto whole = read_all(*log);
  ASSERT_GT(whole.size(), 10u);
  for (size_t max : {1u, 100u, 300u, 1000u, 5000u}) {
    const auto paged = read_all(*log, max);  // checks start == previous next
    ASSERT_EQ(paged.size(), whole.size()) << max;
    for (size_t i = 0; i < paged.size(); ++i) EXPECT_EQ(paged[i].text, whole[i].text);
  }
  EXPECT_EQ(whole.back().text, numbered(499, 20 + 499 % 50));
}

TEST_F(AgentLogTest, SinceRotatedAwayStartsAtOldestAndSaysTruncated) {
  auto log = open_log({.max_file_bytes = 1000, .max_files = 1});
  std::string out;
  for (int i = 0; i < 100; ++i) out += numbered(i, 40) + "\n";
  run_once(*log, out);
  ASSERT_GT(log->oldest_offset(), 0u);
  auto page = log->read({.since = 0});
  ASSERT_TRUE(page);
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->start, log->oldest_offset());
  ASSERT_FALSE(page->lines.empty());
  EXPECT_EQ(page->lines.back().text, numbered(99, 40));

  auto beyond = log->read({.since = log->bytes_written() + 1000});
  ASSERT_TRUE(beyond);
  EXPECT_TRUE(beyond->lines.empty());
  EXPECT_FALSE(beyond->truncated);
  EXPECT_EQ(beyond->next, log->bytes_written());
}

TEST_F(AgentLogTest, SinceInsideALineSkipsToTheNextLine) {
  auto log = open_log();
  run_once(*log, "first\nsecond\n");
  auto page = log->read({.since = 3});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->lines.size(), 1u);
  EXPECT_EQ(page->lines[0].text, "second");
  EXPECT_EQ(page->start, kPrefix + 6);
}

TEST_F(AgentLogTest, WriteFailuresDropLinesButKeepDrainingThePipe) {
  auto failing = std::make_shared<std::atomic<bool>>(true);
  LogOptions o;
  o.write_fn = [failing](int fd, const void* data, size_t len) -> ssize_t {
    if (*failing) return errno = ENOSPC, -1;
    return ::write(fd, data, len);
  };
  auto log = open_log(std::move(o));
  auto pipes = log->attach();
  ASSERT_TRUE(pipes);
  // 4 MiB: far more than a pipe holds, so the writer finishes only if the
  // log keeps reading while it cannot write.
  constexpr int kLines = 40'000;
  std::thread writer([&, fd = std::move(pipes->out)] { flood(fd, kLines, 100); });
  pipes->err.reset();
  const bool ended = spin_until([&] { return !log->attached(); });
  writer.join();
  ASSERT_TRUE(ended);
  EXPECT_EQ(log->dropped_lines(), uint64_t{kLines});
  EXPECT_EQ(log->bytes_written(), 0u);

  *failing = false;  // the disk has room again
  run_once(*log, "back\n");
  auto lines = read_all(*log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "back");
  EXPECT_EQ(log->dropped_lines(), uint64_t{kLines});
}

TEST_F(AgentLogTest, ShortWriteLeavesOnlyWholeLines) {
  auto budget = std::make_shared<size_t>(kPrefix + 4 + 10);  // one line and a bit
  LogOptions o;
  o.write_fn = [budget](int fd, const void* data, size_t len) -> ssize_t {
    if (*budget == 0) return errno = EIO, -1;
    const ssize_t n = ::write(fd, data, std::min(len, *budget));
    if (n > 0) *budget -= static_cast<size_t>(n);
    return n;
  };
  auto log = open_log(std::move(o));
  auto pipes = log->attach();
  ASSERT_TRUE(pipes);
  write_all(pipes->out, "aaaa\nbbbb\ncccc\n");  // one read, one batch
  pipes->out.reset();
  pipes->err.reset();
  ASSERT_TRUE(spin_until([&] { return !log->attached(); }));
  EXPECT_EQ(slurp(path_), "2026-11-24T10:15:02.123456Z stdout aaaa\n");
  EXPECT_EQ(log->bytes_written(), kPrefix + 5);
  EXPECT_EQ(log->dropped_lines(), 2u);
}

TEST_F(AgentLogTest, FailedRotationDropsLinesInsteadOfGrowing) {
  // path.1 is a non-empty directory: rename(path, path.1) fails.
  fs::create_directories(path_ + ".1/blocker");
  auto log = open_log({.max_file_bytes = 1000, .max_files = 1});
  std::string out;
  for (int i = 0; i < 100; ++i) out += numbered(i, 40) + "\n";
  run_once(*log, out);
  EXPECT_LE(fs::file_size(path_), 1000u);
  EXPECT_EQ(log->dropped_lines(), 100u - 1000 / 76);
  auto lines = read_all(*log);
  ASSERT_EQ(lines.size(), 1000u / 76);
  EXPECT_EQ(lines.back().text, numbered(1000 / 76 - 1, 40));

  fs::remove_all(path_ + ".1");  // fixed: rotation works again
  run_once(*log, "after\n");
  EXPECT_TRUE(fs::is_regular_file(path_ + ".1"));
  auto tail = log->read({.tail_lines = 1});
  ASSERT_TRUE(tail);
  ASSERT_EQ(tail->lines.size(), 1u);
  EXPECT_EQ(tail->lines[0].text, "after");
}

TEST_F(AgentLogTest, ReopenContinuesTheHistoryOnDisk) {
  uint64_t before = 0;
  {
    auto log = open_log({.max_file_bytes = 1000, .max_files = 2});
    std::string out;
    for (int i = 0; i < 30; ++i) out += numbered(i, 40) + "\n";
    run_once(*log, out);
    before = log->bytes_written();
  }
  // A kernel that died mid-line left a fragment.
  {
    std::ofstream f(path_, std::ios::app);
    f << "2026-11-24T10:15:02.123456Z stdout cut sho";
  }
  auto log = open_log({.max_file_bytes = 1000, .max_files = 2});
  EXPECT_EQ(log->bytes_written(), disk_usage(dir_.path));
  EXPECT_EQ(log->oldest_offset(), 0u);
  EXPECT_GT(log->bytes_written(), before);
  run_once(*log, "new run\n");
  auto lines = read_all(*log);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[lines.size() - 2].text, "cut sho");
  EXPECT_EQ(lines.back().text, "new run");
  EXPECT_EQ(lines[0].text, numbered(0, 40));
}

TEST_F(AgentLogTest, ReopenRemovesFilesBeyondMaxFiles) {
  for (const char* s : {".1", ".2", ".3"}) std::ofstream(path_ + s) << "x\n";
  auto log = open_log({.max_files = 1});
  EXPECT_TRUE(fs::exists(path_ + ".1"));
  EXPECT_FALSE(fs::exists(path_ + ".2"));
  EXPECT_FALSE(fs::exists(path_ + ".3"));
  EXPECT_EQ(log->bytes_written(), 2u);
}

TEST_F(AgentLogTest, WaitersAreWokenOnceByNewLines) {
  auto log = open_log();
  auto pipes = log->attach();
  ASSERT_TRUE(pipes);
  int woken = 0, cancelled = 0, again = 0;
  LogWaiter rearmed;
  LogWaiter w = log->on_append([&] {
    ++woken;
    // Registered from a callback: waits for the next lines, not these.
    rearmed = log->on_append([&] { ++again; });
  });
  {
    LogWaiter gone = log->on_append([&] { ++cancelled; });
  }
  EXPECT_TRUE(w.pending());
  write_all(pipes->out, "ping\n");
  ASSERT_TRUE(spin_until([&] { return woken > 0; }));
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(again, 0);
  EXPECT_EQ(cancelled, 0);
  EXPECT_FALSE(w.pending());
  EXPECT_TRUE(rearmed.pending());
  auto page = log->read({.since = 0});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->lines.size(), 1u);

  log->notify_waiters();  // e.g. the agent ended
  EXPECT_EQ(again, 1);
  EXPECT_EQ(woken, 1);
  // A wake already queued survives the log; the waiter outlives it too.
  int queued = 0;
  LogWaiter late = log->on_append([&] { ++queued; });
  write_all(pipes->out, "pong\n");
  pipes->out.reset();
  pipes->err.reset();
  log->drain();
  EXPECT_EQ(queued, 0);  // deferred, not called from inside drain()
  log.reset();
  ASSERT_TRUE(reactor_->run_once(0));
  EXPECT_EQ(queued, 1);
  LogWaiter orphan = std::move(late);
  EXPECT_FALSE(orphan.pending());
  orphan.cancel();
}

TEST_F(AgentLogTest, RejectsZeroSizes) {
  auto r = AgentLog::open(*reactor_, path_, {.max_file_bytes = 0});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  auto missing = AgentLog::open(*reactor_, dir_.path + "/no/such/dir/x.log");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
}

}  // namespace
}  // namespace agentos::runtime

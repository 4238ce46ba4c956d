// Agent log benchmark: what capturing and tailing an agent's output costs.
//
//   build/bench/log_bench [MiB of output per run, default 64] [dir, default /tmp]
//
// The directory decides what the file writes cost: on a disk filesystem
// writeback makes both figures noisy; /dev/shm measures the capture path's
// CPU alone.
// capture: a writer thread floods a pipe with lines; AgentLog reads it on
//   the reactor, stamps and splits each line and appends it to the file.
//   Baseline, same pipe and same bytes: a blocking read()/write() copy from
//   the pipe to a file, the floor for moving those bytes at all.
// tail: the last N lines of a 10 MiB log through AgentLog::read(). Baseline:
//   a minimal backward scan (pread 64 KiB blocks from the end, memrchr for
//   newlines, copy the lines out) with no parsing.
// Prints, for capture, the reading thread's CPU per MiB and the wall-clock
// MiB/s; for tail, µs per call; each with the ratio AgentLog / baseline.
#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kernel/reactor.hpp"
#include "runtime/agent_log.hpp"

namespace {

using agentos::Clock;
using agentos::UniqueFd;
using agentos::runtime::AgentLog;
namespace fs = std::filesystem;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "log_bench: %s\n", what.c_str());
  std::exit(1);
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// CPU time of the calling thread: the reading side's cost, which is what the
// kernel pays per byte of agent output. Wall time also depends on where the
// scheduler puts writer and reader on this 2-CPU machine.
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Cost {
  double wall = 0;  // seconds
  double cpu = 0;   // seconds of the reading thread
};

std::string lines_of(size_t width, size_t total) {
  std::string out;
  out.reserve(total + width + 1);
  char head[32];
  for (size_t i = 0; out.size() < total; ++i) {
    std::string line(width, 'x');
    const int n = std::snprintf(head, sizeof head, "line %08zu ", i);
    line.replace(0, static_cast<size_t>(n), head);
    out += line;
    out += '\n';
  }
  return out;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n <= 0) die(std::string("write: ") + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// The floor: copy the pipe to a file with blocking read()/write().
Cost raw_copy(const std::string& data, const std::string& path) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) die("pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  UniqueFd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
  if (!file) die("open " + path);
  const auto t0 = Clock::now();
  const double c0 = thread_cpu_seconds();
  std::thread writer([&] {
    write_all(wr.get(), data);
    wr.reset();
  });
  std::vector<char> buf(64 << 10);
  for (;;) {
    const ssize_t n = ::read(rd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read");
    if (n == 0) break;
    write_all(file.get(), {buf.data(), static_cast<size_t>(n)});
  }
  writer.join();
  return {seconds_since(t0), thread_cpu_seconds() - c0};
}

Cost agent_log_run(agentos::Reactor& reactor, const std::string& data, const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
  auto log = AgentLog::open(reactor, path, {.max_file_bytes = uint64_t(1) << 40, .max_files = 2});
  if (!log) die(log.error().message());
  auto pipes = (*log)->attach();
  if (!pipes) die(pipes.error().message());
  pipes->err.reset();
  const auto t0 = Clock::now();
  const double c0 = thread_cpu_seconds();
  std::thread writer([&, out = std::move(pipes->out)]() mutable {
    write_all(out.get(), data);
    out.reset();
  });
  while ((*log)->attached())
    if (!reactor.run_once(100)) die("reactor");
  writer.join();
  return {seconds_since(t0), thread_cpu_seconds() - c0};
}

// The last `n` lines of `path`, scanning backwards in 64 KiB blocks.
std::vector<std::string> raw_tail(const std::string& path, uint64_t n) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) die("open " + path);
  const auto size = static_cast<off_t>(fs::file_size(path));
  std::string tail;  // the bytes after the cut, grown backwards
  uint64_t newlines = 0;
  off_t pos = size;
  size_t cut = std::string::npos;
  std::vector<char> block(64 << 10);
  while (pos > 0 && cut == std::string::npos) {
    const size_t len = static_cast<size_t>(std::min<off_t>(pos, static_cast<off_t>(block.size())));
    pos -= static_cast<off_t>(len);
    if (::pread(fd.get(), block.data(), len, pos) != static_cast<ssize_t>(len)) die("pread");
    tail.insert(0, block.data(), len);
    // Count newlines in the new block only, from its end; the file's last
    // newline ends the last line and does not start one.
    for (size_t i = len; i-- > 0;) {
      if (tail[i] != '\n' || (pos + static_cast<off_t>(i) == size - 1)) continue;
      if (++newlines == n) {
        cut = i + 1;
        break;
      }
    }
  }
  std::vector<std::string> lines;
  size_t start = cut == std::string::npos ? 0 : cut;
  while (start < tail.size()) {
    size_t end = tail.find('\n', start);
    if (end == std::string::npos) end = tail.size();
    lines.emplace_back(tail, start, end - start);
    start = end + 1;
  }
  return lines;
}

void header() {
  utsname u{};
  ::uname(&u);
  double load[1] = {0};
  (void)::getloadavg(load, 1);
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::printf("# log_bench, %s, %s %s, %u cpus, load %.2f\n", date, u.sysname, u.release,
              std::thread::hardware_concurrency(), load[0]);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
  if (mib == 0 || mib > 4096) die("usage: log_bench [MiB per run, 1..4096] [dir]");
  const std::string parent = argc > 2 ? argv[2] : "/tmp";
  auto reactor = agentos::Reactor::create();
  if (!reactor) die(reactor.error().message());
  std::string tmpl = parent + "/agentos-log-bench-XXXXXX";
  if (!::mkdtemp(tmpl.data())) die("mkdtemp in " + parent + ": " + std::strerror(errno));
  const std::string dir = tmpl;
  header();
  std::printf("# files in %s\n", dir.c_str());

  std::printf("\ncapture, %zu MiB per run, best of 5; CPU of the reading thread and wall time\n", mib);
  std::printf("%-6s %13s %13s %7s %12s %12s %7s\n", "width", "raw cpu ms/MiB", "log cpu ms/MiB",
              "ratio", "raw MiB/s", "log MiB/s", "ratio");
  for (size_t width : {80u, 1000u}) {
    const std::string data = lines_of(width, mib << 20);
    Cost raw{1e9, 1e9}, ours{1e9, 1e9};
    for (int i = 0; i < 5; ++i) {
      const Cost r = raw_copy(data, dir + "/raw.log");
      const Cost o = agent_log_run(**reactor, data, dir + "/agent.log");
      raw = {std::min(raw.wall, r.wall), std::min(raw.cpu, r.cpu)};
      ours = {std::min(ours.wall, o.wall), std::min(ours.cpu, o.cpu)};
    }
    const double mb = static_cast<double>(data.size()) / (1 << 20);
    std::printf("%-6zu %13.3f %13.3f %7.2f %12.0f %12.0f %7.2f\n", width, raw.cpu * 1e3 / mb,
                ours.cpu * 1e3 / mb, ours.cpu / raw.cpu, mb / raw.wall, mb / ours.wall, raw.wall / ours.wall);
  }

  // A 10 MiB log of 80-byte lines, written through AgentLog itself.
  const std::string path = dir + "/tail.log";
  (void)agent_log_run(**reactor, lines_of(80, 10 << 20), path);
  auto log = AgentLog::open(**reactor, path, {.max_file_bytes = uint64_t(1) << 40, .max_files = 2});
  if (!log) die(log.error().message());
  std::printf("\ntail of a %.1f MiB log, mean of 50\n", static_cast<double>(fs::file_size(path)) / (1 << 20));
  std::printf("%-10s %12s %14s %8s\n", "lines", "raw µs", "AgentLog µs", "ratio");
  for (uint64_t n : {uint64_t{1}, uint64_t{100}, uint64_t{10'000}}) {
    constexpr int kReps = 50;
    size_t got_raw = 0, got = 0;
    auto t0 = Clock::now();
    for (int i = 0; i < kReps; ++i) got_raw = raw_tail(path, n).size();
    const double raw_us = seconds_since(t0) * 1e6 / kReps;
    t0 = Clock::now();
    for (int i = 0; i < kReps; ++i) {
      auto page = (*log)->read({.tail_lines = n, .max_bytes = size_t(16) << 20});
      if (!page) die(page.error().message());
      got = page->lines.size();
    }
    const double us = seconds_since(t0) * 1e6 / kReps;
    if (got != n || got_raw != n) die("tail returned " + std::to_string(got) + "/" + std::to_string(got_raw) + " lines");
    std::printf("%-10llu %12.0f %14.0f %8.2f\n", static_cast<unsigned long long>(n), raw_us, us, us / raw_us);
  }
  log->reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

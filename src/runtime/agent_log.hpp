// Capture and reading of an agent's stdout/stderr (PROTOCOL.md, LOGS).
//
// The kernel gives each run of an agent two pipes; AgentLog reads them on the
// reactor and appends every line to `<dir>/<name>-<id>.log` as
//
//     2026-11-24T10:15:02.123456Z stdout hello
//
// with size-based rotation into `.1` … `.max_files`. Each stored line has a
// logical offset in the agent's log history: the number of bytes stored
// before it, monotonic across rotations. The files hold nothing but lines,
// so an offset maps to (file, position) through the in-memory table of the
// files' starting offsets. LOGS replies page through that history.
//
// A line's timestamp is when the kernel read its first byte. Everything runs
// on the reactor thread; lines become visible to read() at the end of the
// wake-up that completed them (partial lines are not visible).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/reactor.hpp"
#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos::runtime {

struct LogOptions {
  /// A file is rotated before a line would take it past this size.
  uint64_t max_file_bytes = 10 << 20;
  /// Rotated files kept besides the current one; 0 = the current one only.
  unsigned max_files = 3;
  /// Longer lines are split (at a UTF-8 boundary) into lines of at most this.
  size_t max_line = 16 << 10;
  /// Bytes read per stream per wake-up, so a flooding agent cannot hold the
  /// loop; the level-triggered watch brings us back for the rest.
  size_t read_budget = 64 << 10;
  /// Test hook: replaces ::write() for the log file (inject ENOSPC/EIO).
  std::function<ssize_t(int fd, const void* data, size_t len)> write_fn = {};
};

/// The write ends for the child's stdout and stderr (blocking, O_CLOEXEC:
/// the spawner dup2()s them to 1 and 2). Close them in the parent right
/// after the spawn, or EOF never arrives.
struct StdioPipes {
  UniqueFd out;
  UniqueFd err;
};

struct LogLine {
  std::string ts;      // "2026-11-24T10:15:02.123456Z"
  std::string stream;  // "stdout" or "stderr"
  std::string text;    // without the newline
  /// Logical offset of the line (not sent on the wire; lets a caller that
  /// trims a page set `next` to the first line it dropped).
  uint64_t offset = 0;
};

struct LogQuery {
  /// The last N lines still kept (0: none, start = next = end).
  std::optional<uint64_t> tail_lines = std::nullopt;
  /// Lines from this offset on (a `next` of an earlier page). Takes
  /// precedence over tail_lines. Neither set: from the oldest kept line.
  std::optional<uint64_t> since = std::nullopt;
  /// Budget of stored bytes (timestamp, stream, text, newline) per page, so
  /// never more than this of text; at least one line if any is there.
  size_t max_bytes = 256 << 10;
};

struct LogPage {
  std::vector<LogLine> lines;
  uint64_t start = 0;      // offset of the first line (or where it would be)
  uint64_t next = 0;       // pass back as `since` for what follows
  bool truncated = false;  // `since` was rotated away: started at the oldest kept line
};

/// One registration from AgentLog::on_append. Destroying it (or cancel())
/// unregisters; safe after the AgentLog is gone.
class LogWaiter {
 public:
  LogWaiter() = default;
  LogWaiter(LogWaiter&& o) noexcept;
  LogWaiter& operator=(LogWaiter&& o) noexcept;
  LogWaiter(const LogWaiter&) = delete;
  LogWaiter& operator=(const LogWaiter&) = delete;
  ~LogWaiter() { cancel(); }

  void cancel();
  /// Registered and not yet notified.
  [[nodiscard]] bool pending() const;

 private:
  friend class AgentLog;
  struct Registry {
    std::map<uint64_t, std::move_only_function<void()>> callbacks;
    uint64_t next_id = 1;
    bool wake_queued = false;  // a deferred wake_all() is pending
    void wake_all();
  };
  LogWaiter(std::weak_ptr<Registry> r, uint64_t id) : registry_(std::move(r)), id_(id) {}
  std::weak_ptr<Registry> registry_;
  uint64_t id_ = 0;
};

class AgentLog {
 public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;

  /// Opens (appending to) the log at `path`, whose directory must exist;
  /// existing `path.1` … files are accounted, so offsets continue after them. Offsets are not persisted:
  /// after a kernel restart the oldest kept file starts at offset 0.
  /// `clock` stamps the lines (default: system_clock::now).
  static Result<std::unique_ptr<AgentLog>> open(Reactor& reactor, std::string path,
                                                LogOptions options = {}, WallClock clock = {});
  ~AgentLog();
  AgentLog(const AgentLog&) = delete;
  AgentLog& operator=(const AgentLog&) = delete;

  /// New pipes for a run of the agent; the read ends are watched on the
  /// reactor. Pipes of an earlier run still attached are drained first.
  Result<StdioPipes> attach();
  /// Reads what is left in the pipes without blocking (the child has
  /// exited), flushes trailing partial lines and closes the pipes.
  void drain();
  /// Whether a pipe of the current run is still open.
  [[nodiscard]] bool attached() const;

  /// A page of the kept log (see LogQuery / LogPage and PROTOCOL.md).
  [[nodiscard]] Result<LogPage> read(const LogQuery& query) const;

  /// Calls `cb` once when the next lines were stored: from the loop, after
  /// the current callback (Reactor::defer), never from inside an AgentLog
  /// method; or at once from notify_waiters().
  [[nodiscard]] LogWaiter on_append(std::move_only_function<void()> cb);
  /// Wakes every waiter now (e.g. the agent ended) and forgets them. A
  /// callback may register again (for later lines), read, or cancel others.
  void notify_waiters();

  /// Logical offset of the end of the log: bytes stored in its history.
  [[nodiscard]] uint64_t bytes_written() const { return end_; }
  /// Offset of the oldest line still kept.
  [[nodiscard]] uint64_t oldest_offset() const;
  /// Lines lost because the file could not be written (ENOSPC, EIO, ...).
  [[nodiscard]] uint64_t dropped_lines() const { return dropped_lines_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  struct Stream {
    const char* name;
    UniqueFd fd;
    FdWatch watch;
    std::string partial;     // bytes of an unfinished line
    std::string partial_ts;  // when its first byte was read
  };
  // One file: segments_.back() is `path_`, the one before it `path_.1`, ...
  struct Segment {
    uint64_t start;
    uint64_t size;
  };

  AgentLog(Reactor& reactor, std::string path, LogOptions options, WallClock clock);

  // Capture.
  Result<UniqueFd> watch_stream(Stream& s);
  void on_readable(Stream& s);
  bool read_some(Stream& s, size_t budget);  // false: EOF or a read error
  void take(Stream& s, std::string_view data, const std::string& ts);
  void close_stream(Stream& s);
  void emit(const Stream& s, const std::string& ts, std::string_view text);
  void finish_batch();

  // Files.
  Result<void> open_current();
  [[nodiscard]] std::string rotated(unsigned k) const;  // 0: the current file
  [[nodiscard]] std::string file_of(size_t segment) const;
  [[nodiscard]] std::vector<uint64_t> file_sizes() const;  // current first
  void rebuild(const std::vector<uint64_t>& sizes);
  int write_all(std::string_view data, size_t& done);
  void commit(uint64_t bytes);
  void flush();
  void keep_whole_lines(size_t done);
  bool rotate();
  bool rotation_failed(const std::string& what);
  void note_failure(int err, uint64_t lines);
  void note_success();

  // Reading.
  [[nodiscard]] size_t segment_at(uint64_t offset) const;
  Result<uint64_t> tail_start(uint64_t lines) const;
  Result<uint64_t> line_start_at_or_after(uint64_t offset) const;

  Reactor& reactor_;
  std::string path_;
  LogOptions opt_;
  WallClock clock_;

  UniqueFd file_;
  std::vector<Segment> segments_;  // oldest first; contiguous; never empty
  uint64_t end_ = 0;
  bool need_newline_ = false;  // the current file ends inside a line

  std::string batch_;                // lines formatted, not yet written
  std::vector<size_t> batch_ends_;   // end of each line in batch_
  Stream out_{"stdout", {}, {}, {}, {}};
  Stream err_{"stderr", {}, {}, {}, {}};

  uint64_t dropped_lines_ = 0;
  bool failing_ = false;  // in a write-error episode (warned once)
  uint64_t episode_drops_ = 0;
  bool retry_blocked_ = false;  // rotation failed in this wake-up
  int rotate_errno_ = 0;
  bool stored_lines_ = false;  // since the last notification

  std::shared_ptr<LogWaiter::Registry> waiters_ = std::make_shared<LogWaiter::Registry>();
};

}  // namespace agentos::runtime

#include "runtime/agent_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iterator>
#include <string_view>

#include "util/log.hpp"

namespace agentos::runtime {
namespace {

constexpr size_t kChunk = 64 << 10;  // file reads and pipe reads

// Pipe reads land here, shared by every agent's log: the kernel keeps up
// to a thousand ended records, and a 64 KiB buffer each would pin 64 MiB
// (the soak run measured it). The kernel has one thread.
char* pipe_scratch() {
  static thread_local char scratch[kChunk];
  return scratch;
}

/// "2026-11-24T10:15:02.123456Z"
std::string format_ts(std::chrono::system_clock::time_point t) {
  const int64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  int64_t secs = us / 1'000'000, frac = us % 1'000'000;
  if (frac < 0) secs -= 1, frac += 1'000'000;
  const time_t tt = static_cast<time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                              tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
  return std::string(buf, static_cast<size_t>(std::max(n, 0)));
}

bool utf8_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

/// Where to split a line of which `head` (max_line bytes) is stored and `next`
/// is the byte after it: back off to the start of a UTF-8 sequence (at most 3
/// bytes) so a valid line stays valid. Invalid UTF-8 is cut at max_line.
size_t split_point(std::string_view head, char next) {
  size_t cut = head.size();
  char at = next;
  for (int i = 0; i < 3 && cut > 1 && utf8_continuation(at); ++i) at = head[--cut];
  return utf8_continuation(at) ? head.size() : cut;
}

/// "TS STREAM TEXT"; a line that does not look like that (a fragment left by
/// a failed write) comes back whole as text.
LogLine parse_line(std::string_view l) {
  const size_t a = l.find(' ');
  const size_t b = a == std::string_view::npos ? a : l.find(' ', a + 1);
  if (b == std::string_view::npos) return {{}, {}, std::string(l), 0};
  return {std::string(l.substr(0, a)), std::string(l.substr(a + 1, b - a - 1)),
          std::string(l.substr(b + 1)), 0};
}

ssize_t pread_full(int fd, char* buf, size_t len, uint64_t pos) {
  for (;;) {
    const ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(pos));
    if (n >= 0 || errno != EINTR) return n;
  }
}

/// Size of the regular file `path`, or nullopt.
std::optional<uint64_t> file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return static_cast<uint64_t>(st.st_size);
}

/// The byte at the end of a file of `size` bytes ('\n' if unreadable).
char last_byte(const std::string& path, uint64_t size) {
  char c = '\n';
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd && pread_full(fd.get(), &c, 1, size - 1) != 1) c = '\n';
  return c;
}

/// Appends to `page` the lines of one file from `pos` (a line start) to
/// `size`. Returns false once the budget is spent (page.next then points at
/// the first line not returned).
Result<bool> read_file_lines(const std::string& file, uint64_t seg_start, uint64_t size,
                             uint64_t pos, size_t max_bytes, size_t& used, LogPage& page) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("open " + file);
  std::string buf;
  size_t begin = 0;        // first byte of buf not returned yet
  uint64_t buf_pos = pos;  // file position of buf[0]
  auto take = [&](size_t len, size_t stored) {
    if (!page.lines.empty() && used + stored > max_bytes) return false;
    page.lines.push_back(parse_line(std::string_view(buf).substr(begin, len)));
    page.lines.back().offset = seg_start + buf_pos + begin;
    used += stored;
    begin += stored;
    page.next = seg_start + buf_pos + begin;
    return true;
  };
  for (size_t scanned = 0;;) {
    while (const void* nl = std::memchr(buf.data() + scanned, '\n', buf.size() - scanned)) {
      const auto end = static_cast<size_t>(static_cast<const char*>(nl) - buf.data());
      if (!take(end - begin, end - begin + 1)) return false;
      scanned = begin;
    }
    buf.erase(0, begin);  // keep the unfinished line only
    buf_pos += begin;
    begin = 0;
    scanned = buf.size();
    const uint64_t have = buf_pos + buf.size();
    if (have >= size) break;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, size - have));
    buf.resize(scanned + want);
    const ssize_t n = pread_full(fd.get(), buf.data() + scanned, want, have);
    if (n < 0) return sys_error("read " + file);
    buf.resize(scanned + static_cast<size_t>(n));
    if (n == 0) break;  // shorter than we thought: nothing more to read
  }
  // The file's last line has no newline only after a crash or a failed write.
  if (!buf.empty()) return take(buf.size(), buf.size());
  return true;
}

}  // namespace

// ---- LogWaiter -------------------------------------------------------------

LogWaiter::LogWaiter(LogWaiter&& o) noexcept
    : registry_(std::move(o.registry_)), id_(std::exchange(o.id_, 0)) {}

LogWaiter& LogWaiter::operator=(LogWaiter&& o) noexcept {
  if (this != &o) {
    cancel();
    registry_ = std::move(o.registry_);
    id_ = std::exchange(o.id_, 0);
  }
  return *this;
}

void LogWaiter::cancel() {
  if (auto r = registry_.lock()) r->callbacks.erase(id_);
  registry_.reset();
}

bool LogWaiter::pending() const {
  auto r = registry_.lock();
  return r && r->callbacks.contains(id_);
}

// ---- AgentLog: set-up ------------------------------------------------------

AgentLog::AgentLog(Reactor& reactor, std::string path, LogOptions options, WallClock clock)
    : reactor_(reactor),
      path_(std::move(path)),
      opt_(std::move(options)),
      clock_(clock ? std::move(clock) : WallClock(&std::chrono::system_clock::now)) {}

AgentLog::~AgentLog() = default;

Result<std::unique_ptr<AgentLog>> AgentLog::open(Reactor& reactor, std::string path,
                                                 LogOptions options, WallClock clock) {
  if (options.max_file_bytes == 0 || options.max_line == 0 || options.read_budget == 0)
    return make_error("log " + path + ": max_file_bytes, max_line and read_budget must be > 0",
                      EINVAL);
  std::unique_ptr<AgentLog> log(
      new AgentLog(reactor, std::move(path), std::move(options), std::move(clock)));
  // Files beyond max_files are left over from a larger setting: not ours to keep.
  for (unsigned k = log->opt_.max_files + 1; ::unlink(log->rotated(k).c_str()) == 0; ++k) {
  }
  AOS_TRY_VOID(log->open_current());
  const std::vector<uint64_t> sizes = log->file_sizes();
  for (uint64_t s : sizes) log->end_ += s;
  log->rebuild(sizes);
  // A kernel that died mid-write leaves half a line; end it before appending.
  log->need_newline_ = sizes[0] > 0 && last_byte(log->path_, sizes[0]) != '\n';
  return log;
}

Result<void> AgentLog::open_current() {
  file_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!file_) return sys_error("open " + path_);
  return {};
}

std::string AgentLog::rotated(unsigned k) const {
  return k == 0 ? path_ : path_ + "." + std::to_string(k);
}

std::string AgentLog::file_of(size_t segment) const {
  return rotated(static_cast<unsigned>(segments_.size() - 1 - segment));
}

std::vector<uint64_t> AgentLog::file_sizes() const {
  std::vector<uint64_t> sizes{file_size(path_).value_or(0)};
  for (unsigned k = 1; k <= opt_.max_files; ++k) {
    auto s = file_size(rotated(k));
    if (!s) break;  // a gap ends the history
    sizes.push_back(*s);
  }
  return sizes;
}

void AgentLog::rebuild(const std::vector<uint64_t>& sizes) {
  // Newest first in `sizes`; offsets count back from the end of the log.
  std::vector<Segment> segs;
  uint64_t start = end_;
  for (uint64_t s : sizes) {
    if (s > start) break;  // changed behind our back; keep what is consistent
    start -= s;
    segs.push_back({start, s});
  }
  if (segs.empty()) segs.push_back({end_, 0});
  segments_.assign(segs.rbegin(), segs.rend());
}

// ---- AgentLog: capture -----------------------------------------------------

Result<StdioPipes> AgentLog::attach() {
  if (attached()) drain();
  StdioPipes pipes;
  auto out = watch_stream(out_);
  if (!out) return std::unexpected(out.error().wrap("log " + path_));
  auto err = watch_stream(err_);
  if (!err) {
    close_stream(out_);
    return std::unexpected(err.error().wrap("log " + path_));
  }
  pipes.out = std::move(*out);
  pipes.err = std::move(*err);
  return pipes;
}

Result<UniqueFd> AgentLog::watch_stream(Stream& s) {
  int fds[2];
  // O_CLOEXEC on both ends: the spawner dup2()s the write end to 1 or 2,
  // which clears it there and only there.
  if (::pipe2(fds, O_CLOEXEC) < 0) return sys_error("pipe2");
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  // Only our end is non-blocking; the agent expects an ordinary stdout.
  if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) < 0) return sys_error("fcntl O_NONBLOCK");
  s.watch = AOS_TRY(reactor_.watch(read_end.get(), EPOLLIN, [this, &s](uint32_t) {
    on_readable(s);
  }));
  s.fd = std::move(read_end);
  s.partial.clear();
  return write_end;
}

bool AgentLog::attached() const { return out_.fd.valid() || err_.fd.valid(); }

void AgentLog::on_readable(Stream& s) {
  retry_blocked_ = false;
  // EPOLLHUP with an empty pipe also lands here: read() then returns 0.
  if (!read_some(s, opt_.read_budget)) close_stream(s);
  finish_batch();
}

void AgentLog::drain() {
  retry_blocked_ = false;
  for (Stream* s : {&out_, &err_}) {
    if (!s->fd) continue;
    // What is in the pipe now is at most its capacity: reading that much and
    // no more keeps a writer that is still alive (a grandchild) from holding
    // us here.
    const int cap = ::fcntl(s->fd.get(), F_GETPIPE_SZ);
    read_some(*s, std::max(opt_.read_budget, static_cast<size_t>(std::max(cap, 0))));
    close_stream(*s);
  }
  finish_batch();
  // Between runs (and for good once the agent ended) neither the file nor
  // the batch buffers are held: a kernel keeps up to a thousand ended
  // records. The next flush reopens the file.
  file_.reset();
  std::string().swap(batch_);
  std::vector<size_t>().swap(batch_ends_);
}

bool AgentLog::read_some(Stream& s, size_t budget) {
  for (size_t total = 0; total < budget;) {
    char* buf = pipe_scratch();
    const ssize_t n = ::read(s.fd.get(), buf, std::min(kChunk, budget - total));
    if (n > 0) {
      take(s, std::string_view(buf, static_cast<size_t>(n)), format_ts(clock_()));
      total += static_cast<size_t>(n);
    } else if (n == 0) {
      return false;
    } else if (errno == EAGAIN) {
      return true;
    } else if (errno != EINTR) {
      log::warn("log {}: read {}: {}", path_, s.name, std::strerror(errno));
      return false;
    }
  }
  return true;
}

void AgentLog::take(Stream& s, std::string_view data, const std::string& ts) {
  while (!data.empty()) {
    if (s.partial.empty()) s.partial_ts = ts;
    const size_t room = opt_.max_line - s.partial.size();
    const size_t look = std::min(data.size(), room + 1);
    if (const void* p = std::memchr(data.data(), '\n', look)) {
      const auto len = static_cast<size_t>(static_cast<const char*>(p) - data.data());
      if (s.partial.empty()) {
        emit(s, s.partial_ts, data.substr(0, len));
      } else {
        s.partial.append(data.substr(0, len));
        emit(s, s.partial_ts, s.partial);
        s.partial.clear();
      }
      data.remove_prefix(len + 1);
    } else if (data.size() <= room) {
      s.partial.append(data);  // wait for the rest of the line
      return;
    } else {
      // More than max_line without a newline: store a piece, keep the rest.
      s.partial.append(data.substr(0, room));
      data.remove_prefix(room);
      const size_t cut = split_point(s.partial, data.front());
      emit(s, s.partial_ts, std::string_view(s.partial).substr(0, cut));
      s.partial.erase(0, cut);
    }
  }
}

void AgentLog::close_stream(Stream& s) {
  s.watch.reset();  // safe from inside this watch's own callback
  s.fd.reset();
  if (!s.partial.empty()) emit(s, s.partial_ts, s.partial);
  std::string().swap(s.partial);  // give the memory back: the record may be kept for long
}

void AgentLog::emit(const Stream& s, const std::string& ts, std::string_view text) {
  const size_t len = ts.size() + std::strlen(s.name) + text.size() + 3;
  const uint64_t pending = segments_.back().size + batch_.size();
  if (pending > 0 && pending + len > opt_.max_file_bytes) {
    flush();
    if (!rotate()) return note_failure(rotate_errno_, 1);
  }
  batch_.append(ts).append(1, ' ').append(s.name).append(1, ' ').append(text).append(1, '\n');
  batch_ends_.push_back(batch_.size());
}

void AgentLog::finish_batch() {
  flush();
  if (!std::exchange(stored_lines_, false) || waiters_->callbacks.empty()) return;
  if (std::exchange(waiters_->wake_queued, true)) return;
  // Deferred: a waiter (answering a LOGS request) then never runs inside our
  // own methods, and one wake covers all the lines of this loop iteration.
  reactor_.defer([reg = waiters_] {
    reg->wake_queued = false;
    reg->wake_all();
  });
}

// ---- AgentLog: files -------------------------------------------------------

int AgentLog::write_all(std::string_view data, size_t& done) {
  done = 0;
  while (done < data.size()) {
    const ssize_t n = opt_.write_fn
                          ? opt_.write_fn(file_.get(), data.data() + done, data.size() - done)
                          : ::write(file_.get(), data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      return EIO;  // no progress on a regular file: treat as an I/O error
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

void AgentLog::commit(uint64_t bytes) {
  segments_.back().size += bytes;
  end_ += bytes;
  if (bytes > 0) stored_lines_ = true;
}

void AgentLog::flush() {
  if (batch_.empty()) return;
  const size_t lines = batch_ends_.size();
  size_t done = 0;
  // No file after a failed rotation or reopen: try again, once per batch.
  int err = file_ || open_current() ? 0 : errno;
  if (err == 0 && need_newline_) {
    err = write_all("\n", done);
    if (err == 0) commit(1), need_newline_ = false;
  }
  if (err == 0) err = write_all(batch_, done);
  if (err == 0) {
    commit(done);
    note_success();
  } else {
    keep_whole_lines(done);
    const auto whole = std::upper_bound(batch_ends_.begin(), batch_ends_.end(), done);
    note_failure(err, lines - static_cast<size_t>(whole - batch_ends_.begin()));
  }
  batch_.clear();
  batch_ends_.clear();
}

void AgentLog::keep_whole_lines(size_t done) {
  // Readers rely on files holding whole lines: cut a partly written one off.
  const auto it = std::upper_bound(batch_ends_.begin(), batch_ends_.end(), done);
  const size_t whole = it == batch_ends_.begin() ? 0 : *std::prev(it);
  if (done > whole) {
    const uint64_t keep = segments_.back().size + whole;
    if (::ftruncate(file_.get(), static_cast<off_t>(keep)) < 0) {
      // The fragment stays; account it and end it before the next line.
      commit(done);
      need_newline_ = true;
      return;
    }
  }
  commit(whole);
}

bool AgentLog::rotate() {
  if (retry_blocked_) return false;
  // current -> .1 -> .2 ...; rename() replaces the oldest atomically. The
  // open fd follows its inode, so it is reopened only after its rename.
  for (unsigned k = opt_.max_files; k >= 1; --k) {
    if (::rename(rotated(k - 1).c_str(), rotated(k).c_str()) < 0 && errno != ENOENT)
      return rotation_failed("rename " + rotated(k - 1));
  }
  if (opt_.max_files == 0 && ::unlink(path_.c_str()) < 0 && errno != ENOENT)
    return rotation_failed("unlink " + path_);
  segments_.push_back({end_, 0});
  if (segments_.size() > opt_.max_files + 1) segments_.erase(segments_.begin());
  if (!open_current()) return rotation_failed("open " + path_);
  need_newline_ = false;
  return true;
}

bool AgentLog::rotation_failed(const std::string& what) {
  rotate_errno_ = errno;
  if (!failing_) {
    log::warn("log {}: rotation: {}: {}; dropping lines until it works again", path_, what,
              std::strerror(errno));
    failing_ = true;
  }
  // Some renames may have happened: take the history from the disk again.
  // Lines are dropped until a rotation succeeds, so the disk stays bounded.
  rebuild(file_sizes());
  retry_blocked_ = true;  // once per wake-up is enough
  return false;
}

void AgentLog::note_failure(int err, uint64_t lines) {
  if (!failing_)
    log::warn("log {}: cannot write ({}); dropping lines until it works again", path_,
              std::strerror(err));
  failing_ = true;
  dropped_lines_ += lines;
  episode_drops_ += lines;
}

void AgentLog::note_success() {
  if (!failing_) return;
  log::info("log {}: writing again; {} lines were dropped", path_, episode_drops_);
  failing_ = false;
  episode_drops_ = 0;
}

// ---- AgentLog: waiters -----------------------------------------------------

LogWaiter AgentLog::on_append(std::move_only_function<void()> cb) {
  const uint64_t id = waiters_->next_id++;
  waiters_->callbacks.emplace(id, std::move(cb));
  return LogWaiter(waiters_, id);
}

void AgentLog::notify_waiters() {
  const auto reg = waiters_;  // alive even if a callback destroys this log
  reg->wake_all();
}

void LogWaiter::Registry::wake_all() {
  // A callback may register again (for later lines: not called now) or
  // cancel another waiter (then not called): take one entry at a time.
  const uint64_t limit = next_id;
  while (!callbacks.empty() && callbacks.begin()->first < limit) {
    auto node = callbacks.extract(callbacks.begin());
    node.mapped()();
  }
}

// ---- AgentLog: reading -----------------------------------------------------

uint64_t AgentLog::oldest_offset() const { return segments_.front().start; }

size_t AgentLog::segment_at(uint64_t offset) const {
  size_t i = segments_.size() - 1;
  while (i > 0 && segments_[i].start > offset) --i;
  return i;
}

Result<LogPage> AgentLog::read(const LogQuery& q) const {
  LogPage page;
  uint64_t from = oldest_offset();
  if (q.since && *q.since < from) {
    page.truncated = true;
  } else if (q.since) {
    from = *q.since >= end_ ? end_ : AOS_TRY(line_start_at_or_after(*q.since));
  } else if (q.tail_lines) {
    from = AOS_TRY(tail_start(*q.tail_lines));
  }
  page.start = page.next = from;
  size_t used = 0;
  for (size_t i = segment_at(from); i < segments_.size(); ++i) {
    const Segment& seg = segments_[i];
    const uint64_t pos = std::max(from, seg.start) - seg.start;
    if (pos >= seg.size) continue;
    auto more = read_file_lines(file_of(i), seg.start, seg.size, pos, q.max_bytes, used, page);
    if (!more) return std::unexpected(more.error().wrap("log " + path_));
    if (!*more) break;
  }
  return page;
}

Result<uint64_t> AgentLog::tail_start(uint64_t lines) const {
  if (lines == 0) return end_;
  uint64_t found = 0;
  std::vector<char> buf(kChunk);
  for (size_t i = segments_.size(); i-- > 0;) {
    const Segment& seg = segments_[i];
    if (seg.size == 0) continue;
    UniqueFd fd(::open(file_of(i).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_error("open " + file_of(i));
    // A line starts at 0 and after every newline but the file's last byte.
    for (uint64_t hi = seg.size - 1; hi > 0;) {
      const uint64_t lo = hi > kChunk ? hi - kChunk : 0;
      const ssize_t n = pread_full(fd.get(), buf.data(), hi - lo, lo);
      if (n != static_cast<ssize_t>(hi - lo)) return sys_error("read " + file_of(i));
      for (size_t j = hi - lo; const void* p = ::memrchr(buf.data(), '\n', j);) {
        j = static_cast<size_t>(static_cast<const char*>(p) - buf.data());
        if (++found == lines) return seg.start + lo + j + 1;
      }
      hi = lo;
    }
    if (++found == lines) return seg.start;
  }
  return oldest_offset();
}

Result<uint64_t> AgentLog::line_start_at_or_after(uint64_t offset) const {
  const size_t i = segment_at(offset);
  const Segment& seg = segments_[i];
  const uint64_t pos = offset - seg.start;
  if (pos == 0) return offset;
  // `since` is opaque but a client may still send any number: align it to
  // the next line so we never return half a line.
  UniqueFd fd(::open(file_of(i).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("open " + file_of(i));
  std::vector<char> buf(kChunk);
  for (uint64_t at = pos - 1; at < seg.size;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, seg.size - at));
    const ssize_t n = pread_full(fd.get(), buf.data(), want, at);
    if (n <= 0) return sys_error("read " + file_of(i));
    if (const void* p = std::memchr(buf.data(), '\n', static_cast<size_t>(n)))
      return seg.start + at + static_cast<uint64_t>(static_cast<const char*>(p) - buf.data()) + 1;
    at += static_cast<uint64_t>(n);
  }
  return seg.start + seg.size;
}

}  // namespace agentos::runtime

#include "runtime/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <fmt/core.h>
#include <set>

#include "runtime/cgroup_v1.hpp"
#include "runtime/cgroup_v2.hpp"
#include "util/log.hpp"

namespace agentos::runtime {

AgentCgroup::~AgentCgroup() = default;
CgroupBackend::~CgroupBackend() = default;
CgroupFs::~CgroupFs() = default;

// ---- CgroupFs: the real syscalls -----------------------------------------

Result<std::string> CgroupFs::read(const std::string& path) const {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("open " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

Result<void> CgroupFs::write(const std::string& path, std::string_view value) {
  // No O_CREAT: a missing control file means a missing controller, and
  // creating a plain file in its place would hide that.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) return sys_error("open " + path);
  // cgroupfs parses each write(2) as one value: never split it.
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return sys_error("write " + path);
  if (static_cast<size_t>(n) != value.size()) return make_error("short write to " + path, EIO);
  return {};
}

Result<void> CgroupFs::make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0) return sys_error("mkdir " + path);
  return {};
}

Result<void> CgroupFs::remove_dir(const std::string& path) {
  if (::rmdir(path.c_str()) != 0) return sys_error("rmdir " + path);
  return {};
}

Result<std::vector<std::string>> CgroupFs::subdirs(const std::string& path) const {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(path.c_str()), ::closedir);
  if (!dir) return sys_error("opendir " + path);
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dir.get())) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st {};
      is_dir = ::stat(cgroup_util::join(path, name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool CgroupFs::exists(const std::string& path) const { return ::access(path.c_str(), F_OK) == 0; }

bool CgroupFs::is_cgroup2_mount(const std::string& path) const {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

Result<UniqueFd> CgroupFs::open_path(const std::string& dir) const {
  // CLONE_INTO_CGROUP takes the fd through fdget_raw(), so O_PATH suffices.
  UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_error("open " + dir);
  return fd;
}

int CgroupFs::send_signal(pid_t pid, int sig) { return ::kill(pid, sig) == 0 ? 0 : errno; }

void CgroupFs::pause(std::chrono::milliseconds delay) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count();
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// ---- Parsing and paths ----------------------------------------------------

namespace cgroup_util {

Result<std::vector<ProcCgroupEntry>> parse_proc_cgroup(std::string_view text) {
  std::vector<ProcCgroupEntry> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    if (line.empty()) continue;
    // The path is everything after the second colon; it may contain colons.
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return make_error(fmt::format("malformed cgroup line \"{}\"", line));
    ProcCgroupEntry e{std::string(line.substr(0, c1)), {}, std::string(line.substr(c2 + 1))};
    std::string_view list = line.substr(c1 + 1, c2 - c1 - 1);
    while (!list.empty()) {
      size_t comma = list.find(',');
      if (comma != 0) e.controllers.emplace_back(list.substr(0, comma));
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    out.push_back(std::move(e));
  }
  return out;
}

static std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::optional<uint64_t> parse_u64(std::string_view text) {
  text = trim(text);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> keyed_u64(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    std::string_view line = text.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    pos = eol == std::string_view::npos ? text.size() : eol + 1;
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ')
      return parse_u64(line.substr(key.size() + 1));
  }
  return std::nullopt;
}

std::vector<std::string> split_words(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = text.find_first_not_of(" \t\n", pos)) != std::string_view::npos) {
    size_t end = text.find_first_of(" \t\n", pos);
    out.emplace_back(text.substr(pos, end == std::string_view::npos ? end : end - pos));
    pos = end;
  }
  return out;
}

std::vector<pid_t> parse_pids(std::string_view text) {
  std::vector<pid_t> out;
  for (const auto& word : split_words(text)) {
    auto v = parse_u64(word);
    if (v && *v > 0 && *v <= static_cast<uint64_t>(INT32_MAX)) out.push_back(static_cast<pid_t>(*v));
  }
  return out;
}

std::string join(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a.back() == '/') a.remove_suffix(1);
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  while (!b.empty() && b.back() == '/') b.remove_suffix(1);
  if (b.empty()) return std::string(a);
  if (a == "/") return "/" + std::string(b);
  return std::string(a) + "/" + std::string(b);
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Result<std::string> normalise_parent(std::string_view parent) {
  std::string out;
  while (!parent.empty()) {
    size_t slash = parent.find('/');
    std::string_view part = parent.substr(0, slash);
    parent = slash == std::string_view::npos ? std::string_view{} : parent.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return make_error("cgroup parent: \"..\" is not allowed", EINVAL);
    out += "/";
    out += part;
  }
  return out.empty() ? std::string("/") : out;
}

// ---- Control files -------------------------------------------------------

std::optional<uint64_t> read_u64(const CgroupFs& fs, const std::string& path) {
  auto text = fs.read(path);
  if (!text) return std::nullopt;
  return parse_u64(*text);
}

std::string write_hint(std::string_view file, int err) {
  size_t slash = file.rfind('/');
  std::string_view name = slash == std::string_view::npos ? file : file.substr(slash + 1);
  switch (err) {
    case ENOENT:
      return "the control file does not exist: its controller is not enabled for this cgroup";
    case EACCES:
    case EPERM:
    case EROFS:
      return "permission denied: run the kernel as root, or give it a delegated cgroup "
             "(systemd Delegate=yes, or --cgroup-parent naming a cgroup it may write)";
    case EBUSY:
      if (name == "cgroup.subtree_control")
        return "the cgroup has member processes (cgroup v2 'no internal processes' rule)";
      if (name.starts_with("memory."))
        return "current memory usage is above the new limit and could not be reclaimed";
      return "the cgroup is busy";
    case EINVAL:
      if (name.starts_with("cpu."))
        return "the kernel rejected the CPU value: the period must be 1 ms..1 s and the quota "
               "at least 1 ms and not above the parent's";
      return "the kernel rejected the value (out of range for this kernel or the parent's limits)";
    case ESRCH:
      return "the process has already exited";
    case ENOSPC:
      return "a cgroup limit (pids.max or cgroup.max.descendants) is exhausted";
    case EOPNOTSUPP:
      return "not supported by this kernel or cgroup type";
    default:
      return {};
  }
}

Result<void> write_control(CgroupFs& fs, const std::string& path, std::string_view value) {
  auto r = fs.write(path, value);
  if (r) return {};
  std::string hint = write_hint(path, r.error().code);
  return make_error(fmt::format("write \"{}\" to {}{}", value, path, hint.empty() ? "" : " (" + hint + ")"),
                    r.error().code);
}

Result<void> make_cgroup_dir(CgroupFs& fs, const std::string& path) {
  auto r = fs.make_dir(path);
  if (r) return {};
  const int err = r.error().code;
  std::string hint = err == EEXIST ? "left by a crashed run: call remove_stale() first" : write_hint(path, err);
  return make_error(fmt::format("mkdir {} ({})", path, hint), err);
}

size_t kill_listed(CgroupFs& fs, const std::string& procs_file) {
  // Signalling is not atomic with respect to fork(): a child forked after we
  // read the list escapes this pass, so re-read until a pass finds nothing
  // new. The backends freeze the cgroup first, which makes one pass enough
  // whenever the freeze has completed. (A listed pid that exits and is
  // reused between read and kill would be hit: frozen tasks cannot exit,
  // which is one more reason to freeze; v2's cgroup.kill has no such race.)
  std::set<pid_t> signalled;
  for (int pass = 0; pass < 8; ++pass) {
    auto text = fs.read(procs_file);
    if (!text) break;
    size_t before = signalled.size();
    for (pid_t pid : parse_pids(*text)) {
      if (signalled.insert(pid).second) fs.send_signal(pid, SIGKILL);
    }
    if (signalled.size() == before) break;
  }
  return signalled.size();
}

Result<void> remove_dir_retrying(CgroupFs& fs, const std::string& path) {
  // rmdir answers EBUSY while a task that was just killed is still exiting:
  // the task leaves its css_set in do_exit() (it need not be reaped), which
  // usually takes well under a millisecond after SIGKILL. Back off briefly;
  // never block the event loop for long.
  Result<void> r;
  for (int delay_ms = 1;; delay_ms *= 2) {
    r = fs.remove_dir(path);
    if (r || r.error().code == ENOENT) return {};
    if (r.error().code != EBUSY || delay_ms > 32) return r;
    fs.pause(std::chrono::milliseconds(delay_ms));
  }
}

// Directory depth below an agent's cgroup that the tree walks follow: an
// agent nests at most kMaxNesting (cgroup.hpp) deep, two levels each on v2.
constexpr int kMaxTreeDepth = 2 * kMaxNesting + 4;

// `dir` and every directory below it, parents before their children.
static void collect_tree(const CgroupFs& fs, const std::string& dir, int depth, std::vector<std::string>& out) {
  out.push_back(dir);
  if (depth >= kMaxTreeDepth) return;
  if (auto children = fs.subdirs(dir))
    for (const auto& child : *children) collect_tree(fs, join(dir, child), depth + 1, out);
}

static std::vector<std::string> tree_of(const CgroupFs& fs, const std::string& dir) {
  std::vector<std::string> out;
  collect_tree(fs, dir, 0, out);
  return out;
}

size_t kill_tree_listed(CgroupFs& fs, const std::string& dir) {
  size_t n = 0;
  for (const auto& d : tree_of(fs, dir)) n += kill_listed(fs, join(d, "cgroup.procs"));
  return n;
}

bool tree_populated(const CgroupFs& fs, const std::string& dir) {
  const auto dirs = tree_of(fs, dir);
  return std::any_of(dirs.begin(), dirs.end(), [&](const std::string& d) {
    auto procs = fs.read(join(d, "cgroup.procs"));
    return procs && !parse_pids(*procs).empty();
  });
}

static Result<void> remove_tree_at(CgroupFs& fs, const std::string& path, int depth) {
  Result<void> first;
  if (depth < kMaxTreeDepth) {
    if (auto children = fs.subdirs(path)) {
      for (const auto& child : *children) {
        auto r = remove_tree_at(fs, join(path, child), depth + 1);
        if (!r && first) first = r;
      }
    }
  }
  kill_listed(fs, join(path, "cgroup.procs"));
  // A directory whose child is still there cannot go either: do not wait
  // for it a second time.
  if (!first) return first;
  return remove_dir_retrying(fs, path);
}

Result<void> remove_tree(CgroupFs& fs, const std::string& path) { return remove_tree_at(fs, path, 0); }

}  // namespace cgroup_util

// ---- Detection -------------------------------------------------------------

Result<std::unique_ptr<CgroupBackend>> open_cgroups(const CgroupOptions& opts_in) {
  CgroupOptions opts = opts_in;
  if (!opts.fs) opts.fs = std::make_shared<CgroupFs>();
  if (!cgroup_util::valid_name(opts.instance))
    return make_error(fmt::format("cgroup instance name \"{}\" must be one path component of "
                                  "[A-Za-z0-9._-]",
                                  opts.instance),
                      EINVAL);
  if (opts.parent) opts.parent = AOS_TRY(cgroup_util::normalise_parent(*opts.parent));
  const CgroupFs& fs = *opts.fs;
  if (!fs.exists(opts.root))
    return make_error(fmt::format("cgroup root {} does not exist: mount cgroupfs there "
                                  "(mount -t cgroup2 none {})",
                                  opts.root, opts.root),
                      ENOENT);
  // A tmpfs root with per-controller directories is v1 (legacy) or hybrid;
  // in the hybrid layout the cgroup2 at root/unified has no controllers
  // (systemd uses it only to track processes), so hybrid is handled as v1.
  if (fs.is_cgroup2_mount(opts.root) || fs.exists(cgroup_util::join(opts.root, "cgroup.controllers")))
    return open_cgroup_v2(opts);
  return open_cgroup_v1(opts);
}

}  // namespace agentos::runtime

#include "runtime/mounts.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <fmt/format.h>

namespace agentos::runtime {
namespace {

constexpr const char* kNewRoot = "/newroot";
constexpr const char* kOldRoot = "/oldroot";
constexpr uint64_t kReadOnly = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;

constexpr const char* kSystemDirs[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                       "/lib32", "/lib64", "/libx32"};
// /etc entries taken from the host; shadow, sudoers, ssh keys etc. never are.
constexpr const char* kEtcAlways[] = {"ld.so.cache", "ld.so.conf",   "ld.so.conf.d",
                                      "localtime",   "alternatives", "protocols",
                                      "services",    "os-release",   "mime.types"};
constexpr const char* kEtcNetwork[] = {
    "resolv.conf",     "ssl",       "ca-certificates", "ca-certificates.conf", "pki",
    "crypto-policies", "host.conf", "gai.conf"};
constexpr const char* kDevNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
// Kernel knobs under /proc that root could write; read-only even for root.
constexpr const char* kProcReadOnly[] = {"sys", "sysrq-trigger", "irq", "bus"};
// Sandbox paths that an ro path may not replace or contain.
constexpr const char* kReserved[] = {"/", "/etc", "/tmp", "/proc", "/dev", "/workspace"};

bool is_under(const std::string& path, const std::string& dir) {
  if (dir == "/") return true;
  return path == dir ||
         (path.starts_with(dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

std::string normal(const std::string& p) {
  std::string n = std::filesystem::path(p).lexically_normal().string();
  if (n.size() > 1 && n.back() == '/') n.pop_back();
  return n;
}

Result<std::string> real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return sys_error(p);
  return std::string(buf);
}

class Planner {
 public:
  explicit Planner(const FsSpec& spec) : spec_(spec) {}

  Result<MountPlan> run() {
    AOS_TRY_VOID(resolve_host_root());
    system_dirs();
    etc();
    tmp();
    AOS_TRY_VOID(ro_paths());
    proc();
    dev();
    AOS_TRY_VOID(workspace());
    AOS_TRY_VOID(socket());
    plan_.summary["root"] = "tmpfs, read-only";
    return std::move(plan_);
  }

 private:
  Result<void> resolve_host_root() {
    if (!spec_.host_root.empty()) host_real_ = AOS_TRY(real_path(spec_.host_root));
    return {};
  }
  std::string host(const std::string& p) const { return spec_.host_root + p; }
  static std::string target(const std::string& p) { return p == "/" ? kNewRoot : kNewRoot + p; }

  MountStep& add(MountStep::Kind kind, const std::string& sandbox_path) {
    MountStep s{};
    s.kind = kind;
    s.dst = target(sandbox_path);
    return plan_.steps.emplace_back(std::move(s));
  }
  void dir(const std::string& path, unsigned mode = 0755) {
    if (dirs_.contains(path)) return;
    dir(std::filesystem::path(path).parent_path().string());
    dirs_.insert(path);
    add(MountStep::Kind::kDir, path).mode = mode;
  }
  void bind(const std::string& host_path, const std::string& path, bool is_dir, uint64_t attr) {
    if (is_dir) {
      dir(path);
    } else {
      dir(std::filesystem::path(path).parent_path().string());
      add(MountStep::Kind::kFile, path).mode = 0444;
    }
    MountStep& s = add(MountStep::Kind::kBind, path);
    s.src = kOldRoot + host_path;
    s.attr = attr;
    s.recursive = is_dir && spec_.recursive_ro;
  }
  void expose_ro(const std::string& host_path, const std::string& path, bool is_dir) {
    bind(host_path, path, is_dir, kReadOnly);
    bound_.push_back(path);
    plan_.summary["read_only"].push_back(path);
  }
  void write(const std::string& path, std::string content, unsigned mode = 0644) {
    MountStep& s = add(MountStep::Kind::kWrite, path);
    s.data = std::move(content);
    s.mode = mode;
  }
  void symlink(const std::string& path, const std::string& link_target) {
    add(MountStep::Kind::kSymlink, path).data = link_target;
  }
  void tmpfs(const std::string& path, std::string options, unsigned long flags) {
    dir(path);
    MountStep& s = add(MountStep::Kind::kTmpfs, path);
    s.data = std::move(options);
    s.flags = flags;
  }
  bool covered(const std::string& path) const {
    for (const auto& b : bound_) {
      if (is_under(path, b)) return true;
    }
    return false;
  }

  // /usr, /lib*, /bin, /sbin: read-only binds, or the same symlinks as on
  // the host (usrmerge systems have /bin -> usr/bin).
  void system_dirs() {
    for (const char* d : kSystemDirs) {
      struct stat st {};
      if (::lstat(host(d).c_str(), &st) < 0) continue;
      if (S_ISLNK(st.st_mode)) {
        std::error_code ec;
        auto link = std::filesystem::read_symlink(host(d), ec);
        if (!ec) symlink(d, link.string());
      } else if (S_ISDIR(st.st_mode)) {
        expose_ro(d, d, true);
        plan_.exposures.push_back({d, Access::kReadOnly});
      }
    }
  }

  void etc() {
    dir("/etc");
    write_etc_files();
    for (const char* name : kEtcAlways) etc_from_host(name);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(host("/etc"), ec)) {
      std::string name = entry.path().filename().string();
      if (name.starts_with("python3")) etc_from_host(name);  // sitecustomize.py and friends
    }
    if (spec_.network) {
      for (const char* name : kEtcNetwork) etc_from_host(name);
    }
    plan_.exposures.push_back({"/etc", Access::kReadOnly});
  }

  void write_etc_files() {
    const std::string uid = std::to_string(spec_.uid), gid = std::to_string(spec_.gid);
    std::string passwd = "root:x:0:0:root:/root:/usr/sbin/nologin\n";
    std::string group = "root:x:0:\n";
    if (spec_.uid != 0)
      passwd += fmt::format("agent:x:{}:{}:AgentOS agent:/tmp:/usr/sbin/nologin\n", uid, gid);
    if (spec_.gid != 0) group += fmt::format("agent:x:{}:\n", gid);
    if (spec_.uid != 65534)
      passwd += "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    if (spec_.gid != 65534) group += "nogroup:x:65534:\n";
    write("/etc/passwd", passwd);
    write("/etc/group", group);
    write("/etc/hostname", spec_.hostname + "\n");
    write("/etc/hosts",
          fmt::format("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                      "127.0.1.1\t{}\n",
                      spec_.hostname));
    write("/etc/nsswitch.conf",
          fmt::format("passwd: files\ngroup: files\nhosts: files{}\nnetworks: files\n"
                      "protocols: files\nservices: files\n",
                      spec_.network ? " dns" : ""));
    plan_.summary["etc"] = {"passwd", "group", "hostname", "hosts", "nsswitch.conf"};
  }

  // A symlink into the exposed system directories is recreated as it is
  // (/etc/localtime -> /usr/share/zoneinfo/...); any other entry is bound
  // read-only from where it really lives (/etc/resolv.conf is often a link
  // into /run, which is not exposed).
  void etc_from_host(const std::string& name) {
    const std::string path = "/etc/" + name;
    struct stat st {};
    if (::lstat(host(path).c_str(), &st) < 0) return;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      std::string link = std::filesystem::read_symlink(host(path), ec).string();
      if (ec) return;
      std::string resolved = normal(link.starts_with("/") ? link : "/etc/" + link);
      if (covered(resolved)) {
        symlink(path, link);
        plan_.summary["etc"].push_back(name);
        return;
      }
    }
    auto real = real_path(host(path));
    if (!real || ::stat(real->c_str(), &st) < 0) return;
    bind(strip_host_root(*real), path, S_ISDIR(st.st_mode), kReadOnly);
    bound_.push_back(path);
    plan_.summary["etc"].push_back(name);
  }

  std::string strip_host_root(const std::string& real) const {
    if (host_real_.empty()) return real;
    return real.size() == host_real_.size() ? "/" : real.substr(host_real_.size());
  }

  void tmp() {
    tmpfs("/tmp", fmt::format("mode=1777,size={}", spec_.tmp_size_bytes), MS_NOSUID | MS_NODEV);
    plan_.exposures.push_back({"/tmp", Access::kReadWrite});
    plan_.summary["read_write"].push_back(
        fmt::format("/tmp (tmpfs, {} bytes)", spec_.tmp_size_bytes));
  }

  Result<void> ro_paths() {
    std::set<std::string> paths;
    for (const auto& p : spec_.ro_paths) {
      if (!p.starts_with("/")) return make_error("ro path " + p + ": not an absolute path");
      std::string real = strip_host_root(AOS_TRY(real_path(host(p))));
      for (const char* r : kReserved) {
        if (is_under(r, real) ||
            (is_under(real, r) && (r == std::string("/proc") || r == std::string("/dev")))) {
          return make_error(fmt::format("ro path {}: would replace the sandbox's {}", p, r));
        }
      }
      if (!covered(real)) paths.insert(real);
    }
    // std::set orders parents before their children, so nested paths are skipped.
    for (const auto& real : paths) {
      if (covered(real)) continue;
      struct stat st {};
      if (::stat(host(real).c_str(), &st) < 0) return sys_error("ro path " + real);
      expose_ro(real, real, S_ISDIR(st.st_mode));
      plan_.exposures.push_back({real, Access::kReadOnly});
    }
    return {};
  }

  void proc() {
    dir("/proc");
    add(MountStep::Kind::kProc, "/proc");
    for (const char* p : kProcReadOnly) {
      std::string path = std::string("/proc/") + p;
      MountStep& s = add(MountStep::Kind::kBind, path);
      s.src = s.dst;  // bound on itself, to become a mount that can be read-only
      s.attr = kReadOnly | MOUNT_ATTR_NOEXEC;
      s.recursive = true;
      s.optional = true;
    }
    plan_.exposures.push_back({"/proc", Access::kReadOnly});
    plan_.summary["proc"] =
        "new procfs of the agent's pid namespace; sys, sysrq-trigger, irq, bus read-only";
  }

  void dev() {
    tmpfs("/dev", "mode=0755,size=64k", MS_NOSUID | MS_NOEXEC);
    for (const char* node : kDevNodes) {
      std::string path = std::string("/dev/") + node;
      if (::access(host(path).c_str(), F_OK) < 0) continue;
      // The node is the host's own inode: a writable bind would let the
      // agent change its times (utimensat needs only write permission,
      // which /dev/null grants everyone). Read-only stops that, and never
      // stops I/O: a device is written through its driver, not the mount.
      bind(path, path, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
      plan_.summary["dev"].push_back(node);
    }
    symlink("/dev/fd", "/proc/self/fd");
    symlink("/dev/stdin", "/proc/self/fd/0");
    symlink("/dev/stdout", "/proc/self/fd/1");
    symlink("/dev/stderr", "/proc/self/fd/2");
    tmpfs("/dev/shm", fmt::format("mode=1777,size={}", spec_.tmp_size_bytes),
          MS_NOSUID | MS_NODEV | MS_NOEXEC);
    MountStep& ro = add(MountStep::Kind::kAttr, "/dev");
    ro.attr = MOUNT_ATTR_RDONLY;
    plan_.exposures.push_back({"/dev", Access::kDevices});
    plan_.exposures.push_back({"/dev/shm", Access::kReadWrite});
    plan_.summary["read_write"].push_back("/dev/shm (tmpfs)");
  }

  Result<void> workspace() {
    if (!spec_.workspace) return {};
    std::string real = strip_host_root(AOS_TRY(real_path(host(*spec_.workspace))));
    struct stat st {};
    if (::stat(host(real).c_str(), &st) < 0) return sys_error("workspace " + *spec_.workspace);
    if (!S_ISDIR(st.st_mode))
      return make_error("workspace " + *spec_.workspace + ": not a directory");
    bind(real, "/workspace", true, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    plan_.exposures.push_back({"/workspace", Access::kReadWrite});
    plan_.summary["read_write"].push_back("/workspace (" + real + ")");
    return {};
  }

  Result<void> socket() {
    if (spec_.socket_host_path.empty()) return {};
    const std::string& inside = spec_.socket_sandbox_path;
    if (!inside.starts_with("/") || normal(inside) != inside) {
      return make_error("socket path inside the sandbox " + inside +
                        ": not a normalized absolute path");
    }
    struct stat st {};
    if (::stat(host(spec_.socket_host_path).c_str(), &st) < 0)
      return sys_error("socket " + spec_.socket_host_path);
    if (!S_ISSOCK(st.st_mode))
      return make_error("socket " + spec_.socket_host_path + ": not a socket");
    // Read-only is fine for connect(): EROFS only applies to files,
    // directories and symlinks, never to sockets.
    bind(spec_.socket_host_path, inside, false, kReadOnly | MOUNT_ATTR_NOEXEC);
    plan_.summary["socket"] = inside;
    return {};
  }

  const FsSpec& spec_;
  std::string host_real_;
  MountPlan plan_;
  std::set<std::string> dirs_{"/"};
  std::vector<std::string> bound_;  // sandbox paths bound from the host, read-only
};

// ---- child side ------------------------------------------------------------

const char* shown(const std::string& p) {
  if (p.starts_with(kNewRoot) || p.starts_with(kOldRoot)) {
    const char* rest = p.c_str() + 8;
    return *rest ? rest : "/";
  }
  return p.c_str();
}

// Fallback for kernels before 5.12: remounting a bind mount must repeat the
// flags the mount already has, or the kernel refuses to clear the locked ones
// (in a user namespace) and silently drops the others.
bool remount_with_attr(const std::string& path, uint64_t attr, ChildError& err) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) < 0) return err.set(errno, "statvfs ", shown(path));
  unsigned long flags = MS_REMOUNT | MS_BIND;
  constexpr std::pair<unsigned long, unsigned long> kKeep[] = {
      {ST_RDONLY, MS_RDONLY},    {ST_NOSUID, MS_NOSUID},   {ST_NODEV, MS_NODEV},
      {ST_NOEXEC, MS_NOEXEC},    {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME},
      {ST_RELATIME, MS_RELATIME}};
  for (auto [st_flag, ms_flag] : kKeep) {
    if (st.f_flag & st_flag) flags |= ms_flag;
  }
  if (attr & MOUNT_ATTR_RDONLY) flags |= MS_RDONLY;
  if (attr & MOUNT_ATTR_NOSUID) flags |= MS_NOSUID;
  if (attr & MOUNT_ATTR_NODEV) flags |= MS_NODEV;
  if (attr & MOUNT_ATTR_NOEXEC) flags |= MS_NOEXEC;
  if (::mount(nullptr, path.c_str(), nullptr, flags, nullptr) < 0)
    return err.set(errno, "remount ", shown(path));
  return true;
}

bool set_attr(const std::string& path, uint64_t attr, bool recursive, ChildError& err) {
  mount_attr ma{};
  ma.attr_set = attr;
  if (::mount_setattr(AT_FDCWD, path.c_str(), recursive ? AT_RECURSIVE : 0, &ma, sizeof ma) == 0)
    return true;
  if (errno != ENOSYS) {
    return err.set(errno, "mount_setattr ", shown(path),
                   (attr & MOUNT_ATTR_RDONLY) ? " (read-only)" : "");
  }
  return remount_with_attr(path, attr, err);
}

bool do_bind(const MountStep& s, ChildError& err) {
  unsigned long flags = MS_BIND | (s.recursive ? MS_REC : 0);
  if (::mount(s.src.c_str(), s.dst.c_str(), nullptr, flags, nullptr) < 0) {
    if (s.optional && errno == ENOENT) return true;
    return err.set(errno, "bind-mount ", shown(s.src), " on ", shown(s.dst));
  }
  return s.attr == 0 || set_attr(s.dst, s.attr, s.recursive, err);
}

bool do_write(const MountStep& s, bool with_content, ChildError& err) {
  int fd = ::open(s.dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, s.mode);
  if (fd < 0) return err.set(errno, "create ", shown(s.dst));
  size_t done = 0;
  while (with_content && done < s.data.size()) {
    ssize_t n = ::write(fd, s.data.data() + done, s.data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return err.set(errno, "write ", shown(s.dst));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return true;
}

bool apply_step(const MountStep& s, ChildError& err) {
  using K = MountStep::Kind;
  switch (s.kind) {
    case K::kDir:
      if (::mkdir(s.dst.c_str(), s.mode) < 0 && errno != EEXIST)
        return err.set(errno, "mkdir ", shown(s.dst));
      return true;
    case K::kFile:
      // A bind target that already exists (the operator socket seen through
      // a read-only bind of the script's directory) is mounted over as is.
      if (::access(s.dst.c_str(), F_OK) == 0) return true;
      return do_write(s, false, err);
    case K::kWrite:
      return do_write(s, true, err);
    case K::kSymlink:
      if (::symlink(s.data.c_str(), s.dst.c_str()) < 0)
        return err.set(errno, "symlink ", shown(s.dst), " -> ", s.data);
      return true;
    case K::kBind:
      return do_bind(s, err);
    case K::kTmpfs:
      if (::mount("tmpfs", s.dst.c_str(), "tmpfs", s.flags, s.data.c_str()) < 0) {
        return err.set(errno, "mount tmpfs (", s.data, ") on ", shown(s.dst));
      }
      return true;
    case K::kProc:
      if (::mount("proc", s.dst.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0) {
        return err.set(errno, "mount proc on ", shown(s.dst));
      }
      return true;
    case K::kAttr:
      return set_attr(s.dst, s.attr, s.recursive, err);
  }
  return err.set(EINVAL, "unknown mount step");
}

}  // namespace

Result<MountPlan> plan_filesystem(const FsSpec& spec) {
  if (spec.hostname.empty() || spec.hostname.size() > 64)
    return make_error("hostname: 1 to 64 characters");
  return Planner(spec).run();
}

bool have_mount_setattr() {
  // An invalid call: EINVAL/EBADF when the syscall exists, ENOSYS otherwise.
  return ::mount_setattr(-1, "", 0, nullptr, 0) == 0 || errno != ENOSYS;
}

bool enter_setup_root(ChildError& err) {
  // Nothing mounted from here on may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
    return err.set(errno, "make / private (mount --make-rprivate /)");
  }
  // The set-up root sits on the host's /tmp only inside our mount namespace;
  // after pivot_root the host's /tmp is visible again under /oldroot/tmp.
  if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k") < 0) {
    return err.set(errno, "mount the set-up tmpfs on /tmp");
  }
  if (::mkdir("/tmp/newroot", 0755) < 0 || ::mkdir("/tmp/oldroot", 0755) < 0) {
    return err.set(errno, "mkdir /tmp/newroot, /tmp/oldroot");
  }
  if (::mount("tmpfs", "/tmp/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0) {
    return err.set(errno, "mount the root tmpfs");
  }
  if (syscall(SYS_pivot_root, "/tmp", "/tmp/oldroot") < 0)
    return err.set(errno, "pivot_root to the set-up root");
  if (::chdir("/") < 0) return err.set(errno, "chdir /");
  return true;
}

bool apply_mount_steps(const MountPlan& plan, ChildError& err) {
  for (const MountStep& s : plan.steps) {
    if (!apply_step(s, err)) return false;
  }
  return true;
}

bool enter_new_root(ChildError& err) {
  if (::chdir(kNewRoot) < 0) return err.set(errno, "chdir /newroot");
  // pivot_root(".", ".") stacks the old root on top of the new one; the
  // lazy unmount then takes it away together with everything under it
  // (the set-up tmpfs and the whole host tree at /oldroot).
  if (syscall(SYS_pivot_root, ".", ".") < 0) return err.set(errno, "pivot_root into the new root");
  if (::umount2(".", MNT_DETACH) < 0) return err.set(errno, "detach the old root");
  if (::chdir("/") < 0) return err.set(errno, "chdir /");
  return set_attr("/", kReadOnly, false, err);
}

}  // namespace agentos::runtime

// echo_baseline: the physical floor for the kernel's IPC path.
//
// A single-threaded, level-triggered epoll server on a Unix stream socket
// that speaks the AgentOS framing (17-byte '<IIBQ' header + payload, see
// DESIGN.md §2) and answers every frame with the same header (agent_id 0)
// and the same payload. It does what any reasonable event-loop server must
// do per request -- one read, one copy into the connection's output buffer,
// one write -- and nothing else, so the gap between it and agentos_kernel
// is the cost of our design, not of the operating system.
//
// Usage: echo_baseline --socket PATH     (SIGTERM/SIGINT stop it cleanly)

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian; this bench copies it raw");

constexpr std::uint32_t kMagic = 0x41474E54;
constexpr std::size_t kHeaderSize = 17;
constexpr std::uint64_t kMaxPayload = 1 << 20;
constexpr std::size_t kReadChunk = 64 * 1024;
// Past this much unsent output we stop reading from the client until it
// drains (the same back-pressure rule the kernel must follow).
constexpr std::size_t kOutputHighWater = 4 << 20;

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

struct Connection {
  explicit Connection(int raw) : fd(raw), in(kReadChunk) {}

  Fd fd;
  std::vector<char> in;   // capacity kReadChunk or one whole frame
  std::size_t in_len = 0;
  std::vector<char> out;  // responses not yet written
  std::size_t out_off = 0;
  std::uint32_t events = EPOLLIN;
};

int fail(const char* what) {
  std::fprintf(stderr, "echo_baseline: %s: %s\n", what, std::strerror(errno));
  return 1;
}

// Bytes the frame starting at p needs in total, or 0 if the header is bad.
std::size_t frame_size(const char* p) {
  std::uint32_t magic = 0;
  std::uint64_t size = 0;
  std::memcpy(&magic, p, 4);
  std::memcpy(&size, p + 9, 8);
  if (magic != kMagic || size > kMaxPayload) return 0;
  return kHeaderSize + size;
}

class EchoServer {
 public:
  EchoServer(Fd listener, Fd signals, Fd epoll)
      : listener_(std::move(listener)), signals_(std::move(signals)), epoll_(std::move(epoll)) {}

  bool watch(int fd, std::uint32_t events, void* tag) {
    epoll_event ev{.events = events, .data = {.ptr = tag}};
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  bool start() {
    return watch(listener_.get(), EPOLLIN, &listener_) && watch(signals_.get(), EPOLLIN, &signals_);
  }

  int run() {
    epoll_event events[256];
    while (!stop_) {
      int n = ::epoll_wait(epoll_.get(), events, 256, -1);
      if (n < 0 && errno != EINTR) return fail("epoll_wait");
      for (int i = 0; i < n; ++i) dispatch(events[i]);
    }
    return 0;
  }

 private:
  void dispatch(const epoll_event& ev) {
    if (ev.data.ptr == &listener_) return accept_all();
    if (ev.data.ptr == &signals_) {
      stop_ = true;
      return;
    }
    auto* c = static_cast<Connection*>(ev.data.ptr);
    bool alive = true;
    if (ev.events & (EPOLLERR | EPOLLHUP)) alive = (ev.events & EPOLLIN) != 0;
    if (alive && (ev.events & EPOLLIN)) alive = on_readable(*c);
    if (alive && (ev.events & EPOLLOUT)) alive = flush(*c);
    if (alive) alive = update_interest(*c);
    if (!alive) conns_.erase(c);  // closes the fd, which also leaves epoll
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: level-triggered retries
      auto c = std::make_unique<Connection>(fd);
      if (!watch(fd, EPOLLIN, c.get())) continue;  // c's Fd closes it
      conns_.emplace(c.get(), std::move(c));
    }
  }

  // One read per readiness event; level-triggered epoll reports leftovers.
  bool on_readable(Connection& c) {
    ssize_t n = ::read(c.fd.get(), c.in.data() + c.in_len, c.in.size() - c.in_len);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.in_len += static_cast<std::size_t>(n);
    if (!consume_frames(c)) return false;
    return flush(c);
  }

  // Echo every complete frame into the output buffer; keep a partial tail.
  bool consume_frames(Connection& c) {
    std::size_t pos = 0;
    while (c.in_len - pos >= kHeaderSize) {
      std::size_t need = frame_size(c.in.data() + pos);
      if (need == 0) return false;  // bad magic or oversized: drop the client
      if (c.in_len - pos < need) {
        if (need > c.in.size()) c.in.resize(need);  // a frame bigger than the chunk
        break;
      }
      const char* frame = c.in.data() + pos;
      c.out.insert(c.out.end(), frame, frame + 4);
      c.out.insert(c.out.end(), 4, '\0');  // agent_id 0
      c.out.insert(c.out.end(), frame + 8, frame + need);
      pos += need;
    }
    if (pos > 0 && pos < c.in_len) std::memmove(c.in.data(), c.in.data() + pos, c.in_len - pos);
    c.in_len -= pos;
    return true;
  }

  bool flush(Connection& c) {
    while (c.out_off < c.out.size()) {
      ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off,
                         MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      c.out_off += static_cast<std::size_t>(n);
    }
    c.out.clear();
    c.out_off = 0;
    return true;
  }

  // Ask for EPOLLOUT only while output is pending; stop reading past the
  // high-water mark. Only calls epoll_ctl when the set actually changes.
  bool update_interest(Connection& c) {
    std::size_t pending = c.out.size() - c.out_off;
    std::uint32_t want = pending > kOutputHighWater ? 0u : std::uint32_t{EPOLLIN};
    if (pending > 0) want |= EPOLLOUT;
    if (want == c.events) return true;
    c.events = want;
    epoll_event ev{.events = want, .data = {.ptr = &c}};
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) == 0;
  }

  Fd listener_, signals_, epoll_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> conns_;
  bool stop_ = false;
};

Fd listen_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    return Fd();
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st{};
  // Replace a stale socket, but never delete a file that is not a socket.
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return fd;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0)
    return Fd();
  return fd;
}

// SIGTERM/SIGINT arrive through a signalfd so shutdown runs the destructors.
Fd block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return Fd();
  return Fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::string_view(argv[1]) != "--socket") {
    std::fprintf(stderr, "usage: %s --socket PATH\n", argv[0]);
    return 2;
  }
  const std::string path = argv[2];
  Fd signals = block_stop_signals();
  if (signals.get() < 0) return fail("signalfd");
  Fd listener = listen_unix(path);
  if (listener.get() < 0) return fail(("listen on " + path).c_str());
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (epoll.get() < 0) return fail("epoll_create1");
  int rc = 0;
  {
    EchoServer server(std::move(listener), std::move(signals), std::move(epoll));
    rc = server.start() ? server.run() : fail("epoll_ctl");
  }
  ::unlink(path.c_str());
  return rc;
}

// ipc_bench: round-trip latency and closed-loop throughput of NOOP requests
// against any server that speaks the AgentOS framing (DESIGN.md §2):
// agentos_kernel's operator socket or bench/echo_baseline.
//
//   latency:    one client, blocking I/O, `--iters` timed round trips of a
//               `--payload`-byte NOOP after `--warmup` untimed ones.
//   throughput: N clients (each `--clients` entry), all driven from one epoll
//               loop, each with exactly one request in flight (closed loop),
//               counted for `--duration` seconds after a short warm-up.
//
// Every reply is checked byte for byte: a NOOP reply to an operator
// connection is the request itself (agent_id 0, same opcode, same payload).
// Output is one "metric value" pair per line (for run_ipc.sh); lines that
// start with '#' are commentary.

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian; this bench copies it raw");

using Clock = std::chrono::steady_clock;
constexpr std::uint32_t kMagic = 0x41474E54;
constexpr std::size_t kHeaderSize = 17;
constexpr std::uint8_t kOpNoop = 0x00;

struct Options {
  std::string socket;
  std::size_t payload = 64;
  int warmup = 2000;
  int iters = 20000;
  double duration_s = 3.0;
  double tp_warmup_s = 0.5;
  std::vector<int> clients{1, 16, 64};
};

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

[[noreturn]] void die(const std::string& what, bool with_errno = true) {
  if (with_errno)
    std::fprintf(stderr, "ipc_bench: %s: %s\n", what.c_str(), std::strerror(errno));
  else
    std::fprintf(stderr, "ipc_bench: %s\n", what.c_str());
  std::exit(1);
}

Fd connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) die("socket path too long: " + path, false);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) die("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    die("connect " + path);
  return fd;
}

// A NOOP frame with agent_id 0 and a recognisable payload; since the reply
// to an operator connection carries agent_id 0 too, it equals the request.
std::vector<char> noop_frame(std::size_t payload) {
  std::vector<char> f(kHeaderSize + payload);
  std::uint32_t agent_id = 0;
  std::uint64_t size = payload;
  std::memcpy(f.data(), &kMagic, 4);
  std::memcpy(f.data() + 4, &agent_id, 4);
  f[8] = static_cast<char>(kOpNoop);
  std::memcpy(f.data() + 9, &size, 8);
  for (std::size_t i = 0; i < payload; ++i) f[kHeaderSize + i] = static_cast<char>('a' + i % 26);
  return f;
}

void check_reply(const std::vector<char>& expected, const char* got) {
  if (std::memcmp(expected.data(), got, expected.size()) == 0) return;
  std::string hex;
  for (std::size_t i = 0; i < kHeaderSize; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x ", static_cast<unsigned char>(got[i]));
    hex += b;
  }
  die("reply differs from the request; reply header: " + hex, false);
}

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) die("send");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void read_exact(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("read");
    if (r == 0) die("server closed the connection", false);
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

double percentile(std::vector<double>& sorted, double p) {
  auto idx = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)];
}

// Each measurement returns how many replies it received, warm-up included.
long long measure_latency(const Options& opt) {
  Fd fd = connect_unix(opt.socket);
  const std::vector<char> req = noop_frame(opt.payload);
  std::vector<char> reply(req.size());
  auto round_trip = [&] {
    write_all(fd.get(), req.data(), req.size());
    read_exact(fd.get(), reply.data(), reply.size());
  };
  for (int i = 0; i < opt.warmup; ++i) {
    round_trip();
    check_reply(req, reply.data());
  }
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(opt.iters));
  for (int i = 0; i < opt.iters; ++i) {
    auto t0 = Clock::now();
    round_trip();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    check_reply(req, reply.data());
  }
  std::sort(us.begin(), us.end());
  std::printf("latency_p50_us %.2f\n", percentile(us, 0.50));
  std::printf("latency_p99_us %.2f\n", percentile(us, 0.99));
  std::printf("# latency: %d round trips, %zu-byte payload, min %.2f us, max %.2f us\n",
              opt.iters, opt.payload, us.front(), us.back());
  return opt.warmup + opt.iters;
}

// One closed-loop client: a request is either being sent or awaited.
struct Client {
  Fd fd;
  std::size_t sent = 0;   // bytes of the current request written
  std::size_t got = 0;    // bytes of the current reply read
  std::vector<char> reply;
  long long done = 0;     // replies counted inside the measured window
  std::uint32_t events = EPOLLIN;
};

class LoadLoop {
 public:
  LoadLoop(const Options& opt, int n)
      : req_(noop_frame(opt.payload)), epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (epoll_.get() < 0) die("epoll_create1");
    clients_.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i)
      clients_.push_back(Client{.fd = connect_unix(opt.socket), .reply = std::vector<char>(req_.size())});
    for (Client& c : clients_) {
      if (::fcntl(c.fd.get(), F_SETFL, O_NONBLOCK) != 0) die("fcntl");
      epoll_event ev{.events = EPOLLIN, .data = {.ptr = &c}};
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &ev) != 0) die("epoll_ctl");
    }
  }

  // Runs until `end`; replies arriving in [measure_from, end) are counted.
  void run(Clock::time_point measure_from, Clock::time_point end) {
    for (Client& c : clients_) send_more(c);
    epoll_event events[256];
    Clock::time_point now = Clock::now();
    while (now < end) {
      counting_ = now >= measure_from;
      int n = ::epoll_wait(epoll_.get(), events, 256, 10);
      if (n < 0 && errno != EINTR) die("epoll_wait");
      for (int i = 0; i < n; ++i) on_event(*static_cast<Client*>(events[i].data.ptr), events[i].events);
      now = Clock::now();
    }
  }

  [[nodiscard]] const std::vector<Client>& clients() const { return clients_; }
  [[nodiscard]] long long replies() const { return replies_; }

 private:
  void on_event(Client& c, std::uint32_t ev) {
    if (ev & EPOLLOUT) send_more(c);
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c);
  }

  void receive(Client& c) {
    ssize_t r = ::read(c.fd.get(), c.reply.data() + c.got, c.reply.size() - c.got);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (r < 0) die("read");
    if (r == 0) die("server closed a connection", false);
    c.got += static_cast<std::size_t>(r);
    if (c.got < c.reply.size()) return;
    check_reply(req_, c.reply.data());
    ++replies_;
    if (counting_) ++c.done;
    c.got = 0;
    c.sent = 0;
    send_more(c);
  }

  void send_more(Client& c) {
    while (c.sent < req_.size()) {
      ssize_t w = ::send(c.fd.get(), req_.data() + c.sent, req_.size() - c.sent, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) break;
      if (w < 0) die("send");
      c.sent += static_cast<std::size_t>(w);
    }
    set_events(c, c.sent < req_.size() ? EPOLLIN | EPOLLOUT : EPOLLIN);
  }

  void set_events(Client& c, std::uint32_t want) {
    if (c.events == want) return;
    c.events = want;
    epoll_event ev{.events = want, .data = {.ptr = &c}};
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) != 0) die("epoll_ctl");
  }

  std::vector<char> req_;
  Fd epoll_;
  std::vector<Client> clients_;
  bool counting_ = false;
  long long replies_ = 0;  // including warm-up, for CPU-per-request accounting
};

long long measure_throughput(const Options& opt, int n) {
  LoadLoop loop(opt, n);
  auto start = Clock::now();
  auto from = start + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(opt.tp_warmup_s));
  auto end = from + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(opt.duration_s));
  loop.run(from, end);
  double window = std::chrono::duration<double>(Clock::now() - from).count();
  long long total = 0, lo = -1, hi = 0;
  for (const Client& c : loop.clients()) {
    total += c.done;
    lo = lo < 0 ? c.done : std::min(lo, c.done);
    hi = std::max(hi, c.done);
  }
  std::printf("rps_c%d %.0f\n", n, static_cast<double>(total) / window);
  std::printf("# throughput c%d: %lld replies in %.2f s; per client min %lld max %lld\n", n,
              total, window, lo, hi);
  return loop.replies();
}

template <class T>
T parse_number(std::string_view s, const char* flag) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < T{})
    die(std::string("bad value for ") + flag + ": " + std::string(s), false);
  return v;
}

std::vector<int> parse_list(std::string_view s) {
  std::vector<int> out;
  while (!s.empty()) {
    auto comma = s.find(',');
    out.push_back(parse_number<int>(s.substr(0, comma), "--clients"));
    if (out.back() <= 0) die("--clients entries must be positive", false);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) die("usage: ipc_bench --socket PATH [--payload N] [--warmup N] "
                           "[--iters N] [--duration SEC] [--clients 1,16,64]", false);
    std::string_view v = argv[++i];
    if (a == "--socket") o.socket = v;
    else if (a == "--payload") o.payload = parse_number<std::size_t>(v, "--payload");
    else if (a == "--warmup") o.warmup = parse_number<int>(v, "--warmup");
    else if (a == "--iters") o.iters = parse_number<int>(v, "--iters");
    else if (a == "--duration") o.duration_s = parse_number<double>(v, "--duration");
    else if (a == "--clients") o.clients = parse_list(v);
    else die("unknown flag " + std::string(a), false);
  }
  if (o.socket.empty()) die("--socket is required", false);
  if (o.iters <= 0 || o.payload > (1u << 20)) die("need --iters > 0 and --payload <= 1 MiB", false);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  std::printf("# ipc_bench %s: NOOP, %zu-byte payload; client and server run on the same "
              "machine and share its %ld cores (no pinning)\n",
              opt.socket.c_str(), opt.payload, ::sysconf(_SC_NPROCESSORS_ONLN));
  long long replies = measure_latency(opt);
  for (int n : opt.clients) replies += measure_throughput(opt, n);
  // run_ipc.sh divides the server's CPU time by this.
  std::printf("# requests_total %lld\n", replies);
  return 0;
}

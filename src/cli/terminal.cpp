#include "cli/terminal.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

namespace agentos::cli {
namespace {

constexpr std::string_view kEnterScreen = "\x1b[?1049h\x1b[?25l";  // alternate screen, hide cursor
constexpr std::string_view kLeaveScreen = "\x1b[?25h\x1b[?1049l";  // show cursor, normal screen
constexpr std::string_view kHome = "\x1b[H";
constexpr std::string_view kClearToEol = "\x1b[K";
constexpr std::string_view kClearBelow = "\x1b[J";

}  // namespace

Result<void> write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("write to the terminal");
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::unique_ptr<TerminalScreen>> TerminalScreen::enter(int in_fd, int out_fd) {
  std::unique_ptr<TerminalScreen> screen(new TerminalScreen(in_fd, out_fd));
  if (::isatty(in_fd)) {
    termios t{};
    if (::tcgetattr(in_fd, &t) < 0) return sys_error("tcgetattr");
    screen->saved_ = t;
    // Keys one at a time, no echo, and Ctrl-C as a key (ISIG off) so that
    // quitting always goes through the destructor. OPOST stays: '\n' -> CRLF.
    t.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO | ISIG | IEXTEN));
    t.c_iflag &= static_cast<tcflag_t>(~(IXON | ICRNL));
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (::tcsetattr(in_fd, TCSAFLUSH, &t) < 0) {
      screen->saved_.reset();
      return sys_error("tcsetattr");
    }
  }
  AOS_TRY_VOID(write_all(out_fd, kEnterScreen));
  return screen;
}

TerminalScreen::~TerminalScreen() {
  (void)write_all(out_fd_, kLeaveScreen);
  if (saved_) ::tcsetattr(in_fd_, TCSAFLUSH, &*saved_);
}

std::pair<size_t, size_t> TerminalScreen::size() const {
  winsize ws{};
  if (::ioctl(out_fd_, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0 || ws.ws_row == 0) return {80, 24};
  return {ws.ws_col, ws.ws_row};
}

Result<void> TerminalScreen::draw(std::string_view frame) {
  const size_t rows = size().second;
  std::string out(kHome);
  size_t shown = 0;
  // The last row stays empty: writing its '\n' would scroll the screen.
  while (!frame.empty() && shown + 1 < rows) {
    const size_t nl = frame.find('\n');
    out += frame.substr(0, nl);
    out += kClearToEol;
    out += '\n';
    frame.remove_prefix(nl == std::string_view::npos ? frame.size() : nl + 1);
    ++shown;
  }
  out += kClearBelow;
  return write_all(out_fd_, out);
}

Result<std::optional<char>> TerminalScreen::read_key(std::chrono::milliseconds timeout) {
  pollfd p{saved_ ? in_fd_ : -1, POLLIN, 0};  // fd -1: poll just waits
  const int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(timeout.count(), 0)));
  if (n < 0 && errno == EINTR) return std::nullopt;
  if (n < 0) return sys_error("poll");
  if (n == 0 || !(p.revents & (POLLIN | POLLHUP))) return std::nullopt;
  char c = 0;
  const ssize_t r = ::read(in_fd_, &c, 1);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return std::nullopt;
  if (r < 0) return sys_error("read from the terminal");
  if (r == 0) return make_error("the terminal closed");
  return c;
}

}  // namespace agentos::cli

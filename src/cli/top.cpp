// agentos top: STATS every interval, on the alternate screen when stdout is
// a terminal, else as plain snapshots (top -b style) for scripts and tests.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "cli/terminal.hpp"
#include "cli/views.hpp"

namespace agentos::cli {
namespace {

using ipc::Op;
using Clock = std::chrono::steady_clock;

// Set from signal handlers, hence static storage of sig_atomic_t.
volatile sig_atomic_t g_stop_signal = 0;
volatile sig_atomic_t g_resized = 0;

void on_stop_signal(int signo) { g_stop_signal = signo; }
void on_resize(int) { g_resized = 1; }

// While the screen is up, SIGINT/SIGTERM/SIGHUP must end the loop (so the
// terminal is restored), not the process. No SA_RESTART: a signal wakes
// the poll() that waits for keys. The old handlers come back on scope exit.
class SignalFlags {
 public:
  SignalFlags() {
    install(SIGINT, on_stop_signal, 0);
    install(SIGTERM, on_stop_signal, 1);
    install(SIGHUP, on_stop_signal, 2);
    install(SIGWINCH, on_resize, 3);
  }
  ~SignalFlags() {
    const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};
    for (int i = 0; i < 4; ++i) ::sigaction(signals[i], &old_[i], nullptr);
  }
  SignalFlags(const SignalFlags&) = delete;
  SignalFlags& operator=(const SignalFlags&) = delete;

 private:
  void install(int signo, void (*handler)(int), int slot) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    ::sigaction(signo, &sa, &old_[slot]);
  }
  struct sigaction old_[4]{};
};

bool is_quit_key(char c) {
  return c == 'q' || c == 'Q' || c == 0x03 /* Ctrl-C */ || c == 0x04 /* Ctrl-D */;
}

std::string title_line(const std::string& socket, uint64_t interval_ms, size_t width) {
  const std::string line =
      fmt::format("agentos top · {} · every {} · q quits", socket,
                  interval_ms % 1000 ? fmt::format("{} ms", interval_ms)
                                     : fmt::format("{} s", interval_ms / 1000));
  return std::string(cut_to_width(line, width)) + "\n";
}

// Waits until `deadline` or a quit key / stop signal (true: quit).
Result<bool> wait_for_quit(TerminalScreen& screen, Clock::time_point deadline) {
  while (g_stop_signal == 0 && g_resized == 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    auto key = AOS_TRY(screen.read_key(left));
    if (key && is_quit_key(*key)) return true;
  }
  g_resized = 0;
  return g_stop_signal != 0;
}

Result<int> run_screen(Client& c, const GlobalOptions& g, const TopOptions& o) {
  g_stop_signal = 0;
  g_resized = 0;
  SignalFlags signals;
  auto screen = AOS_TRY(TerminalScreen::enter(STDIN_FILENO, STDOUT_FILENO));
  for (;;) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(o.interval_ms);
    json stats = AOS_TRY(request(c, Op::kStats, json::object()));
    const size_t width = screen->size().first;
    AOS_TRY_VOID(
        screen->draw(title_line(g.socket, o.interval_ms, width) + render_top(stats, width)));
    if (AOS_TRY(wait_for_quit(*screen, deadline))) return kExitOk;
  }
}

void sleep_ms(uint64_t ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
  while (::nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

Result<int> run_batch(Client& c, const GlobalOptions& g, const TopOptions& o) {
  for (uint64_t i = 0; !o.iterations || i < *o.iterations; ++i) {
    if (i > 0) sleep_ms(o.interval_ms);
    json stats = AOS_TRY(request(c, Op::kStats, json::object()));
    if (g.json) {
      emit(stdout, stats.dump() + "\n");
    } else {
      emit(stdout, (i > 0 ? "\n" : "") + render_top(stats, 0));
    }
  }
  return kExitOk;
}

}  // namespace

Result<int> cmd_top(const GlobalOptions& g, const TopOptions& o) {
  Client c = AOS_TRY(Client::connect(g.socket));
  const bool screen = !o.iterations && !g.json && ::isatty(STDOUT_FILENO);
  return screen ? run_screen(c, g, o) : run_batch(c, g, o);
}

}  // namespace agentos::cli

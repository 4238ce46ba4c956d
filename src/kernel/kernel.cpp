#include "kernel/kernel.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/log.hpp"

namespace agentos {
namespace {

using nlohmann::json;

constexpr auto kShutdownGrace = std::chrono::seconds(5);

std::string error_json(std::string_view message) { return json{{"error", message}}.dump(); }

Result<void> make_dir(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return make_error("create directory " + path, ec.value());
  if (::chmod(path.c_str(), mode) < 0) return sys_error("chmod " + path);
  return {};
}

}  // namespace

json kernel_features() {
  return json::array({"noop", "think", "list", "hello", "exit"});
}

Kernel::Kernel(KernelConfig cfg) : cfg_(std::move(cfg)) {}

Kernel::~Kernel() {
  server_.reset();  // removes the socket files before the lock goes
  if (!cfg_.runtime_dir.empty()) ::rmdir(cfg_.runtime_dir.c_str());
}

Result<std::unique_ptr<Kernel>> Kernel::create(KernelConfig cfg) {
  resolve_paths(cfg);
  std::unique_ptr<Kernel> k(new Kernel(std::move(cfg)));
  AOS_TRY_VOID(k->init());
  return k;
}

Result<void> Kernel::init() {
  reactor_ = AOS_TRY(Reactor::create({SIGINT, SIGTERM, SIGHUP, SIGCHLD}));
  lock_.emplace(AOS_TRY(ipc::PathLock::acquire(cfg_.socket_path)));
  AOS_TRY_VOID(make_dir(cfg_.runtime_dir, 0755));
  AOS_TRY_VOID(make_dir(cfg_.state_dir, 0700));

  ipc::ServerLimits limits;
  limits.max_connections = cfg_.max_connections;
  limits.connection.max_output_bytes = cfg_.max_output_bytes;
  limits.connection.max_pending_requests = cfg_.max_pending_requests;
  server_ = std::make_unique<ipc::SocketServer>(
      *reactor_, limits,
      [this](const ipc::Caller& c, uint8_t op, std::string_view p, ipc::Responder r) {
        dispatch(c, op, p, std::move(r));
      });
  ipc::ListenOptions opts;
  opts.mode = static_cast<mode_t>(cfg_.socket_mode);
  AOS_TRY_VOID(server_->add_listener(cfg_.socket_path, 0, opts));

  register_syscalls();
  reactor_->on_signal(SIGINT, [this](int s) { begin_shutdown(s); });
  reactor_->on_signal(SIGTERM, [this](int s) { begin_shutdown(s); });
  reactor_->on_signal(SIGHUP, [](int) { log::info("SIGHUP: nothing to reload"); });
  reactor_->on_signal(SIGCHLD, [](int) {});  // children are watched by pidfd
  return {};
}

void Kernel::register_syscalls() {
  auto set = [this](ipc::Op op, Handler h) { table_[static_cast<uint8_t>(op)] = h; };
  set(ipc::Op::kNoop, &Kernel::sys_noop);
  set(ipc::Op::kThink, &Kernel::sys_think);
  set(ipc::Op::kList, &Kernel::sys_list);
  set(ipc::Op::kHello, &Kernel::sys_hello);
  set(ipc::Op::kExit, &Kernel::sys_exit);
}

Result<void> Kernel::run() {
  log::info("agentos_kernel {} listening on {} (instance {}, state {}, runtime {})", AGENTOS_VERSION,
            cfg_.socket_path, cfg_.instance, cfg_.state_dir, cfg_.runtime_dir);
  return reactor_->run();
}

void Kernel::begin_shutdown(int signo) {
  if (shutting_down_) {
    log::warn("second signal {}: stopping now", signo);
    reactor_->stop();
    return;
  }
  shutting_down_ = true;
  log::info("signal {}: shutting down", signo);
  // Replies already queued get kShutdownGrace to reach clients that read.
  shutdown_deadline_ = reactor_->after(kShutdownGrace, [this] { reactor_->stop(); });
  server_->shutdown([this] { reactor_->stop(); });
}

void Kernel::dispatch(const ipc::Caller& caller, uint8_t opcode, std::string_view payload,
                      ipc::Responder r) {
  Handler h = table_[opcode];
  if (!h) {
    r.reply(error_json(fmt::format("unknown opcode 0x{:02x}", opcode)));
    return;
  }
  // Handlers turn bad input into {"error"} themselves; this catch is the
  // last line so that no exception escapes into the event loop.
  try {
    (this->*h)(caller, payload, std::move(r));
  } catch (const std::exception& e) {
    log::error("syscall 0x{:02x}: {}", opcode, e.what());
  }
}

void Kernel::sys_noop(const ipc::Caller&, std::string_view payload, ipc::Responder r) {
  r.reply(payload);
}

void Kernel::sys_think(const ipc::Caller&, std::string_view, ipc::Responder r) {
  r.reply(json{{"content", ""},
               {"tokens", 0},
               {"error", "LLM not configured (set GEMINI_API_KEY, GOOGLE_API_KEY or OPENAI_API_KEY)"}}
              .dump());
}

void Kernel::sys_list(const ipc::Caller&, std::string_view, ipc::Responder r) {
  r.reply(json::array().dump());
}

void Kernel::sys_hello(const ipc::Caller& caller, std::string_view, ipc::Responder r) {
  r.reply(json{{"protocol", ipc::kProtocolVersion},
               {"kernel", AGENTOS_VERSION},
               {"features", kernel_features()},
               {"agent_id", caller.agent_id},
               {"max_payload", ipc::kMaxPayload}}
              .dump());
}

void Kernel::sys_exit(const ipc::Caller&, std::string_view, ipc::Responder r) {
  r.reply_and_close("goodbye");
}

}  // namespace agentos

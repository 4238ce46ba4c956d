#include "ipc/socket_server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "util/log.hpp"

namespace agentos::ipc {
namespace {

PeerCred peer_cred(int fd) {
  ucred uc{};
  socklen_t len = sizeof uc;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) return {};
  return {uc.pid, uc.uid, uc.gid};
}

}  // namespace

SocketServer::Listener::~Listener() {
  watch.reset();
  if (fd) ::unlink(path.c_str());
}

SocketServer::SocketServer(Reactor& reactor, ServerLimits limits, Dispatch dispatch)
    : reactor_(reactor), limits_(limits), dispatch_(std::move(dispatch)) {}

SocketServer::~SocketServer() {
  // Connections first: their on_closed callbacks point back at us.
  for (auto& [id, c] : conns_) c->close();
  conns_.clear();
}

Result<void> SocketServer::add_listener(const std::string& path, uint32_t agent_id,
                                        const ListenOptions& opts) {
  if (listeners_.contains(agent_id)) return make_error("already listening for agent " + std::to_string(agent_id), EEXIST);
  auto l = std::make_unique<Listener>();
  l->path = path;
  l->agent_id = agent_id;
  l->fd = AOS_TRY(listen_unix(path, opts));
  Listener* raw = l.get();
  auto watch = reactor_.watch(raw->fd.get(), EPOLLIN, [this, raw](uint32_t) { accept_ready(*raw); });
  if (!watch) return std::unexpected(watch.error().wrap("watch " + path));
  l->watch = std::move(*watch);
  listeners_.emplace(agent_id, std::move(l));
  return {};
}

void SocketServer::remove_listener(uint32_t agent_id) {
  listeners_.erase(agent_id);
}

void SocketServer::accept_ready(Listener& l) {
  for (;;) {
    UniqueFd fd(::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of fds: the listening socket stays readable, so stop watching
        // it for a moment instead of spinning.
        log::warn("accept on {}: {}; pausing accepts for 100 ms", l.path, std::strerror(errno));
        (void)l.watch.set_events(0);
        l.retry = reactor_.after(std::chrono::milliseconds(100), [&l] { (void)l.watch.set_events(EPOLLIN); });
        return;
      }
      log::warn("accept on {}: {}", l.path, std::strerror(errno));
      return;
    }
    if (conns_.size() >= limits_.max_connections) {
      refuse(std::move(fd), "too many connections (limit " + std::to_string(limits_.max_connections) + ")");
      continue;
    }
    const uint64_t id = next_conn_id_++;
    Caller caller{id, l.agent_id, peer_cred(fd.get())};
    auto conn = std::make_shared<Connection>(reactor_, std::move(fd), caller, limits_.connection,
                                             &dispatch_, [this](uint64_t cid) { closed(cid); });
    if (auto r = conn->start(); !r) {
      log::warn("connection {}: {}", id, r.error().message());
      continue;
    }
    log::debug("connection {} from pid {} uid {} on {} (agent {})", id, caller.cred.pid,
               caller.cred.uid, l.path, l.agent_id);
    conns_.emplace(id, std::move(conn));
  }
}

void SocketServer::refuse(UniqueFd fd, std::string_view why) {
  // One best-effort error frame on a fresh socket (its send buffer is empty,
  // so a small frame fits), then close.
  std::string frame;
  append_frame(frame, 0, 0, nlohmann::json{{"error", why}}.dump());
  [[maybe_unused]] auto n = ::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  log::warn("refused a connection: {}", why);
}

void SocketServer::closed(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  const Caller caller = it->second->caller();
  // Destroy after the current callback: the connection may be on the stack.
  reactor_.defer([c = std::move(it->second)] {});
  conns_.erase(it);
  if (on_closed_) on_closed_(caller);
  maybe_done();
}

void SocketServer::shutdown(std::move_only_function<void()> done) {
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  listeners_.clear();
  // drain_and_close may close (and erase) synchronously: iterate a copy.
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [id, c] : conns_) all.push_back(c);
  for (auto& c : all) c->drain_and_close();
  maybe_done();
}

void SocketServer::maybe_done() {
  if (shutting_down_ && conns_.empty() && shutdown_done_) {
    auto done = std::move(shutdown_done_);
    done();
  }
}

}  // namespace agentos::ipc

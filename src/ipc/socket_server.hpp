// Listening sockets (the operator's and one per agent) and the connections
// accepted on them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "ipc/connection.hpp"
#include "ipc/unix_socket.hpp"
#include "kernel/reactor.hpp"

namespace agentos::ipc {

struct ServerLimits {
  size_t max_connections = 1024;
  ConnectionLimits connection;
};

class SocketServer {
 public:
  using Dispatch = Connection::Dispatch;
  using OnClosed = std::move_only_function<void(const Caller&)>;

  SocketServer(Reactor& reactor, ServerLimits limits, Dispatch dispatch);
  ~SocketServer();
  SocketServer(const SocketServer&) = delete;
  SocketServer& operator=(const SocketServer&) = delete;

  /// Listens on `path`; connections accepted there are identified as
  /// `agent_id` (0: operator). The socket file is removed with the listener.
  Result<void> add_listener(const std::string& path, uint32_t agent_id, const ListenOptions& opts);
  /// Stops listening for `agent_id` and removes its socket file. Open
  /// connections stay until their peers close them.
  void remove_listener(uint32_t agent_id);
  /// Called after a connection closed (cancellation of its pending work).
  void on_closed(OnClosed cb) { on_closed_ = std::move(cb); }

  /// Graceful stop: stop accepting, stop reading, flush queued replies and
  /// close. `done` runs once every connection is gone.
  void shutdown(std::move_only_function<void()> done);

  [[nodiscard]] size_t connection_count() const { return conns_.size(); }
  [[nodiscard]] size_t listener_count() const { return listeners_.size(); }

 private:
  struct Listener {
    std::string path;
    uint32_t agent_id = 0;
    UniqueFd fd;
    FdWatch watch;
    Timer retry;  // accept paused after EMFILE
    ~Listener();
  };

  void accept_ready(Listener& l);
  void refuse(UniqueFd fd, std::string_view why);
  void closed(uint64_t id);
  void maybe_done();

  Reactor& reactor_;
  ServerLimits limits_;
  Dispatch dispatch_;
  OnClosed on_closed_;
  std::map<uint32_t, std::unique_ptr<Listener>> listeners_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> conns_;
  uint64_t next_conn_id_ = 1;
  std::move_only_function<void()> shutdown_done_;
  bool shutting_down_ = false;
};

}  // namespace agentos::ipc

// One client connection: framing in, ordered replies out, back-pressure.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "ipc/protocol.hpp"
#include "kernel/reactor.hpp"
#include "util/unique_fd.hpp"

namespace agentos::ipc {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

/// Who is asking. The listening socket a connection arrived on decides
/// agent_id (0: operator); what the client claims in headers is ignored.
struct Caller {
  uint64_t connection_id = 0;
  uint32_t agent_id = 0;
  PeerCred cred;
};

class Connection;

/// Completes one request with its reply. Replies go out in request order,
/// whenever each is completed. Move-only; a Responder destroyed without a
/// reply answers with an internal error so the connection never stalls.
class Responder {
 public:
  Responder(std::weak_ptr<Connection> conn, uint64_t seq, uint8_t opcode)
      : conn_(std::move(conn)), seq_(seq), opcode_(opcode) {}
  // A moved-from Responder counts as done, so its destructor stays silent.
  Responder(Responder&& o) noexcept
      : conn_(std::move(o.conn_)), seq_(o.seq_), opcode_(o.opcode_), done_(std::exchange(o.done_, true)) {}
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  /// Sends `payload` as this request's reply. No-op if the client is gone.
  void reply(std::string_view payload);
  /// Replies, then closes the connection once everything before is flushed.
  void reply_and_close(std::string_view payload);
  /// True while the connection that asked is still open.
  [[nodiscard]] bool connected() const { return !conn_.expired(); }
  [[nodiscard]] uint8_t opcode() const { return opcode_; }

 private:
  void complete(std::string_view payload, bool close);
  void drop();
  std::weak_ptr<Connection> conn_;
  uint64_t seq_ = 0;
  uint8_t opcode_ = 0;
  bool done_ = false;
};

struct ConnectionLimits {
  size_t max_output_bytes = 4 * 1024 * 1024;  // stop reading past this much queued output
  size_t max_pending_requests = 4096;         // stop reading past this many unanswered requests
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Dispatch = std::move_only_function<void(const Caller&, uint8_t opcode,
                                                std::string_view payload, Responder)>;
  using OnClosed = std::move_only_function<void(uint64_t connection_id)>;

  Connection(Reactor& reactor, UniqueFd fd, Caller caller, ConnectionLimits limits,
             Dispatch* dispatch, OnClosed on_closed);
  ~Connection();

  /// Starts watching the fd; call once after construction.
  Result<void> start();
  /// Stops reading; closes after queued replies are flushed (shutdown).
  void drain_and_close();
  /// Closes now, dropping unsent replies.
  void close();

  [[nodiscard]] const Caller& caller() const { return caller_; }
  [[nodiscard]] bool closed() const { return !fd_; }

 private:
  friend class Responder;
  struct Slot {
    bool ready = false;
    bool close_after = false;
    std::string frame;
  };

  void on_events(uint32_t events);
  void read_some();
  void process_frames();
  void complete(uint64_t seq, uint8_t opcode, std::string_view payload, bool close_after);
  void queue_error_and_close(uint8_t opcode, std::string_view message);
  void flush();
  void update_interest();
  [[nodiscard]] bool over_limits() const;

  Reactor& reactor_;
  UniqueFd fd_;
  FdWatch watch_;
  Caller caller_;
  ConnectionLimits limits_;
  Dispatch* dispatch_;
  OnClosed on_closed_;

  FrameDecoder decoder_;
  std::deque<Slot> slots_;  // unanswered or unflushed replies, in request order
  uint64_t first_seq_ = 0;  // seq of slots_.front()
  std::string out_;         // encoded replies ready to write
  size_t out_off_ = 0;
  bool input_closed_ = false;  // EXIT, framing error, EOF, or shutdown: read no more
  bool close_when_flushed_ = false;
  bool peer_eof_ = false;     // the peer shut down its sending side
  bool processing_ = false;   // inside process_frames()
};

}  // namespace agentos::ipc

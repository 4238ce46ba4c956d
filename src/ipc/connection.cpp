#include "ipc/connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "util/log.hpp"

namespace agentos::ipc {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

// Reads land here when no frame is incomplete, and complete frames are
// parsed in place; only an incomplete tail is copied into the connection.
// So an idle connection holds no read buffer (1,000 connections would
// otherwise pin 64 MiB). One per thread: the kernel has one.
char* read_scratch() {
  alignas(64) static thread_local char scratch[kReadChunk];
  return scratch;
}

std::string error_json(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump();
}

}  // namespace

// ---- Responder -------------------------------------------------------------

Responder& Responder::operator=(Responder&& o) noexcept {
  if (this != &o) {
    drop();
    conn_ = std::move(o.conn_);
    seq_ = o.seq_;
    opcode_ = o.opcode_;
    done_ = o.done_;
    o.done_ = true;
  }
  return *this;
}

Responder::~Responder() { drop(); }

void Responder::drop() {
  // Only build the error when someone can still read it.
  if (!done_ && !conn_.expired()) complete(error_json("internal error: request dropped without a reply"), false);
  done_ = true;
}

void Responder::reply(std::string_view payload) { complete(payload, false); }

void Responder::reply_and_close(std::string_view payload) { complete(payload, true); }

void Responder::complete(std::string_view payload, bool close) {
  if (done_) return;
  done_ = true;
  if (auto c = conn_.lock()) c->complete(seq_, opcode_, payload, close);
}

// ---- Connection ------------------------------------------------------------

Connection::Connection(Reactor& reactor, UniqueFd fd, Caller caller, ConnectionLimits limits,
                       Dispatch* dispatch, OnClosed on_closed)
    : reactor_(reactor),
      fd_(std::move(fd)),
      caller_(caller),
      limits_(limits),
      dispatch_(dispatch),
      on_closed_(std::move(on_closed)) {}

Connection::~Connection() = default;

Result<void> Connection::start() {
  std::weak_ptr<Connection> weak = weak_from_this();
  watch_ = AOS_TRY(reactor_.watch(fd_.get(), EPOLLIN, [weak](uint32_t ev) {
    if (auto self = weak.lock()) self->on_events(ev);
  }));
  return {};
}

void Connection::on_events(uint32_t events) {
  auto self = shared_from_this();  // a handler may drop the last other reference
  // EPOLLHUP on a Unix stream socket means the peer closed both directions:
  // nobody will read replies, so pending work is dropped (and cancelled by
  // the owner through on_closed).
  if (events & (EPOLLHUP | EPOLLERR)) {
    close();
    return;
  }
  if (events & EPOLLOUT) flush();
  if (fd_ && (events & EPOLLIN)) read_some();
}

void Connection::read_some() {
  while (fd_ && !input_closed_ && !over_limits()) {
    // The rest of an incomplete frame goes straight after its beginning.
    const bool partial = decoder_.buffered() != 0;
    char* buf = partial ? decoder_.prepare(kReadChunk) : read_scratch();
    const ssize_t n = ::recv(fd_.get(), buf, kReadChunk, 0);
    if (n > 0) {
      if (partial) {
        decoder_.commit(static_cast<size_t>(n));
      } else {
        decoder_.borrow({buf, static_cast<size_t>(n)});
      }
      process_frames();
      decoder_.keep_rest();  // before the scratch buffer is read into again
      if (static_cast<size_t>(n) < kReadChunk) break;  // drained for now
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    if (n < 0) {
      close();
      return;
    }
    // EOF: the client shut down its sending side. It may still read, so
    // answer what was asked, then close.
    input_closed_ = true;
    peer_eof_ = true;
    flush();
    return;
  }
  update_interest();
}

void Connection::process_frames() {
  // A synchronous reply flushes, and flushing may resume frame processing:
  // the guard keeps that from recursing once per pipelined request.
  if (processing_) return;
  processing_ = true;
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{processing_};
  while (fd_ && !input_closed_ && !over_limits()) {
    auto item = decoder_.next();
    if (std::holds_alternative<std::monostate>(item)) return;
    if (auto* err = std::get_if<FrameError>(&item)) {
      queue_error_and_close(err->opcode, err->message);
      return;
    }
    const Frame& f = std::get<Frame>(item);
    const uint64_t seq = first_seq_ + slots_.size();
    slots_.emplace_back();
    if (f.opcode == static_cast<uint8_t>(Op::kExit)) input_closed_ = true;  // discard what follows
    (*dispatch_)(caller_, f.opcode, f.payload, Responder(weak_from_this(), seq, f.opcode));
  }
}

void Connection::queue_error_and_close(uint8_t opcode, std::string_view message) {
  log::debug("connection {}: {}; closing", caller_.connection_id, message);
  input_closed_ = true;
  const uint64_t seq = first_seq_ + slots_.size();
  slots_.emplace_back();
  complete(seq, opcode, error_json(message), true);
}

void Connection::complete(uint64_t seq, uint8_t opcode, std::string_view payload, bool close_after) {
  if (!fd_ || seq < first_seq_ || seq - first_seq_ >= slots_.size()) return;
  Slot& slot = slots_[seq - first_seq_];
  slot.ready = true;
  slot.close_after = close_after;
  append_frame(slot.frame, caller_.agent_id, opcode, payload);
  // Move every leading ready reply to the output, preserving request order.
  while (!slots_.empty() && slots_.front().ready) {
    Slot& front = slots_.front();
    out_.append(front.frame);
    if (front.close_after) {
      input_closed_ = true;
      close_when_flushed_ = true;
    }
    slots_.pop_front();
    ++first_seq_;
    if (close_when_flushed_) {
      slots_.clear();  // requests after EXIT get no reply
      break;
    }
  }
  flush();
}

void Connection::flush() {
  while (fd_ && out_off_ < out_.size()) {
    const ssize_t n = ::send(fd_.get(), out_.data() + out_off_, out_.size() - out_off_,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    close();  // EPIPE/ECONNRESET: the peer is gone
    return;
  }
  if (!fd_) return;
  if (out_off_ == out_.size()) {
    // Keep a small buffer for the next reply; give back a big one (a long
    // LIST or LOGS page) so idle connections stay small.
    if (out_.capacity() > kReadChunk / 4) {
      std::string().swap(out_);
    } else {
      out_.clear();
    }
    out_off_ = 0;
    if (close_when_flushed_ || (peer_eof_ && slots_.empty())) {
      close();
      return;
    }
  } else if (out_off_ > out_.size() / 2) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  // Draining may lift back-pressure: handle frames already buffered.
  if (!over_limits() && !input_closed_ && decoder_.buffered() > 0) process_frames();
  update_interest();
}

bool Connection::over_limits() const {
  return out_.size() - out_off_ > limits_.max_output_bytes ||
         slots_.size() >= limits_.max_pending_requests;
}

void Connection::update_interest() {
  if (!fd_ || !watch_.active()) return;
  // EPOLLHUP/EPOLLERR are always reported; EPOLLRDHUP is not asked for, so
  // a paused connection whose peer half-closed does not spin the loop.
  uint32_t ev = 0;
  if (!input_closed_ && !over_limits()) ev |= EPOLLIN;
  if (out_off_ < out_.size()) ev |= EPOLLOUT;
  if (auto r = watch_.set_events(ev); !r) {
    log::warn("connection {}: {}", caller_.connection_id, r.error().message());
    close();
  }
}

void Connection::drain_and_close() {
  input_closed_ = true;
  close_when_flushed_ = true;
  slots_.clear();  // unanswered requests will not be answered during shutdown
  flush();
}

void Connection::close() {
  if (!fd_) return;
  watch_.reset();
  fd_.reset();
  slots_.clear();
  out_.clear();
  out_off_ = 0;
  if (on_closed_) {
    // The owner may destroy us from inside this call; nothing touches
    // members after it.
    auto cb = std::move(on_closed_);
    cb(caller_.connection_id);
  }
}

}  // namespace agentos::ipc

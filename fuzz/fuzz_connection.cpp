// ipc::Connection end to end: a client sends arbitrary bytes over a
// socketpair in chunks, then shuts down its sending side, while a dispatcher
// answers each request now, later (in an order the input picks), never (it
// drops the Responder) or answers and closes. Tight limits make back-pressure
// pause and resume reading.
//
// Input: byte 0 seeds the chunking and the reply order; the rest is the
// stream. The first payload byte of each request picks how it is answered;
// EXIT is answered and closes, as the kernel does.
// Oracle:
//  - the requests dispatched are the stream's frames, in order, stopping
//    only at EXIT, a framing error or a reply that closes;
//  - the replies are those requests' replies in request order (a dropped
//    Responder's being the internal error), then the framing error reply if
//    any, and nothing after a reply that closes;
//  - the connection always ends by itself: nothing stalls or leaks.
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "ipc/connection.hpp"
#include "ipc/protocol.hpp"

namespace {

using namespace agentos;
using ipc::Frame;
using ipc::FrameDecoder;
using ipc::Responder;

constexpr uint32_t kAgentId = 7;
constexpr int kMaxIterations = 20000;

struct Rng {
  uint32_t state;
  uint32_t next() {
    state = state * 1103515245u + 12345u;
    return state >> 8;
  }
};

struct Request {
  uint8_t opcode = 0;
  std::string payload;
  std::optional<std::string> reply;  // set once answered; "" marks a dropped Responder
  bool closes = false;
};

// The frames a correct reader finds in `stream`, and whether a framing error
// (with the offending header's opcode) ends it.
struct Reference {
  std::vector<std::pair<uint8_t, std::string>> frames;
  std::optional<uint8_t> error_opcode;
};

Reference reference_frames(std::string_view stream) {
  Reference ref;
  FrameDecoder d;
  d.feed(stream);
  for (;;) {
    auto item = d.next();
    if (auto* f = std::get_if<Frame>(&item)) {
      ref.frames.emplace_back(f->opcode, std::string(f->payload));
      if (f->opcode == static_cast<uint8_t>(ipc::Op::kExit)) break;  // the kernel reads no further
      continue;
    }
    if (auto* e = std::get_if<ipc::FrameError>(&item)) ref.error_opcode = e->opcode;
    break;
  }
  return ref;
}

struct Harness {
  Reactor& reactor;
  Rng rng;
  std::vector<Request> requests;
  std::vector<std::pair<size_t, Responder>> later;
  bool closed = false;

  void dispatch(uint8_t opcode, std::string_view payload, Responder r) {
    const size_t seq = requests.size();
    requests.push_back({opcode, std::string(payload), std::nullopt, false});
    const std::string text = "reply " + std::to_string(seq);
    if (opcode == static_cast<uint8_t>(ipc::Op::kExit)) {  // as the kernel answers EXIT
      requests[seq].reply = text;
      requests[seq].closes = true;
      return r.reply_and_close(text);
    }
    switch ((payload.empty() ? seq : static_cast<uint8_t>(payload[0])) % 4) {
      case 0:
        requests[seq].reply = text;
        return r.reply(text);
      case 1:
        later.emplace_back(seq, std::move(r));
        return;
      case 2:
        requests[seq].reply = "";
        return;  // r goes out of scope unanswered
      default:
        requests[seq].reply = text;
        requests[seq].closes = true;
        return r.reply_and_close(text);
    }
  }

  // Answers (or drops) one deferred request, chosen by the input.
  void complete_one() {
    if (later.empty()) return;
    const size_t i = rng.next() % later.size();
    auto [seq, r] = std::move(later[i]);
    later.erase(later.begin() + static_cast<ptrdiff_t>(i));
    if (rng.next() % 8 == 0) {
      requests[seq].reply = "";
      return;
    }
    requests[seq].reply = "reply " + std::to_string(seq);
    r.reply(*requests[seq].reply);
  }
};

void recv_all(int fd, std::string& into) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return;
    into.append(buf, static_cast<size_t>(n));
  }
}

// Checks what the client received against the requests and the reference.
void check_replies(const Harness& h, const Reference& ref, const std::string& received) {
  FUZZ_CHECK(h.requests.size() <= ref.frames.size());
  bool stopped_early = false;  // a reply closed before every frame was read
  for (size_t i = 0; i < h.requests.size(); ++i) {
    FUZZ_CHECK(h.requests[i].opcode == ref.frames[i].first && h.requests[i].payload == ref.frames[i].second);
  }
  FrameDecoder d;
  d.feed(received);
  size_t i = 0;
  for (;; ++i) {
    auto item = d.next();
    FUZZ_CHECK(!std::holds_alternative<ipc::FrameError>(item));
    auto* f = std::get_if<Frame>(&item);
    if (f == nullptr) break;
    FUZZ_CHECK(f->agent_id == kAgentId);
    if (i == h.requests.size()) {  // only the framing error may follow the requests' replies
      FUZZ_CHECK(ref.error_opcode && f->opcode == *ref.error_opcode);
      FUZZ_CHECK(f->payload.find("\"error\"") != std::string_view::npos);
      FUZZ_CHECK(d.next().index() == 0 && d.buffered() == 0);
      return;
    }
    const Request& r = h.requests[i];
    FUZZ_CHECK(f->opcode == r.opcode && r.reply.has_value());
    if (r.reply->empty()) {
      FUZZ_CHECK(f->payload.find("dropped without a reply") != std::string_view::npos);
    } else {
      FUZZ_CHECK(f->payload == *r.reply);
    }
    if (r.closes) {
      stopped_early = true;
      ++i;
      break;
    }
  }
  FUZZ_CHECK(d.buffered() == 0);
  if (stopped_early) return;
  // No reply closed: every request was answered, and the stream was read to
  // its end (or to EXIT, or to a framing error, whose reply must have come).
  FUZZ_CHECK(i == h.requests.size() && h.requests.size() == ref.frames.size());
  FUZZ_CHECK(!ref.error_opcode);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<Reactor> reactor = std::move(Reactor::create().value());
  if (size == 0) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  int fds[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  UniqueFd client(fds[0]);
  Harness h{*reactor, Rng{data[0] * 2654435761u}, {}, {}, false};
  ipc::Connection::Dispatch dispatch = [&h](const ipc::Caller&, uint8_t op, std::string_view p, Responder r) {
    h.dispatch(op, p, std::move(r));
  };
  ipc::ConnectionLimits limits{.max_output_bytes = 64, .max_pending_requests = 3};
  // Like SocketServer: on close, the owner lets go of the connection after
  // the current callback.
  std::shared_ptr<ipc::Connection> conn;
  conn = std::make_shared<ipc::Connection>(*reactor, UniqueFd(fds[1]), ipc::Caller{1, kAgentId, {}}, limits,
                                           &dispatch, [&](uint64_t) {
                                             h.closed = true;
                                             reactor->defer([&conn] { conn.reset(); });
                                           });
  FUZZ_CHECK(conn->start().has_value());

  std::string received;
  size_t sent = 0;
  bool shut = false;
  for (int it = 0; it < kMaxIterations && !(h.closed && !conn); ++it) {
    if (sent < stream.size()) {
      const size_t n = std::min<size_t>(stream.size() - sent, 1 + h.rng.next() % 48);
      const ssize_t w = ::send(client.get(), stream.data() + sent, n, MSG_NOSIGNAL);
      if (w > 0) sent += static_cast<size_t>(w);
    } else if (!shut) {
      ::shutdown(client.get(), SHUT_WR);
      shut = true;
    }
    FUZZ_CHECK(reactor->run_once(0).has_value());
    recv_all(client.get(), received);
    if (h.rng.next() % 3 == 0 || (shut && !h.later.empty())) h.complete_one();
  }
  FUZZ_CHECK(h.closed && !conn);  // the connection ended by itself
  recv_all(client.get(), received);
  h.later.clear();  // Responders of a closed connection: silent no-ops
  FUZZ_CHECK(reactor->watched_fds() == 0);

  // The stream as the connection saw it: whatever was sent before it closed.
  const Reference ref = reference_frames(stream.substr(0, sent));
  check_replies(h, ref, received);
  return 0;
}

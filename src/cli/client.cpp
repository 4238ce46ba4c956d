#include "cli/client.hpp"

#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>

#include "cli/json_fields.hpp"
#include "ipc/unix_socket.hpp"

namespace agentos::cli {

using nlohmann::json;

Result<Client> Client::connect(const std::string& path) {
  auto fd = ipc::connect_unix(path);
  if (fd) return Client(path, std::move(*fd));
  const int code = fd.error().code;
  if (code == ENOENT || code == ECONNREFUSED) {
    return make_error(fmt::format("cannot connect to {}: is agentos_kernel running?", path));
  }
  if (code == EACCES || code == EPERM) {
    return make_error(
        fmt::format("cannot connect to {}: permission denied (the socket is for its owner; "
                    "run as that user or root)",
                    path));
  }
  return std::unexpected(fd.error().wrap(fmt::format("cannot connect to {}", path)));
}

Result<void> Client::send_all(std::string_view bytes) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a kernel that went away is an error here, not SIGPIPE.
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
      return make_error("the kernel closed the connection");
    if (n < 0) return sys_error("send to " + path_);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> Client::read_reply(ipc::Op op) {
  constexpr size_t kReadChunk = 64 * 1024;
  for (;;) {
    auto item = decoder_.next();
    if (auto* frame = std::get_if<ipc::Frame>(&item)) {
      if (frame->opcode != static_cast<uint8_t>(op)) {
        return make_error(fmt::format("protocol error: a reply for opcode 0x{:02x} to a {} request",
                                      frame->opcode, op_name(op)));
      }
      return std::string(frame->payload);
    }
    if (auto* err = std::get_if<ipc::FrameError>(&item))
      return make_error("protocol error: " + err->message);
    char* buf = decoder_.prepare(kReadChunk);
    const ssize_t n = ::recv(fd_.get(), buf, kReadChunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET) return make_error("the kernel closed the connection");
    if (n < 0) return sys_error("read from " + path_);
    if (n == 0) return make_error("the kernel closed the connection before replying");
    decoder_.commit(static_cast<size_t>(n));
  }
}

Result<std::string> Client::call(ipc::Op op, std::string_view payload) {
  if (payload.size() > ipc::kMaxPayload) {
    return make_error(fmt::format("the request is {} bytes; the protocol allows at most {}",
                                  payload.size(), ipc::kMaxPayload));
  }
  std::string frame;
  ipc::append_frame(frame, 0, static_cast<uint8_t>(op), payload);
  AOS_TRY_VOID(send_all(frame));
  return read_reply(op);
}

Result<json> Client::call_json(ipc::Op op, const json& request) {
  std::string reply = AOS_TRY(call(op, request.is_null() ? std::string() : request.dump()));
  json j = json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return make_error(
        fmt::format("the kernel's {} reply is not JSON: {:.200}", op_name(op), reply));
  }
  return j;
}

Result<json> check_reply(json reply, ipc::Op op, const std::string& socket_path) {
  const json* err = field(reply, "error");
  if (!err || err->is_null() || (err->is_string() && err->get<std::string>().empty())) return reply;
  const std::string text = err->is_string() ? err->get<std::string>() : err->dump();
  if (text.starts_with("unknown opcode")) {
    return make_error(
        fmt::format("the kernel at {} does not support {} ({}): it is older than this client",
                    socket_path, op_name(op), text));
  }
  return make_error(text);
}

Result<json> request(Client& client, ipc::Op op, const json& payload) {
  json reply = AOS_TRY(client.call_json(op, payload));
  return check_reply(std::move(reply), op, client.path());
}

}  // namespace agentos::cli

// A blocking client for the kernel's socket: one request, one reply, in
// order, over the DESIGN.md §2 framing (ipc/protocol.hpp).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "ipc/protocol.hpp"
#include "util/result.hpp"
#include "util/unique_fd.hpp"

namespace agentos::cli {

class Client {
 public:
  /// Connects to the socket at `path`. The error says what to do when no
  /// kernel listens there ("... is agentos_kernel running?").
  static Result<Client> connect(const std::string& path);

  /// Sends one request and blocks until its reply: the reply's payload.
  /// Errors: the kernel closed the connection, a framing violation, or an
  /// I/O error. Signals that interrupt a read or write are retried.
  Result<std::string> call(ipc::Op op, std::string_view payload);

  /// call() with a JSON request (an empty payload for null); parses the reply.
  Result<nlohmann::json> call_json(ipc::Op op, const nlohmann::json& request);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  Client(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  Result<void> send_all(std::string_view bytes);
  Result<std::string> read_reply(ipc::Op op);

  std::string path_;
  UniqueFd fd_;
  ipc::FrameDecoder decoder_;
};

using ipc::op_name;

/// The reply as a success, or its {"error": "..."} as an Error. An "unknown
/// opcode" error becomes "the kernel at PATH does not support LOGS (...)".
Result<nlohmann::json> check_reply(nlohmann::json reply, ipc::Op op,
                                   const std::string& socket_path);

/// call_json() then check_reply().
Result<nlohmann::json> request(Client& client, ipc::Op op, const nlohmann::json& payload);

}  // namespace agentos::cli

// Plain HTTP request/response values exchanged between the providers (which
// build and read them) and HttpClient (which moves them over the wire).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace agentos::llm {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  ///< "Name: value"
  std::string body;                  ///< sent as a POST body
  std::chrono::milliseconds timeout{60'000};
};

struct HttpResponse {
  long status = 0;              ///< 0 when no HTTP status line arrived
  std::string body;
  std::string retry_after;      ///< raw Retry-After header value, "" if absent
  std::string transport_error;  ///< set when the exchange failed below HTTP
  bool timed_out = false;       ///< the per-request timeout fired
};

}  // namespace agentos::llm

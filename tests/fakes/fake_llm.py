#!/usr/bin/python3
"""A fake LLM provider for tests: Gemini and OpenAI-compatible, stdlib only.

Run:  /usr/bin/python3 tests/fakes/fake_llm.py [--port 0] [knobs...]
The first line on stdout is the port it listens on (127.0.0.1).

Endpoints
  POST /v1beta/models/{model}:generateContent   Gemini (needs x-goog-api-key)
  POST /v1/chat/completions                     OpenAI (needs Authorization: Bearer)
  POST /_control     JSON object of knobs (below), plus "reset": true (all
                     knobs and logs back to the command-line state) and
                     "clear_log": true (requests and counters only).
                     Answers with the knobs now in force.
  GET  /_requests    {"requests": [{id, method, path, model, headers, body,
                     outcome}], "served", "aborted", "inflight",
                     "max_inflight", "connections"}. Keys are kept (they
                     are fake) so tests can check they were sent.
  GET  /_health      {"ok": true}

Knobs (CLI flag --name-with-dashes, or the JSON key in /_control)
  latency_ms, jitter_ms   delay before every answer
  fail_429 N              next N requests get 429 (+ retry_after header,
                          + Gemini RetryInfo retry_delay, quota_per_day)
  retry_after "S"         Retry-After header value on 429/503 (null: none)
  retry_delay "1.5s"      Gemini RetryInfo.retryDelay on 429 (null: none)
  quota_per_day bool      429s are a per-day quota (Gemini QuotaFailure
                          PerDay quotaId / OpenAI insufficient_quota)
  fail_500 N              next N requests get 500
  malformed N             next N requests get 200 with a broken JSON body
  truncate N              next N requests get half a body, then a close
  hang N                  next N requests are never answered (until the
                          client gives up: counted in "aborted")
  replies [..]            scripted replies, consumed in order before the
                          default echo: a string (the content) or an object
                          {content, prompt_tokens, completion_tokens,
                          finish_reason, status, body, headers, delay_ms}
  prompt_tokens, completion_tokens   fixed usage (null: ~len/4)
  api_key "k"             the only key accepted (null: any non-empty key)
  require_key bool        false: accept requests without a key

"aborted" counts requests whose client closed the connection before the
answer was written (cancellation and timeouts show up there).
"""

import argparse
import collections
import copy
import json
import random
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_KNOBS = {
    "latency_ms": 0,
    "jitter_ms": 0,
    "fail_429": 0,
    "retry_after": "1",
    "retry_delay": None,
    "quota_per_day": False,
    "fail_500": 0,
    "malformed": 0,
    "truncate": 0,
    "hang": 0,
    "replies": [],
    "prompt_tokens": None,
    "completion_tokens": None,
    "api_key": None,
    "require_key": True,
}
COUNTED_FAULTS = ("hang", "fail_429", "fail_500", "malformed", "truncate")


class State:
    """Knobs and the request log, shared by all handler threads."""

    def __init__(self, knobs):
        self.lock = threading.Lock()
        self.initial = copy.deepcopy(knobs)
        self.stopping = threading.Event()
        self.reset()

    def reset(self):
        self.knobs = copy.deepcopy(self.initial)
        self.replies = collections.deque(self.knobs.pop("replies"))
        self.clear_log()

    def clear_log(self):
        self.requests = []
        self.served = 0
        self.aborted = 0
        self.inflight = 0
        self.max_inflight = 0
        self.connections = set()

    def control(self, cfg):
        with self.lock:
            if cfg.get("reset"):
                self.reset()
            if cfg.get("clear_log"):
                self.clear_log()
            for key, value in cfg.items():
                if key in ("reset", "clear_log"):
                    continue
                if key == "replies":
                    self.replies.extend(value)
                elif key in self.knobs:
                    self.knobs[key] = value
                else:
                    raise KeyError(key)
            return dict(self.knobs, replies=list(self.replies))

    def take_action(self):
        """The fault (or scripted reply) the next request gets."""
        with self.lock:
            for fault in COUNTED_FAULTS:
                if self.knobs[fault] > 0:
                    self.knobs[fault] -= 1
                    return fault, None
            if self.replies:
                return "scripted", self.replies.popleft()
            return "ok", None

    def delay_s(self):
        with self.lock:
            base, jitter = self.knobs["latency_ms"], self.knobs["jitter_ms"]
        return (base + random.uniform(0, jitter)) / 1000.0

    def knob(self, name):
        with self.lock:
            return self.knobs[name]

    def snapshot(self):
        with self.lock:
            return {
                "requests": list(self.requests),
                "served": self.served,
                "aborted": self.aborted,
                "inflight": self.inflight,
                "max_inflight": self.max_inflight,
                "connections": len(self.connections),
            }


def estimate_tokens(text):
    return max(1, len(text) // 4)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "fake-llm/1"
    state = None  # set in main()
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("fake_llm: " + (fmt % args) + "\n")

    # ---- plumbing ---------------------------------------------------------

    def send_json(self, status, obj, headers=None):
        self.send_raw(status, json.dumps(obj).encode(), headers)

    def send_raw(self, status, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def client_gone(self, timeout_s):
        """Waits up to timeout_s; True if the client closed the connection."""
        deadline = time.monotonic() + timeout_s
        while not self.state.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.5))
            if not readable:
                continue
            try:
                data = self.connection.recv(1, socket.MSG_PEEK)
            except OSError:
                return True
            if data == b"":
                return True
            time.sleep(min(left, 0.05))  # pipelined bytes: just keep waiting
        return True

    def handle(self):
        # Clients reset idle keep-alive connections and cancelled requests;
        # that is normal traffic here, not a server error worth a traceback.
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass

    # ---- routing ----------------------------------------------------------

    def do_GET(self):
        if self.path == "/_requests":
            self.send_json(200, self.state.snapshot())
        elif self.path == "/_health":
            self.send_json(200, {"ok": True})
        else:
            self.send_json(404, {"error": {"message": "no such endpoint: " + self.path}})

    def do_POST(self):
        raw = self.read_body()
        if self.path == "/_control":
            return self.handle_control(raw)
        if self.path.startswith("/v1beta/models/") and self.path.endswith(":generateContent"):
            model = self.path[len("/v1beta/models/"):-len(":generateContent")]
            return self.handle_llm("gemini", model, raw)
        if self.path == "/v1/chat/completions":
            return self.handle_llm("openai", None, raw)
        self.send_json(404, {"error": {"code": 404, "message": "no such endpoint: " + self.path}})

    def handle_control(self, raw):
        try:
            cfg = json.loads(raw or b"{}")
            if not isinstance(cfg, dict):
                raise ValueError("control body must be a JSON object")
            knobs = self.state.control(cfg)
        except (ValueError, KeyError) as e:
            return self.send_json(400, {"error": "bad control request: %s" % e})
        self.send_json(200, knobs)

    # ---- the fake provider -----------------------------------------------

    def handle_llm(self, flavor, model, raw):
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if flavor == "openai" and isinstance(body, dict):
            model = body.get("model")
        entry = {"method": "POST", "path": self.path, "model": model,
                 "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body, "outcome": None}
        with self.state.lock:
            entry["id"] = len(self.state.requests) + 1
            self.state.requests.append(entry)
            self.state.connections.add(self.client_address)
            self.state.inflight += 1
            self.state.max_inflight = max(self.state.max_inflight, self.state.inflight)
        try:
            entry["outcome"] = self.answer(flavor, model, body)
        except (ConnectionResetError, BrokenPipeError):
            entry["outcome"] = "aborted"  # the client left while we wrote
            self.close_connection = True
        finally:
            with self.state.lock:
                self.state.inflight -= 1
                if entry["outcome"] == "aborted":
                    self.state.aborted += 1
                else:
                    self.state.served += 1

    def answer(self, flavor, model, body):
        auth_error = self.check_key(flavor)
        if auth_error:
            status, payload = auth_error
            self.send_json(status, payload)
            return "auth_error"
        action, scripted = self.state.take_action()
        delay = self.state.delay_s()
        if isinstance(scripted, dict) and "delay_ms" in scripted:
            delay = scripted["delay_ms"] / 1000.0
        if action == "hang":
            delay = float("inf")
        if delay > 0 and self.client_gone(delay):
            self.close_connection = True
            return "aborted"
        return self.write_answer(flavor, model, body, action, scripted)

    def write_answer(self, flavor, model, body, action, scripted):
        if action == "fail_429":
            self.send_rate_limited(flavor)
        elif action == "fail_500":
            self.send_json(500, error_body(flavor, 500, "Internal error encountered.", "INTERNAL"))
        elif action == "malformed":
            self.send_raw(200, b'{"candidates": [ {"content": this is not json')
        elif action == "truncate":
            full = json.dumps(success_body(flavor, model, "truncated", 1, 1, "stop")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(full)))
            self.end_headers()
            self.wfile.write(full[: len(full) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif isinstance(scripted, dict) and "status" in scripted:
            raw = scripted.get("body", "")
            data = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
            self.send_raw(scripted["status"], data, scripted.get("headers"))
        else:
            self.send_success(flavor, model, body, scripted)
        return action

    def check_key(self, flavor):
        if not self.state.knob("require_key"):
            return None
        wanted = self.state.knob("api_key")
        if flavor == "gemini":
            key = self.headers.get("x-goog-api-key", "")
            if not key:
                return 403, error_body("gemini", 403, "Method doesn't allow unregistered callers.",
                                       "PERMISSION_DENIED")
            if wanted is not None and key != wanted:
                return 400, error_body("gemini", 400, "API key not valid. Please pass a valid API key.",
                                       "INVALID_ARGUMENT")
            return None
        auth = self.headers.get("Authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if not key or (wanted is not None and key != wanted):
            return 401, {"error": {"message": "Incorrect API key provided.",
                                   "type": "invalid_request_error", "code": "invalid_api_key"}}
        return None

    def send_rate_limited(self, flavor):
        headers = {}
        retry_after = self.state.knob("retry_after")
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        per_day = self.state.knob("quota_per_day")
        if flavor == "openai":
            code = "insufficient_quota" if per_day else "rate_limit_exceeded"
            message = ("You exceeded your current quota." if per_day
                       else "Rate limit reached for requests.")
            return self.send_json(429, {"error": {"message": message, "type": "requests", "code": code}},
                                  headers)
        body = error_body("gemini", 429, "Resource has been exhausted (e.g. check quota).",
                          "RESOURCE_EXHAUSTED")
        quota_id = ("GenerateRequestsPerDayPerProjectPerModel-FreeTier" if per_day
                    else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
        details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/"
                                                   "generate_content_free_tier_requests",
                                    "quotaId": quota_id, "quotaValue": "15"}]}]
        retry_delay = self.state.knob("retry_delay")
        if retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
        body["error"]["details"] = details
        self.send_json(429, body, headers)

    def send_success(self, flavor, model, body, scripted):
        if isinstance(scripted, str):
            scripted = {"content": scripted}
        scripted = scripted or {}
        prompt_text = extract_prompt(flavor, body)
        content = scripted.get("content", "echo: " + last_user_text(flavor, body))
        prompt_tokens = scripted.get("prompt_tokens", self.state.knob("prompt_tokens"))
        completion_tokens = scripted.get("completion_tokens", self.state.knob("completion_tokens"))
        if prompt_tokens is None:
            prompt_tokens = estimate_tokens(prompt_text)
        if completion_tokens is None:
            completion_tokens = estimate_tokens(content)
        finish = scripted.get("finish_reason", "stop")
        self.send_json(200, success_body(flavor, model, content, prompt_tokens, completion_tokens, finish))


def error_body(flavor, code, message, status):
    if flavor == "gemini":
        return {"error": {"code": code, "message": message, "status": status}}
    return {"error": {"message": message, "type": "server_error", "code": None}}


def success_body(flavor, model, content, prompt_tokens, completion_tokens, finish):
    total = prompt_tokens + completion_tokens
    if flavor == "gemini":
        gemini_finish = {"stop": "STOP", "length": "MAX_TOKENS"}.get(finish, finish)
        return {"candidates": [{"content": {"parts": [{"text": content}], "role": "model"},
                                "finishReason": gemini_finish, "index": 0}],
                "usageMetadata": {"promptTokenCount": prompt_tokens,
                                  "candidatesTokenCount": completion_tokens,
                                  "totalTokenCount": total},
                "modelVersion": model}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": total}}


def texts(flavor, body):
    """(role, text) pairs of the request, in order."""
    if not isinstance(body, dict):
        return []
    out = []
    if flavor == "gemini":
        for part in (body.get("systemInstruction") or {}).get("parts", []):
            out.append(("system", part.get("text", "")))
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                out.append((content.get("role", "user"), part.get("text", "")))
    else:
        for message in body.get("messages", []):
            if isinstance(message.get("content"), str):
                out.append((message.get("role", "user"), message["content"]))
    return out


def extract_prompt(flavor, body):
    return "\n".join(text for _, text in texts(flavor, body))


def last_user_text(flavor, body):
    users = [text for role, text in texts(flavor, body) if role == "user"]
    return users[-1] if users else ""


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin closes (so a crashed test leaves no server behind)")
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--jitter-ms", type=float, default=0)
    p.add_argument("--fail-429", type=int, default=0)
    p.add_argument("--retry-after", default="1")
    p.add_argument("--retry-delay", default=None)
    p.add_argument("--quota-per-day", action="store_true")
    p.add_argument("--fail-500", type=int, default=0)
    p.add_argument("--malformed", type=int, default=0)
    p.add_argument("--truncate", type=int, default=0)
    p.add_argument("--hang", type=int, default=0)
    p.add_argument("--reply", action="append", default=[], help="scripted reply content (repeatable)")
    p.add_argument("--prompt-tokens", type=int, default=None)
    p.add_argument("--completion-tokens", type=int, default=None)
    p.add_argument("--api-key", default=None)
    p.add_argument("--no-require-key", action="store_true")
    return p.parse_args(argv)


def knobs_from_args(args):
    knobs = copy.deepcopy(DEFAULT_KNOBS)
    for name in ("latency_ms", "jitter_ms", "fail_429", "retry_after", "retry_delay", "fail_500",
                 "malformed", "truncate", "hang", "prompt_tokens", "completion_tokens", "api_key"):
        knobs[name] = getattr(args, name)
    knobs["quota_per_day"] = args.quota_per_day
    knobs["replies"] = list(args.reply)
    knobs["require_key"] = not args.no_require_key
    return knobs


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 drops connections when a test opens
    # hundreds at once; the client then waits for an accept that never comes.
    request_queue_size = 1024


def main(argv):
    args = parse_args(argv)
    Handler.state = State(knobs_from_args(args))
    Handler.verbose = args.verbose
    server = Server(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    if args.exit_on_stdin_eof:
        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            Handler.state.stopping.set()
            server.shutdown()
        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        Handler.state.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

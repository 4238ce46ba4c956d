#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (checked in; re-run after
changing this file). Files named regress-* are regression inputs added by
hand and are left alone."""
import json
import os
import struct
import sys

MAGIC = 0x41474E54
MAX_PAYLOAD = 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


def frame(opcode, payload=b"", agent_id=0, magic=MAGIC, size=None):
    if isinstance(payload, str):
        payload = payload.encode()
    size = len(payload) if size is None else size
    return struct.pack("<IIBQ", magic, agent_id, opcode, size) + payload


def frame_seeds():
    # Byte 0 seeds the chunking (see fuzz_frame_decoder.cpp); the rest is the stream.
    spawn = json.dumps({"name": "w1", "script": "/srv/agents/w1.py"})
    streams = {
        "noop-empty": frame(0x00),
        "noop-payload": frame(0x00, "hello", agent_id=7),
        "think-text": frame(0x01, "What is 2+2?"),
        "spawn-json": frame(0x10, spawn),
        "hello-exit": frame(0xFE) + frame(0xFF),
        "pipelined": frame(0x12, "{}") + frame(0x00, "x" * 40) + frame(0x11, '{"name": "w1"}') + frame(0x13, '{"id": 1}'),
        "truncated-header": frame(0x00, "abc")[:10],
        "truncated-payload": frame(0x00, "abcdef")[:20],
        "bad-magic": frame(0x00, "abc", magic=0xDEADBEEF),
        "bad-magic-after-frame": frame(0x00, "ok") + frame(0x00, "abc", magic=0x544E4741),
        "oversized": frame(0x01, size=MAX_PAYLOAD + 1),
        "max-size-incomplete": frame(0x01, size=MAX_PAYLOAD) + b"partial",
        "size-u64-max": frame(0x00, size=2**64 - 1),
        "size-wraps": frame(0x00, size=2**64 - 17),
        "all-opcodes": b"".join(frame(op, bytes([op])) for op in (0, 1, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x7F, 0xFE)),
        "binary-payload": frame(0x00, bytes(range(256))),
    }
    return {name: bytes([i * 37 % 256]) + s for i, (name, s) in enumerate(streams.items())}


SPAWN = {
    "minimal": {"name": "worker", "script": "agent.py"},
    "every-field": {
        "name": "worker-1.a_b", "script": "/srv/agents/worker.py", "python": "/usr/bin/python3",
        "args": ["--mode", "fast", ""], "env": {"MODE": "fast", "EMPTY": ""},
        "sandboxed": True, "network": False, "allow_spawn": True,
        "limits": {"memory": 268435456, "max_pids": 64, "cpu_quota": 50000, "cpu_period": 100000,
                   "llm_rpm": 60, "llm_tpm": 100000.5, "llm_tokens": 1000000, "llm_weight": 2.5},
        "restart": "on-failure", "max_restarts": 5, "restart_window": 60,
        "restart_delay_ms": 100, "restart_max_delay_ms": 30000,
    },
    "restart-always": {"name": "svc", "script": "s.py", "restart": "always", "max_restarts": 0,
                       "restart_window": 86400, "restart_delay_ms": 0, "restart_max_delay_ms": 0},
    "float-integers": {"name": "f", "script": "s.py", "limits": {"memory": 1e9, "max_pids": 64.0}},
    "limits-null": {"name": "n", "script": "s.py", "limits": None},
    "memory-too-small": {"name": "m", "script": "s.py", "limits": {"memory": 1024}},
    "negative": {"name": "m", "script": "s.py", "limits": {"cpu_quota": -5}},
    "unknown-field": {"name": "u", "script": "s.py", "priority": 3},
    "unknown-limit": {"name": "u", "script": "s.py", "limits": {"swap": 1}},
    "reserved-env": {"name": "e", "script": "s.py", "env": {"AGENTOS_SOCKET": "/tmp/x"}},
    "bad-env-name": {"name": "e", "script": "s.py", "env": {"A=B": "c"}},
    "bad-name": {"name": "-leading-dash", "script": "s.py"},
    "long-name": {"name": "a" * 64, "script": "s.py"},
    "wrong-types": {"name": 5, "script": ["s.py"], "sandboxed": "yes", "args": "x"},
    "args-not-strings": {"name": "a", "script": "s.py", "args": ["ok", 1]},
    "delay-order": {"name": "d", "script": "s.py", "restart_delay_ms": 500, "restart_max_delay_ms": 100},
    "huge-numbers": {"name": "h", "script": "s.py", "limits": {"memory": 18446744073709551615, "llm_rpm": 1e308}},
    "missing-script": {"name": "x"},
    "nul-in-script": {"name": "x", "script": "a\u0000b"},
}
SPAWN_RAW = {"empty": b"", "blank": b" \r\n\t", "array": b"[1, 2]", "not-json": b"{name: x}",
             "string": b'"worker"', "unicode-escape": b'{"name": "w", "script": "\\u00e9\\ud83d\\ude00.py"}'}

THINK = {
    "prompt": {"prompt": "Summarise this."},
    "messages": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                              {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "2+2?"}]},
    "all-options": {"prompt": "x", "system": "sys", "model": "gemini-2.0-flash", "temperature": 0.7, "max_tokens": 256},
    "model-with-slash": {"prompt": "x", "model": "models/gemini:latest"},
    "both": {"prompt": "x", "messages": [{"role": "user", "content": "y"}]},
    "only-system": {"messages": [{"role": "system", "content": "s"}]},
    "bad-role": {"messages": [{"role": "tool", "content": "s"}]},
    "empty-messages": {"messages": []},
    "wrong-types": {"prompt": 5, "temperature": "hot", "max_tokens": -1},
    "temperature-range": {"prompt": "x", "temperature": 2.5},
    "nulls": {"prompt": "x", "system": None, "model": None, "temperature": None, "max_tokens": None},
    "unknown-keys": {"prompt": "x", "stream": True, "tools": []},
}
THINK_RAW = {"plain-text": b"What is the capital of France?", "empty": b"", "json-array": b'["not", "structured"]',
             "invalid-utf8": b"caf\xe9 \xff\xfe prompt", "json-number": b"42",
             "truncated-json": b'{"prompt": "x", "temp'}

GEMINI = {
    "ok": ("200", {"candidates": [{"content": {"parts": [{"text": "Paris"}], "role": "model"}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1, "totalTokenCount": 8},
                   "modelVersion": "gemini-2.0-flash-001"}),
    "ok-thinking": ("200", {"candidates": [{"content": {"parts": [{"text": "a"}, {"text": "b"}, {"inlineData": {}}]},
                                            "finishReason": "MAX_TOKENS"}],
                            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 40}}),
    "safety": ("200", {"candidates": [{"finishReason": "SAFETY"}]}),
    "blocked": ("200", {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
    "no-candidates": ("200", {"candidates": []}),
    "rate-limited": ("429 7", {"error": {"code": 429, "message": "Resource has been exhausted", "status": "RESOURCE_EXHAUSTED",
                                         "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "42s"}]}}),
    "daily-quota": ("429", {"error": {"code": 429, "message": "Quota exceeded", "details": [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
         "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}),
    "bad-request": ("400", {"error": {"code": 400, "message": "API key not valid", "status": "INVALID_ARGUMENT"}}),
    "http-date": ("503 Wed, 21 Oct 2015 07:28:00 GMT", {"error": {"message": "overloaded"}}),
    "details-not-array": ("429", {"error": {"message": "m", "details": {"@type": "x"}}}),
}
GEMINI_RAW = {"html-503": b"503 120\n<html><body>Service Unavailable</body></html>",
              "malformed-200": b'200\n{"candidates": [',
              "transport": b"transport Could not resolve host",
              "timeout": b"timeout Operation timed out after 60000 ms",
              "empty-200": b"200\n"}

OPENAI = {
    "ok": ("200", {"id": "c1", "model": "gpt-4o-mini-2024-07-18", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}),
    "refusal": ("200", {"choices": [{"message": {"content": None, "refusal": "I can't help"}, "finish_reason": "stop"}]}),
    "tool-calls": ("200", {"choices": [{"message": {"content": None, "tool_calls": []}, "finish_reason": "tool_calls"}]}),
    "no-choices": ("200", {"choices": []}),
    "no-message": ("200", {"choices": [{"text": "legacy"}]}),
    "insufficient-quota": ("429", {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                                            "code": "insufficient_quota"}}),
    "rate-limited": ("429 1.5", {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
    "string-error": ("500", {"error": "llama.cpp: context overflow"}),
    "unauthorized": ("401", {"error": {"message": "Incorrect API key", "code": None}}),
}
OPENAI_RAW = {"malformed-200": b'200\n{"choices": [{"message": {"content": "x"', "bad-gateway": b"502\nBad Gateway",
              "transport": b"transport Connection refused", "retry-after-spaces": b"429  \t3 \r\n{}"}

JSON_PAYLOAD = {
    "kill-name": {"name": "worker"}, "kill-id": {"id": 3, "timeout_ms": 1000}, "list-all": {"all": True},
    "logs": {"name": "w", "tail": 100, "since": 0, "max_bytes": 262144, "wait_ms": 500},
    "events": {"since": 12, "limit": 1000, "name": "w", "wait_ms": 60000}, "stats": {},
    "wait": {"id": 1, "timeout_ms": 0},
}
JSON_RAW = {"blank": b"  \n", "empty": b"", "array": b"[]", "nested": b"[" * 64 + b"]" * 64,
            "escapes": b'{"name": "\\u0000\\ud800\\n"}', "big-number": b'{"id": 1e400}',
            "negative-id": b'{"id": -1}', "trailing": b'{"id": 1} x', "invalid-utf8": b'{"name": "\xff"}'}

TOML = {
    "full": '''# A complete file
[kernel]
socket = "run/agentos.sock"
log_level = "debug"
state_dir = "/var/lib/agentos"
max_connections = 256
max_output_bytes = "4M"
sandbox = true
kill_grace_ms = 3000
llm_provider = "gemini"
llm_model = "gemini-2.0-flash"
llm_max_inflight = 4
llm_rpm = 60.0
llm_tpm = 100000
llm_timeout = 30.5
stats_interval_ms = 1000
log_max_bytes = "10M"
log_max_files = 3

[[agent]]
name = "researcher"
script = "agents/researcher.py"
args = ["--topic", "fuzzing"]
env = { MODE = "fast" }
restart = "on-failure"
max_restarts = 3

[agent.limits]
memory = "256M"
cpu = "50%"
max_pids = 32

[[agent]]
name = "writer"
script = "/srv/agents/writer.py"
python = "/usr/bin/python3"
sandboxed = false
network = true
limits = { memory = 134217728, llm_tokens = 100000 }
''',
    "minimal": '[[agent]]\nname = "a"\nscript = "/a.py"\n',
    "kernel-only": '[kernel]\nno_sandbox = true\nllm_provider = "openai"\nllm_base_url = "http://127.0.0.1:8080/v1"\n',
    "duplicate-names": '[[agent]]\nname = "a"\nscript = "a.py"\n[[agent]]\nname = "a"\nscript = "b.py"\n',
    "unknown-key": '[kernel]\nsockets = "/tmp/x"\n',
    "unknown-table": '[agents]\nname = "a"\n',
    "bad-size": '[kernel]\nmax_output_bytes = "4 parsecs"\n[[agent]]\nname = "a"\nscript = "a.py"\nlimits = { memory = "1.5G" }\n',
    "bad-cpu": '[[agent]]\nname = "a"\nscript = "a.py"\nlimits = { cpu = "250%" }\n',
    "spawn-refuses": '[[agent]]\nname = "-x"\nscript = "a.py"\nenv = { AGENTOS_X = "1" }\n',
    "wrong-types": '[kernel]\nmax_connections = "many"\nsandbox = 1\n',
    "syntax-error": '[kernel\nsocket = \n',
    "dates-and-floats": '[kernel]\nllm_rpm = inf\nllm_tpm = nan\nstats_interval_ms = 1979-05-27T07:32:00Z\n',
    "unicode": '[[agent]]\nname = "u"\nscript = "/srv/\u00e9\u00e8/\U0001F600.py"\nargs = ["\\u00e9"]\n',
}


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def reply(status, body):
    return (status + "\n" + json.dumps(body, indent=1)).encode()


def connection_seeds():
    # Same layout; the first payload byte picks the reply: 0 now, 1 later,
    # 2 never (dropped Responder), 3 reply and close.
    now, later, drop, close = (bytes([i]) + b" request" for i in range(4))
    streams = {
        "mixed-order": frame(0x00, later) + frame(0x00, now) + frame(0x01, later) + frame(0x12, now),
        "back-pressure": b"".join(frame(0x00, later) for _ in range(8)) + frame(0x00, now),
        "dropped": frame(0x00, drop) + frame(0x00, later) + frame(0x00, now),
        "close-then-more": frame(0x00, later) + frame(0x00, close) + frame(0x00, now),
        "exit-then-more": frame(0x00, later) + frame(0xFF) + frame(0x00, now),
        "error-after-later": frame(0x00, later) + frame(0x00, later) + frame(0x00, now, magic=1),
        "oversized-after-now": frame(0x00, now) + frame(0x01, size=MAX_PAYLOAD + 1),
        "long-payloads": b"".join(frame(0x00, now + b"x" * 200) for _ in range(4)),
        "partial-at-eof": frame(0x00, later) + frame(0x00, now)[:20],
    }
    return {name: bytes([i * 53 % 256]) + s for i, (name, s) in enumerate(streams.items())}


def main():
    for name, data in frame_seeds().items():
        write("fuzz_frame_decoder", name, data)
        write("fuzz_connection", name, data)
    for name, data in connection_seeds().items():
        write("fuzz_connection", name, data)
    for name, body in SPAWN.items():
        write("fuzz_spawn_request", name + ".json", json.dumps(body).encode())
    for name, data in SPAWN_RAW.items():
        write("fuzz_spawn_request", name, data)
    for name, body in THINK.items():
        write("fuzz_think_request", name + ".json", json.dumps(body).encode())
    for name, data in THINK_RAW.items():
        write("fuzz_think_request", name, data)
    for target, cooked, raw in (("fuzz_gemini_reply", GEMINI, GEMINI_RAW), ("fuzz_openai_reply", OPENAI, OPENAI_RAW)):
        for name, (status, body) in cooked.items():
            write(target, name, reply(status, body))
        for name, data in raw.items():
            write(target, name, data)
    for name, body in JSON_PAYLOAD.items():
        write("fuzz_json_payload", name + ".json", json.dumps(body).encode())
    for name, data in JSON_RAW.items():
        write("fuzz_json_payload", name, data)
    for name, text in TOML.items():
        write("fuzz_config_file", name + ".toml", text.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

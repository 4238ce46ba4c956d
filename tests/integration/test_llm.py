"""THINK through the real kernel against tests/fakes/fake_llm.py (DESIGN.md §6).

One fake provider per module (a subprocess on 127.0.0.1, port 0); each test
starts the kernel it needs, pointed at the fake through the environment
(GEMINI_BASE_URL / OPENAI_BASE_URL) with fake keys, and scripts the fake
through POST /_control. What the kernel sent is read back from GET /_requests.
Covers: Gemini and OpenAI request/reply shapes, retry on 429, errors for 500 /
timeout / malformed JSON / provider down, cancellation on disconnect, per-agent
token budgets, reply order on a pipelined connection, and the example agents.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from kernel_harness import EXAMPLES_DIR, REPO_ROOT, SDK_DIR, kernel_env, pack_frame, wait_for

NOOP, THINK = 0x00, 0x01
SYS_PYTHON = "/usr/bin/python3"
FAKE = REPO_ROOT / "tests" / "fakes" / "fake_llm.py"
GEMINI_KEY = "fake-gemini-key-123"
OPENAI_KEY = "sk-fake-openai-456"
MODEL = "fake-model-1"
REPLY_TIMEOUT_S = 30.0  # deadline for a THINK reply (retries included)
AGENT_TIMEOUT_S = 30.0

# Knobs a developer may have exported that would change what a test kernel does.
LLM_KNOBS = ("GEMINI_BASE_URL", "AGENTOS_LLM_MODEL", "AGENTOS_LLM_MAX_INFLIGHT", "AGENTOS_LLM_RPM",
             "AGENTOS_LLM_TPM", "AGENTOS_LLM_TIMEOUT_S", "AGENTOS_LLM_MAX_QUEUE",
             "AGENTOS_LLM_QUEUE_TIMEOUT_S", "AGENTOS_LLM_MAX_RETRIES", "AGENTOS_LLM_RETRY_BUDGET_S")


# == the fake provider =========================================================


class FakeLLM:
    """fake_llm.py as a subprocess; exits when our end of its stdin closes."""

    def __init__(self):
        self.proc = subprocess.Popen([SYS_PYTHON, str(FAKE), "--port", "0", "--exit-on-stdin-eof"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"fake_llm.py did not print its port (got {line!r})")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def _http(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def control(self, **knobs):
        return self._http("POST", "/_control", knobs)

    def log(self):
        return self._http("GET", "/_requests")

    def requests(self):
        return self.log()["requests"]

    def wait_requests(self, n, timeout=REPLY_TIMEOUT_S):
        """Polls until the fake has seen at least n provider requests; returns them."""
        return wait_for(lambda: len(self.requests()) >= n and self.requests(), timeout,
                        interval=0.05, what=f"{n} request(s) at the fake provider")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM()
    yield f
    f.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(fake):
    fake.control(reset=True)


def closed_port():
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llm_env(fake, provider="gemini", base_url=None, **knobs):
    """Kernel environment for `provider` pointed at the fake; knobs are
    AGENTOS_LLM_<NAME> values, e.g. max_retries=1."""
    env = {name: None for name in LLM_KNOBS}
    if provider == "gemini":
        env.update(GEMINI_API_KEY=GEMINI_KEY, GEMINI_BASE_URL=base_url or fake.url)
    else:
        env.update(AGENTOS_LLM_PROVIDER="openai", OPENAI_API_KEY=OPENAI_KEY,
                   OPENAI_BASE_URL=base_url or fake.url + "/v1")
    env["AGENTOS_LLM_MODEL"] = MODEL
    for name, value in knobs.items():
        env["AGENTOS_LLM_" + name.upper()] = str(value)
    return env


def think(k, payload, timeout=REPLY_TIMEOUT_S):
    """One THINK on a fresh operator connection; the decoded reply."""
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    with k.raw(timeout=timeout) as conn:
        conn.send_frame(THINK, body)
        frame, reply = conn.recv_json()
    assert frame.opcode == THINK and frame.agent_id == 0, frame
    return reply


def noop_ok(k):
    with k.raw(timeout=10) as conn:
        frame = conn.call(NOOP, b"still there?")
    return frame.opcode == NOOP and frame.payload == b"still there?"


def assert_success_shape(reply, content, prompt_tokens, completion_tokens):
    assert reply.get("error") is None, reply
    assert reply["content"] == content, reply
    total = prompt_tokens + completion_tokens
    assert reply["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": total}, reply
    assert reply["tokens"] == total, reply
    assert reply["model"] == MODEL, reply
    assert reply["finish_reason"] == "stop", reply
    for field in ("queue_ms", "latency_ms"):
        assert isinstance(reply[field], (int, float)) and reply[field] >= 0, reply


def assert_clear_error(reply, *needles):
    """A THINK error: non-empty string naming one of `needles`, no content."""
    error = reply.get("error")
    assert isinstance(error, str) and error, f"expected an error, got {reply}"
    assert any(n.lower() in error.lower() for n in needles), \
        f"error {error!r} does not mention any of {needles}"
    assert reply.get("content") in ("", None), reply


# == (1) Gemini, (2) OpenAI-compatible =========================================


def test_gemini_plain_text_think(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    fake.control(prompt_tokens=7, completion_tokens=5)
    reply = think(k, "hello gemini")
    assert_success_shape(reply, "echo: hello gemini", 7, 5)

    [req] = fake.requests()
    assert req["path"] == f"/v1beta/models/{MODEL}:generateContent", req
    assert req["headers"].get("x-goog-api-key") == GEMINI_KEY, req["headers"]
    assert "key=" not in req["path"], "the key belongs in a header, not the URL"
    assert req["body"]["contents"] == [{"role": "user", "parts": [{"text": "hello gemini"}]}], req["body"]
    assert req["outcome"] == "ok", req


def test_gemini_structured_think_sends_system_temperature_max_tokens(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    reply = think(k, {"prompt": "what is 2+2?", "system": "be terse", "temperature": 0.25,
                      "max_tokens": 33})
    assert reply.get("error") is None and reply["content"] == "echo: what is 2+2?", reply

    [req] = fake.requests()
    body = req["body"]
    assert body["systemInstruction"]["parts"][0]["text"] == "be terse", body
    assert body["contents"][-1]["parts"][0]["text"] == "what is 2+2?", body
    assert body["generationConfig"]["temperature"] == 0.25, body
    assert body["generationConfig"]["maxOutputTokens"] == 33, body


def test_gemini_model_override_and_length_finish(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    fake.control(replies=[{"content": "cut", "finish_reason": "length"}])
    reply = think(k, {"prompt": "long story", "model": "other-model"})
    assert reply.get("error") is None and reply["content"] == "cut", reply
    assert reply["model"] == "other-model", reply
    assert reply["finish_reason"] == "length", reply
    assert fake.requests()[0]["path"] == "/v1beta/models/other-model:generateContent"


def test_openai_plain_and_structured_think(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "openai"))
    fake.control(prompt_tokens=11, completion_tokens=4)
    reply = think(k, "hello openai")
    assert_success_shape(reply, "echo: hello openai", 11, 4)
    reply = think(k, {"prompt": "what is 2+2?", "system": "be terse", "temperature": 0.25,
                      "max_tokens": 33})
    assert reply.get("error") is None and reply["content"] == "echo: what is 2+2?", reply

    plain, structured = fake.requests()
    for req in (plain, structured):
        assert req["path"] == "/v1/chat/completions", req
        assert req["headers"].get("authorization") == f"Bearer {OPENAI_KEY}", req["headers"]
        assert req["body"]["model"] == MODEL, req["body"]
    assert plain["body"]["messages"] == [{"role": "user", "content": "hello openai"}], plain["body"]
    body = structured["body"]
    assert body["messages"] == [{"role": "system", "content": "be terse"},
                                {"role": "user", "content": "what is 2+2?"}], body
    assert body["temperature"] == 0.25, body
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 33, body


def test_openai_messages_array_is_passed_through(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "openai"))
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "and now?"}]
    reply = think(k, {"messages": messages})
    assert reply.get("error") is None and reply["content"] == "echo: and now?", reply
    assert fake.requests()[0]["body"]["messages"] == messages


# == (3) provider faults =======================================================


def test_429_with_retry_after_is_retried_then_served(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini", max_retries=3))
    fake.control(fail_429=1, retry_after="1")
    reply = think(k, "after a rate limit")
    assert reply.get("error") is None, reply
    assert reply["content"] == "echo: after a rate limit", reply
    assert reply["attempts"] >= 2, reply
    outcomes = [r["outcome"] for r in fake.requests()]
    assert outcomes == ["fail_429", "ok"], outcomes


def test_500_every_time_fails_clearly_while_another_client_is_served(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini", max_retries=2))
    # B's request reaches the fake first and is answered late; only then does
    # the fake start failing, so every attempt of A gets a 500 while B is in flight.
    fake.control(replies=[{"content": "B served", "delay_ms": 1500}])
    conn_b = k.raw(timeout=REPLY_TIMEOUT_S)
    conn_b.send_frame(THINK, b"client B")
    fake.wait_requests(1)
    fake.control(fail_500=1000)
    with conn_b:
        reply_a = think(k, "client A")
        _, reply_b = conn_b.recv_json()
    assert_clear_error(reply_a, "500", "internal")
    assert reply_a["attempts"] == 3, reply_a
    assert reply_b.get("error") is None and reply_b["content"] == "B served", reply_b
    outcomes = [r["outcome"] for r in fake.requests()]
    assert outcomes.count("fail_500") == 3 and outcomes.count("scripted") == 1, outcomes

    fake.control(fail_500=0)
    assert think(k, "recovered")["content"] == "echo: recovered"


def test_timeout_gives_a_clear_error(fake, kernel_factory):
    k = kernel_factory(extra_args=["--llm-timeout", "1"], env=llm_env(fake, "gemini", max_retries=0))
    fake.control(hang=1000)
    reply = think(k, "will hang")
    assert_clear_error(reply, "timed out", "timeout")
    # The kernel gave up on the HTTP request: the fake sees the abort.
    wait_for(lambda: fake.log()["aborted"] >= 1, 10, interval=0.1, what="the fake to count an abort")
    assert noop_ok(k)


def test_malformed_json_gives_a_clear_error(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini", max_retries=1))
    fake.control(malformed=1000)
    reply = think(k, "broken body")
    assert_clear_error(reply, "json", "parse", "malformed", "invalid")
    fake.control(malformed=0)
    assert think(k, "fine again")["content"] == "echo: fine again"


def test_provider_down_gives_a_clear_error_and_kernel_keeps_answering(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini", base_url=f"http://127.0.0.1:{closed_port()}",
                                   max_retries=1))
    reply = think(k, "anyone there?")
    assert_clear_error(reply, "connect", "refused", "unreachable", "couldn't")
    assert noop_ok(k)
    assert not fake.requests()


# == (4) cancellation ==========================================================


def test_client_disconnect_cancels_the_provider_request(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    fake.control(hang=1)
    conn = k.raw()
    conn.send_frame(THINK, b"never mind")
    fake.wait_requests(1)
    assert fake.log()["aborted"] == 0
    conn.close()
    wait_for(lambda: fake.log()["aborted"] >= 1, 15, interval=0.1,
             what="the fake to see the cancelled request aborted")
    assert fake.log()["inflight"] == 0
    assert noop_ok(k)
    assert think(k, "next one")["content"] == "echo: next one"


# == (5) per-agent token budget ================================================


BUDGET_AGENT = """\
import json, sys
from agentos import AgentOSClient
client = AgentOSClient(sys.argv[1], timeout=30).connect()
for i in range(int(sys.argv[2])):
    reply = client.think("budget question %d" % i)
    print(json.dumps(reply), flush=True)
    if reply.get("error"):
        break
print("DONE", flush=True)
"""


def test_agent_token_budget_refuses_once_used_while_operator_is_served(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    fake.control(prompt_tokens=10, completion_tokens=10)  # 20 tokens per THINK
    budget = 50
    workdir = Path(tempfile.mkdtemp(prefix="agentos-llm-agent-"))
    try:
        # A sandboxed agent sees only its script's directory: the SDK goes along.
        shutil.copy(SDK_DIR / "agentos.py", workdir / "agentos.py")
        (workdir / "budget_agent.py").write_text(BUDGET_AGENT)
        for p in (workdir, workdir / "agentos.py", workdir / "budget_agent.py"):
            os.chmod(p, 0o755)
        with k.client() as c:
            reply = c.spawn("budget", str(workdir / "budget_agent.py"), sandboxed=os.geteuid() == 0,
                            limits={"llm_tokens": budget}, args=["10"])
            assert reply.get("status") == "running", reply
            agent_id = reply["id"]
            log = Path(k.state_dir) / "logs" / f"budget-{agent_id}.log"
            text = wait_for(lambda: log.exists() and "DONE" in log.read_text() and log.read_text(),
                            AGENT_TIMEOUT_S, interval=0.1, what=f"DONE in {log}")
            replies = [json.loads(line) for line in agent_stdout(text) if line.startswith("{")]
            served = [r for r in replies if not r.get("error")]
            refused = [r for r in replies if r.get("error")]
            assert served and all(r["tokens"] == 20 for r in served), text
            assert len(refused) == 1, f"the agent was never refused:\n{text}"
            assert "budget" in refused[0]["error"].lower(), refused[0]
            used = 20 * len(served)
            assert used <= budget + 20 and used + 20 > budget, \
                f"refused after {used} of {budget} tokens:\n{text}"
            assert len(fake.requests()) == len(served), "a refused THINK still reached the provider"

            # The operator has no budget: still served.
            op = c.think("operator question")
            assert op.get("error") is None and op["content"] == "echo: operator question", op
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def agent_stdout(log_text):
    """The agent's stdout lines from its kernel log file, where each line is
    `<UTC timestamp> <stdout|stderr> <text>` (docs/PROTOCOL.md, LOGS)."""
    for line in log_text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in ("stdout", "stderr"):
            if parts[1] == "stdout":
                yield parts[2]
        else:
            yield line


# == (6) pipelining ============================================================


def test_pipelined_thinks_are_answered_in_request_order(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini", max_inflight=4))
    # Scripted replies keep the echo content; the first to arrive is answered
    # last, so the fake answers in the reverse of its arrival order.
    fake.control(replies=[{"delay_ms": 1500}, {"delay_ms": 750}, {"delay_ms": 0}])
    prompts = [f"pipelined {i}" for i in range(3)]
    with k.raw(timeout=REPLY_TIMEOUT_S) as conn:
        conn.send_raw(b"".join(pack_frame(THINK, p) for p in prompts))
        replies = [conn.recv_json()[1] for _ in prompts]
    assert [r.get("error") for r in replies] == [None] * 3, replies
    assert [r["content"] for r in replies] == [f"echo: {p}" for p in prompts], replies
    log = fake.log()
    assert log["max_inflight"] == 3, f"the requests were not in flight together: {log}"


# == (7) example agents ========================================================


@pytest.mark.parametrize("script,args", [("thinking_agent.py", ["What is 2+2?"]),
                                         ("research_agent.py", ["fair queuing"])])
def test_example_agent_runs_against_the_fake(fake, kernel_factory, script, args):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    fake.control(replies=["query one\nquery two\nquery three"] if script == "research_agent.py" else [])
    out = subprocess.run([SYS_PYTHON, str(EXAMPLES_DIR / script), "--socket", str(k.socket_path),
                          *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=60, env=kernel_env())
    assert out.returncode == 0, f"{script} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    assert fake.requests(), f"{script} never reached the provider"
    if script == "thinking_agent.py":
        assert "echo: What is 2+2?" in out.stdout, out.stdout
    else:
        assert len(fake.requests()) == 5, out.stdout  # 1 query list + 3 findings + 1 summary
        assert "query two" in out.stdout, out.stdout


def test_example_agent_reads_prompt_from_stdin(fake, kernel_factory):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    out = subprocess.run([SYS_PYTHON, str(EXAMPLES_DIR / "thinking_agent.py"), "--socket",
                          str(k.socket_path)], input="piped question\n", capture_output=True,
                         text=True, timeout=60, env=kernel_env())
    assert out.returncode == 0, out.stderr
    assert "echo: piped question" in out.stdout, out.stdout

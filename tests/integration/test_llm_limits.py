"""LLM limits through the real kernel and tests/fakes/fake_llm.py (DESIGN.md §6).

Per agent (SPAWN `limits`): `llm_weight` (service order by weight),
`llm_rpm` and `llm_tpm` (over the limit a request waits in its queue and is
then served; only an expired wait is refused, naming the limit), and
`llm_tokens` (refused at exactly the request the budget says). Global:
`--llm-rpm` and `--llm-tpm` (same rules, for every caller), and the bounded
queue (`AGENTOS_LLM_MAX_QUEUE`).

No timing thresholds: what is asserted is counted (requests the fake saw,
in the order it saw them; replies; the kernel's own queue counters in LIST
and HELLO). Limits are chosen so that a wait is either a few seconds (and
the queue timeout two minutes) or a minute (and the queue timeout one
second); the tests only wait, with deadlines, for things to happen.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from kernel_harness import SDK_DIR, wait_for
from test_llm import REPLY_TIMEOUT_S, THINK, FakeLLM, agent_stdout, assert_clear_error, llm_env, think

AGENT_TIMEOUT_S = 60.0

# argv: socket tag total depth stop_on_error. Keeps `depth` THINKs pipelined
# on its connection (a new one as each reply arrives) until `total` are sent;
# prints every reply as a JSON line, then DONE.
PIPELINE_AGENT = """\
import json, sys
from agentos import AgentOSClient, SyscallOp
client = AgentOSClient(sys.argv[1], timeout=300).connect()
tag, total, depth, stop_on_error = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
sent = received = 0
def send():
    global sent
    client.send(SyscallOp.THINK, "%s %04d" % (tag, sent))
    sent += 1
while sent < min(depth, total):
    send()
while received < sent:
    reply = client.recv().json()
    received += 1
    print(json.dumps(reply), flush=True)
    if reply.get("error") and stop_on_error:
        break
    if sent < total:
        send()
print("DONE", flush=True)
"""


@pytest.fixture(scope="module")
def fake():
    f = FakeLLM()
    yield f
    f.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(fake):
    fake.control(reset=True)


@pytest.fixture
def workdir():
    """The agents' script directory (a sandboxed agent sees only this), with the SDK."""
    d = Path(tempfile.mkdtemp(prefix="agentos-llm-limits-"))
    shutil.copy(SDK_DIR / "agentos.py", d / "agentos.py")
    (d / "pipeline_agent.py").write_text(PIPELINE_AGENT)
    for p in (d, d / "agentos.py", d / "pipeline_agent.py"):
        os.chmod(p, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def spawn_agent(client, workdir, tag, limits, total, depth=1, stop_on_error=True):
    """Spawns pipeline_agent.py named `tag`; returns its id."""
    reply = client.spawn(tag, str(workdir / "pipeline_agent.py"), sandboxed=os.geteuid() == 0,
                         limits=limits, args=[tag, str(total), str(depth), "1" if stop_on_error else "0"])
    assert reply.get("status") == "running", reply
    return reply["id"]


def agent_replies(k, tag, agent_id):
    """Waits for the agent's DONE; its THINK replies in the order received."""
    log = Path(k.state_dir) / "logs" / f"{tag}-{agent_id}.log"
    text = wait_for(lambda: log.exists() and "DONE" in log.read_text() and log.read_text(),
                    AGENT_TIMEOUT_S, interval=0.1, what=f"DONE in {log}")
    return [json.loads(line) for line in agent_stdout(text) if line.startswith("{")]


def agent_llm(client, agent_id):
    """The agent's LLM accounting from LIST (queued, inflight, requests, ...)."""
    [entry] = [a for a in client.list_agents() if a["id"] == agent_id]
    return entry["llm"]


def prompts(fake):
    """The prompt of every request the fake received, in arrival order."""
    return [r["body"]["contents"][-1]["parts"][0]["text"] for r in fake.requests()]


def tags(fake):
    return [p.split()[0] for p in prompts(fake)]


def assert_waited_then_served(fake, served_first, observe_queued):
    """The request over the limit is held: the fake has seen exactly
    `served_first` requests while the kernel reports one queued."""
    def state():
        n = len(fake.requests())
        assert n <= served_first, f"the limit let request {n} through: {prompts(fake)}"
        return n == served_first and observe_queued() == 1
    wait_for(state, REPLY_TIMEOUT_S, interval=0.05,
             what=f"{served_first} requests at the fake and one waiting in the kernel")


# == per agent =================================================================


def test_weight_3_gets_three_times_the_service_of_weight_1(fake, kernel_factory, workdir):
    k = kernel_factory(env=llm_env(fake, "gemini", max_inflight=1))
    fake.control(prompt_tokens=10, completion_tokens=10, hang=1)
    total = 40
    with k.client() as c, k.raw(timeout=REPLY_TIMEOUT_S) as gate:
        # An operator request hangs at the fake and holds the only slot, so
        # both agents have all their THINKs queued before either is served:
        # both stay backlogged whatever the speed of the agents.
        gate.send_frame(THINK, b"gate")
        fake.wait_requests(1)
        heavy = spawn_agent(c, workdir, "heavy", {"llm_weight": 3}, total, total, stop_on_error=False)
        light = spawn_agent(c, workdir, "light", {"llm_weight": 1}, total, total, stop_on_error=False)
        wait_for(lambda: agent_llm(c, heavy)["queued"] == total and agent_llm(c, light)["queued"] == total,
                 AGENT_TIMEOUT_S, interval=0.05, what="both agents' THINKs queued behind the gate")
    # The gate's connection is closed: its request is cancelled, the slot freed.
    for tag, agent_id in (("heavy", heavy), ("light", light)):
        replies = agent_replies(k, tag, agent_id)
        assert len(replies) == total and not [r for r in replies if r.get("error")], replies
    order = tags(fake)
    assert order[0] == "gate" and len(order) == 1 + 2 * total, order
    # Both agents are backlogged for the first 40 requests served (each has
    # 40 queued): 3:1 in tokens, at equal cost per request, is 30 heavy, 10 light.
    window = order[1:41]
    n_heavy, n_light = window.count("heavy"), window.count("light")
    assert 27 <= n_heavy <= 33 and n_heavy + n_light == 40, \
        f"weight 3 vs 1 served {n_heavy}:{n_light} (expected about 30:10): {window}"


def test_agent_rpm_waits_in_its_queue_then_is_served(fake, kernel_factory, workdir):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    # A burst of 6, then one every 10 s: ample time to serve the operator.
    rpm = 6
    with k.client() as c:
        agent = spawn_agent(c, workdir, "rpm", {"llm_rpm": rpm}, total=rpm + 1, depth=rpm + 1)
        assert_waited_then_served(fake, rpm, lambda: agent_llm(c, agent)["queued"])
        # The limit is the agent's own: an operator is served meanwhile.
        op = think(k, "operator while the agent waits")
        assert op.get("error") is None, op
        replies = agent_replies(k, "rpm", agent)
    assert len(replies) == rpm + 1 and not [r for r in replies if r.get("error")], replies
    assert tags(fake) == ["rpm"] * rpm + ["operator", "rpm"], prompts(fake)


def test_agent_rpm_refuses_when_the_wait_expires(fake, kernel_factory, workdir):
    k = kernel_factory(env=llm_env(fake, "gemini", queue_timeout_s=1))
    with k.client() as c:
        agent = spawn_agent(c, workdir, "rpm1", {"llm_rpm": 1}, total=2, depth=2)
        replies = agent_replies(k, "rpm1", agent)
    assert replies[0].get("error") is None, replies
    assert_clear_error(replies[1], "queue timeout")
    assert "agent request rate limit (rpm=1)" in replies[1]["error"], replies[1]
    assert tags(fake) == ["rpm1"]


def test_agent_tpm_waits_in_its_queue_then_is_served(fake, kernel_factory, workdir):
    # One slot, so each dispatch sees the real usage of the one before.
    k = kernel_factory(env=llm_env(fake, "gemini", max_inflight=1))
    fake.control(prompt_tokens=20, completion_tokens=447)  # 467 tokens per THINK
    # 1200/min: 1200 -> 733 -> 266 -> -201 after three; the fourth waits
    # until its estimate is back in the bucket (~10 s).
    with k.client() as c:
        agent = spawn_agent(c, workdir, "tpm", {"llm_tpm": 1200}, total=4, depth=4)
        assert_waited_then_served(fake, 3, lambda: agent_llm(c, agent)["queued"])
        op = think(k, "operator while the agent waits")
        assert op.get("error") is None, op
        replies = agent_replies(k, "tpm", agent)
    assert len(replies) == 4 and not [r for r in replies if r.get("error")], replies
    assert tags(fake) == ["tpm"] * 3 + ["operator", "tpm"], prompts(fake)


def test_agent_tpm_refuses_when_the_wait_expires(fake, kernel_factory, workdir):
    k = kernel_factory(env=llm_env(fake, "gemini", max_inflight=1, queue_timeout_s=1))
    fake.control(prompt_tokens=20, completion_tokens=410)  # 330 tokens in debt after one
    with k.client() as c:
        agent = spawn_agent(c, workdir, "tpm1", {"llm_tpm": 100}, total=2, depth=2)
        replies = agent_replies(k, "tpm1", agent)
    assert replies[0].get("error") is None, replies
    assert_clear_error(replies[1], "queue timeout")
    assert "agent token rate limit (tpm=100)" in replies[1]["error"], replies[1]
    assert tags(fake) == ["tpm1"]


def test_token_budget_refuses_at_the_exact_request(fake, kernel_factory, workdir):
    k = kernel_factory(env=llm_env(fake, "gemini"))
    fake.control(prompt_tokens=10, completion_tokens=10)  # 20 tokens per THINK
    # A prompt like "b50 0003" is estimated at 4 + 2 = 6 tokens. Budget 50:
    # served at 0, 20 and 40 used (40 + 6 <= 50), refused at 60 when asked.
    # Budget 45: 40 + 6 > 45, so the third is refused at dispatch.
    with k.client() as c:
        b50 = spawn_agent(c, workdir, "b50", {"llm_tokens": 50}, total=10)
        b45 = spawn_agent(c, workdir, "b45", {"llm_tokens": 45}, total=10)
        r50 = agent_replies(k, "b50", b50)
        r45 = agent_replies(k, "b45", b45)
        used = {a["id"]: a["llm"] for a in c.list_agents(all=True)}
    assert [r.get("error") is None for r in r50] == [True, True, True, False], r50
    assert "LLM token budget exhausted: this agent used 60 of 50 tokens" in r50[-1]["error"], r50[-1]
    assert [r.get("error") is None for r in r45] == [True, True, False], r45
    assert "used 40 of 45 tokens" in r45[-1]["error"] and "token_budget=45" in r45[-1]["error"], r45[-1]
    assert tags(fake).count("b50") == 3 and tags(fake).count("b45") == 2, prompts(fake)
    assert used[b50]["tokens_used"] == 60 and used[b45]["tokens_used"] == 40, used


# == global ====================================================================


def hello_queued(k):
    with k.client() as c:
        return c.hello()["llm"]["queued"]


def test_global_rpm_makes_callers_wait_then_serves_them(fake, kernel_factory):
    k = kernel_factory(extra_args=["--llm-rpm", "12"], env=llm_env(fake, "gemini"))
    with k.raw(timeout=REPLY_TIMEOUT_S) as a:
        for i in range(12):
            a.send_frame(THINK, f"a {i}")
        replies = [a.recv_json()[1] for _ in range(12)]
    assert not [r for r in replies if r.get("error")], replies
    # Another caller is over the global limit too: it waits, then is served.
    with k.raw(timeout=REPLY_TIMEOUT_S) as b:
        b.send_frame(THINK, b"b 0")
        assert_waited_then_served(fake, 12, lambda: hello_queued(k))
        _, reply = b.recv_json()
    assert reply.get("error") is None and reply["content"] == "echo: b 0", reply
    assert tags(fake) == ["a"] * 12 + ["b"]


def test_global_rpm_refuses_a_full_queue_and_an_expired_wait(fake, kernel_factory):
    k = kernel_factory(extra_args=["--llm-rpm", "1"],
                       env=llm_env(fake, "gemini", queue_timeout_s=1, max_queue=2))
    assert think(k, "first").get("error") is None
    with k.raw(timeout=REPLY_TIMEOUT_S) as conn:
        for i in range(3):
            conn.send_frame(THINK, f"over {i}")
        replies = [conn.recv_json()[1] for _ in range(3)]
    for r in replies[:2]:
        assert_clear_error(r, "queue timeout")
        assert "global request rate limit (rpm=1)" in r["error"], r
    assert_clear_error(replies[2], "queue full")
    assert "max_queue_per_flow=2" in replies[2]["error"], replies[2]
    assert tags(fake) == ["first"]


def test_global_tpm_makes_callers_wait_then_serves_them(fake, kernel_factory):
    k = kernel_factory(extra_args=["--llm-tpm", "1200"], env=llm_env(fake, "gemini", max_inflight=1))
    # 1200/min at 430 tokens per THINK: 1200 -> 770 -> 340 -> -90; then a wait.
    fake.control(prompt_tokens=20, completion_tokens=410)
    with k.raw(timeout=REPLY_TIMEOUT_S) as a:
        for i in range(3):
            a.send_frame(THINK, f"a {i}")
        replies = [a.recv_json()[1] for _ in range(3)]
    assert not [r for r in replies if r.get("error")], replies
    with k.raw(timeout=REPLY_TIMEOUT_S) as b:
        b.send_frame(THINK, b"b 0")
        assert_waited_then_served(fake, 3, lambda: hello_queued(k))
        _, reply = b.recv_json()
    assert reply.get("error") is None and reply["tokens"] == 430, reply
    assert tags(fake) == ["a"] * 3 + ["b"]


def test_global_tpm_refuses_when_the_wait_expires(fake, kernel_factory):
    k = kernel_factory(extra_args=["--llm-tpm", "100"], env=llm_env(fake, "gemini", queue_timeout_s=1))
    fake.control(prompt_tokens=20, completion_tokens=410)
    assert think(k, "first").get("error") is None
    reply = think(k, "second")
    assert_clear_error(reply, "queue timeout")
    assert "global token rate limit (tpm=100)" in reply["error"], reply
    assert tags(fake) == ["first"]

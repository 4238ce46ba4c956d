"""Operating agents through the kernel (docs/PROTOCOL.md): restart policies
and their backoff, measured through EVENTS; PAUSE/RESUME against the cgroup
freezer; WAIT; EVENTS paging and long-polls; LOGS capture of both streams,
paging and follow; STATS; and the error replies of every new syscall.

Needs root like test_runtime.py (cgroups, per-agent uids).
"""

import json
import time

import pytest

from kernel_harness import EXAMPLES_DIR, pack_frame, wait_for
from test_runtime import (PROBES, ROOT_REASON, SPAWN, call, entry, kill, list_agents, log_path,  # noqa: F401
                          spawn_ok)

LOGS, STATS, PAUSE, RESUME, WAIT, EVENTS = 0x13, 0x14, 0x15, 0x16, 0x17, 0x18
KERNEL_ARGS = ["--stats-interval-ms", "200", "--log-max-bytes", "65536", "--log-max-files", "2"]
CHATTER = PROBES / "chatter.py"
EXIT_WITH = PROBES / "exit_with.py"
SLEEPER = PROBES / "sleeper.py"
DEADLINE_S = 30.0

pytestmark = pytest.mark.skipif(__import__("os").geteuid() != 0, reason=ROOT_REASON)


def events_of(k, name, since=0):
    return [e for e in call(k, EVENTS, {"since": since, "name": name})["events"]]


def wait_event(k, name, type_, count=1, since=0):
    """Long-polls EVENTS until `count` events of `type_` for `name` arrived."""
    deadline = time.monotonic() + DEADLINE_S
    seen, cursor = [], since
    while time.monotonic() < deadline:
        reply = call(k, EVENTS, {"since": cursor, "name": name, "wait_ms": 2000})
        assert "error" not in reply, reply
        seen += [e for e in reply["events"] if e["type"] == type_]
        cursor = reply["next"]
        if len(seen) >= count:
            return seen
    raise AssertionError(f"{count} '{type_}' event(s) for {name} not seen: {events_of(k, name)}")


def wait_reply(k, name, timeout_ms=0):
    return call(k, WAIT, {"name": name, **({"timeout_ms": timeout_ms} if timeout_ms else {})}, timeout=60)


# == restart policies ===========================================================


def test_on_failure_restarts_with_doubling_backoff_then_gives_up(kernel):
    r = spawn_ok(kernel, "crashy", EXIT_WITH, args=["code", "3"], restart="on-failure", max_restarts=3,
                 restart_delay_ms=100, restart_max_delay_ms=250)
    gave_up = wait_event(kernel, "crashy", "gave_up")[0]
    assert "start limit" in gave_up["reason"]
    evs = events_of(kernel, "crashy")
    restarting = [e for e in evs if e["type"] == "restarting"]
    assert [e["delay_ms"] for e in restarting] == [100, 200, 250]
    assert [e["attempt"] for e in restarting] == [1, 2, 3]
    # Each restart came no sooner than its announced delay (kernel's clock).
    exited = [e for e in evs if e["type"] == "exited"]
    started = [e for e in evs if e["type"] == "restarted"]
    assert len(exited) == 4 and len(started) == 3
    for ex, st, rs in zip(exited, started, restarting):
        assert st["mono_ms"] - ex["mono_ms"] >= rs["delay_ms"] - 1, (ex, st, rs)
    final = wait_reply(kernel, "crashy")
    assert final["id"] == r["id"] and final["state"] == "FAILED" and final["restarts"] == 3
    assert final["exit_code"] == 3 and "start limit" in final["reason"]


def test_on_failure_does_not_restart_a_clean_exit(kernel):
    spawn_ok(kernel, "clean", EXIT_WITH, args=["code", "0"], restart="on-failure")
    final = wait_reply(kernel, "clean")
    assert final["state"] == "STOPPED" and final["restarts"] == 0
    assert not [e for e in events_of(kernel, "clean") if e["type"] == "restarting"]


def test_always_restarts_a_clean_exit_and_keeps_id_and_log(kernel):
    r = spawn_ok(kernel, "again", EXIT_WITH, args=["code", "0"], restart="always", max_restarts=2,
                 restart_delay_ms=10)
    final = wait_reply(kernel, "again")
    assert final["id"] == r["id"] and final["restarts"] == 2 and final["state"] == "STOPPED"
    text = log_path(kernel, "again", r["id"]).read_text()
    assert text.count("ending with code 0") == 3, text


def test_kill_never_triggers_a_restart(kernel):
    r = spawn_ok(kernel, "stubborn", SLEEPER, restart="always", restart_delay_ms=10)
    assert kill(kernel, name="stubborn") == {"killed": True}
    final = wait_reply(kernel, "stubborn")
    assert final["state"] == "STOPPED" and final["restarts"] == 0, final
    assert entry(kernel, r["id"])["state"] == "STOPPED"
    types = [e["type"] for e in events_of(kernel, "stubborn")]
    assert "killed" in types and "restarting" not in types, types


def test_kill_during_restart_delay_cancels_the_restart(kernel):
    spawn_ok(kernel, "slowback", EXIT_WITH, args=["code", "1"], restart="on-failure", restart_delay_ms=60000,
             restart_max_delay_ms=60000)
    wait_event(kernel, "slowback", "restarting")
    restarting = [a for a in list_agents(kernel) if a["name"] == "slowback"]
    assert restarting and restarting[0]["state"] == "RESTARTING" and not restarting[0]["running"]
    # The name stays taken while the agent waits to come back.
    dup = call(kernel, SPAWN, {"name": "slowback", "script": str(SLEEPER)})
    assert "already running" in dup.get("error", ""), dup
    assert kill(kernel, name="slowback") == {"killed": True}
    assert wait_reply(kernel, "slowback")["state"] == "STOPPED"


def test_restart_fields_are_validated(kernel):
    for fields, name in [({"restart": "sometimes"}, "restart"), ({"max_restarts": -1}, "max_restarts"),
                         ({"restart_window": 0}, "restart_window"),
                         ({"restart_delay_ms": 10, "restart_max_delay_ms": 5}, "restart_max_delay_ms")]:
        reply = call(kernel, SPAWN, {"name": "bad-restart", "script": str(SLEEPER), **fields})
        assert f"'{name}'" in reply.get("error", ""), (fields, reply)


# == PAUSE / RESUME =============================================================


def cpu_ms(k, name):
    reply = call(k, STATS, {"name": name})
    return reply["agents"][0]["cpu_usage_ms"]


def test_pause_stops_cpu_use_and_resume_restores_it(kernel):
    spawn_ok(kernel, "spinner", EXAMPLES_DIR / "cpu_hog_agent.py")
    # Wait until it is burning CPU.
    deadline = time.monotonic() + DEADLINE_S
    while cpu_ms(kernel, "spinner") < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert call(kernel, PAUSE, {"name": "spinner"}) == {"paused": True, "id": entry_id(kernel, "spinner"),
                                                         "name": "spinner"}
    assert call(kernel, PAUSE, {"name": "spinner"})["error"].startswith("cannot pause")
    time.sleep(0.3)  # let the freezer settle; the assertion below is on usage, not time
    frozen_at = cpu_ms(kernel, "spinner")
    time.sleep(1.0)
    assert cpu_ms(kernel, "spinner") - frozen_at <= 20, "a paused agent kept using CPU"
    assert [a["state"] for a in list_agents(kernel) if a["name"] == "spinner"] == ["PAUSED"]
    assert call(kernel, RESUME, {"name": "spinner"})["resumed"] is True
    deadline = time.monotonic() + DEADLINE_S
    while cpu_ms(kernel, "spinner") < frozen_at + 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cpu_ms(kernel, "spinner") >= frozen_at + 200, "CPU use did not come back after RESUME"
    types = [e["type"] for e in events_of(kernel, "spinner")]
    assert "paused" in types and "resumed" in types


def test_kill_of_a_paused_agent_ends_it(kernel):
    spawn_ok(kernel, "frozen", SLEEPER)
    assert call(kernel, PAUSE, {"name": "frozen"})["paused"] is True
    assert kill(kernel, name="frozen") == {"killed": True}
    final = wait_reply(kernel, "frozen")
    assert final["state"] == "STOPPED" and not final["running"]


def entry_id(k, name):
    return next(a["id"] for a in list_agents(k) if a["name"] == name)


# == WAIT ======================================================================


def test_wait_answers_with_the_exit_status(kernel):
    spawn_ok(kernel, "seven", EXIT_WITH, args=["code", "7"])
    final = wait_reply(kernel, "seven")
    assert final["exit_code"] == 7 and final["status"] == "exited" and final["state"] == "FAILED"
    # An agent that already ended answers at once, and by signal too.
    assert wait_reply(kernel, "seven")["exit_code"] == 7
    spawn_ok(kernel, "segv", EXIT_WITH, args=["signal", "11"])
    assert wait_reply(kernel, "segv")["signal"] == 11


def test_wait_times_out_on_a_running_agent(kernel):
    spawn_ok(kernel, "napper", SLEEPER)
    reply = wait_reply(kernel, "napper", timeout_ms=200)
    assert reply.get("timed_out") is True and "timeout" in reply["error"]
    kill(kernel, name="napper")


def test_wait_of_a_closed_connection_is_dropped(kernel):
    spawn_ok(kernel, "napper2", SLEEPER)
    fds_before = kernel.open_fds()
    for _ in range(20):
        with kernel.raw() as c:
            c.send_frame(WAIT, json.dumps({"name": "napper2"}).encode())
    assert kill(kernel, name="napper2") == {"killed": True}
    assert wait_reply(kernel, "napper2")["state"] == "STOPPED"
    assert kernel.open_fds() <= fds_before + 2


# == EVENTS ====================================================================


def test_events_page_and_long_poll(kernel):
    first = call(kernel, EVENTS, {"since": 0, "limit": 1})
    assert len(first["events"]) <= 1
    head = call(kernel, EVENTS, {"since": 10**9})
    assert head["events"] == [] and isinstance(head["next"], int)
    # A long-poll from the head answers when the next event happens.
    with kernel.raw(timeout=60) as c:
        c.send_frame(EVENTS, json.dumps({"since": head["next"], "wait_ms": 20000}).encode())
        time.sleep(0.2)
        spawn_ok(kernel, "evented", EXIT_WITH, args=["code", "0"])
        reply = json.loads(c.recv_frame().payload)
    assert reply["events"] and reply["events"][0]["seq"] == head["next"]
    assert reply["events"][0]["name"] == "evented" and reply["events"][0]["type"] == "spawned"
    for key in ("ts", "mono_ms", "id", "seq"):
        assert key in reply["events"][0]


# == LOGS ======================================================================


def test_logs_capture_both_streams_with_timestamps(kernel):
    r = spawn_ok(kernel, "talker", CHATTER, args=["50"])
    wait_reply(kernel, "talker")
    page = call(kernel, LOGS, {"name": "talker", "tail": 1000})
    texts = [(line["stream"], line["text"]) for line in page["lines"]]
    assert [t for s, t in texts if s == "stdout"] == [f"out {i}" for i in range(50)] + ["done"]
    assert [t for s, t in texts if s == "stderr"] == [f"err {i}" for i in range(50)]
    assert all(line["ts"].endswith("Z") and "T" in line["ts"] for line in page["lines"])
    assert page["running"] is False and page["truncated"] is False
    tail = call(kernel, LOGS, {"name": "talker", "tail": 60})["lines"]
    assert [line["text"] for line in tail if line["stream"] == "stdout"][-1] == "done"
    # The file holds the same lines, timestamped and tagged.
    first = log_path(kernel, "talker", r["id"]).read_text().splitlines()[0]
    assert first.split(" ", 2)[1] in ("stdout", "stderr")


def test_logs_pages_through_since_without_gaps(kernel):
    spawn_ok(kernel, "pager", CHATTER, args=["300"])
    wait_reply(kernel, "pager")
    whole = call(kernel, LOGS, {"name": "pager", "tail": 10000})["lines"]
    got, since = [], 0
    for _ in range(1000):
        page = call(kernel, LOGS, {"name": "pager", "since": since, "max_bytes": 1000})
        if not page["lines"]:
            break
        got += page["lines"]
        since = page["next"]
    assert got == whole and len(whole) == 601


def test_logs_rotate_within_bounds(kernel):
    r = spawn_ok(kernel, "flood", CHATTER, args=["20000"])
    wait_reply(kernel, "flood", timeout_ms=60000)
    base = log_path(kernel, "flood", r["id"])
    files = sorted(base.parent.glob(base.name + "*"))
    total = sum(f.stat().st_size for f in files)
    assert len(files) <= 3 and total <= 3 * 65536, [(f.name, f.stat().st_size) for f in files]
    # The newest lines are kept (the two streams interleave by read time).
    page = call(kernel, LOGS, {"name": "flood", "tail": 1000})
    assert [line["text"] for line in page["lines"] if line["stream"] == "stdout"][-1] == "done"
    old = call(kernel, LOGS, {"name": "flood", "since": 0, "max_bytes": 100})
    assert old["truncated"] is True and old["start"] > 0


def test_logs_follow_waits_for_new_lines(kernel):
    spawn_ok(kernel, "follow", SLEEPER)
    wait_for(lambda: call(kernel, LOGS, {"name": "follow"})["lines"], DEADLINE_S, what="the sleeper's 'ready'")
    head = call(kernel, LOGS, {"name": "follow", "tail": 0})
    with kernel.raw(timeout=60) as c:
        c.send_frame(LOGS, json.dumps({"name": "follow", "since": head["next"], "wait_ms": 20000}).encode())
        time.sleep(0.2)
        kill(kernel, name="follow")  # its end wakes the follower, with or without lines
        reply = json.loads(c.recv_frame().payload)
    assert reply["running"] is False, reply


# == STATS =====================================================================


def test_stats_reports_agents_and_the_kernel(kernel):
    spawn_ok(kernel, "statted", SLEEPER, limits={"memory": 64 << 20, "max_pids": 32})
    time.sleep(0.5)
    reply = call(kernel, STATS)
    agent = next(a for a in reply["agents"] if a["name"] == "statted")
    for key in ("cpu_usage_ms", "cpu_percent", "throttled_count", "throttled_ms", "memory_bytes",
                "memory_peak_bytes", "pids", "oom_kills", "restarts", "uptime_ms", "llm"):
        assert key in agent, key
    assert agent["memory_limit"] == 64 << 20 and agent["pids_limit"] == 32 and agent["pids"] >= 1
    k = reply["kernel"]
    assert k["pid"] == kernel.pid and k["rss_bytes"] > 0 and k["fds"] > 0 and k["agents_running"] >= 1
    assert k["sampler"]["agents"] >= 1 and "llm" in k
    kill(kernel, name="statted")


# == bad input =================================================================


@pytest.mark.parametrize("op,body,needle", [
    (LOGS, {"name": "nobody"}, "no agent named"),
    (LOGS, {"name": "x", "tail": -1}, "'tail'"),
    (LOGS, {"name": "x", "max_bytes": 10**9}, "'max_bytes'"),
    (LOGS, {"name": "x", "wait_ms": 10**9}, "'wait_ms'"),
    (LOGS, {"nme": "x"}, "unknown field 'nme'"),
    (STATS, {"id": "1"}, "'id'"),
    (STATS, {"bogus": 1}, "unknown field"),
    (PAUSE, {}, "expected \"name\""),
    (RESUME, {"name": 5}, "expected \"name\""),
    (WAIT, {"name": "nobody"}, "no agent named"),
    (WAIT, {"name": "x", "timeout_ms": "soon"}, "'timeout_ms'"),
    (EVENTS, {"since": -3}, "'since'"),
    (EVENTS, {"limit": 10**6}, "'limit'"),
    (EVENTS, {"name": 3}, "'name'"),
    (LOGS, b"{not json", "JSON object"),
    (STATS, b"[1,2]", "JSON object"),
])
def test_bad_payloads_answer_at_once(kernel, op, body, needle):
    reply = call(kernel, op, body)
    assert needle in reply.get("error", ""), reply
    # The connection stays usable after an error.
    with kernel.raw() as c:
        c.send_raw(pack_frame(op, body if isinstance(body, bytes) else json.dumps(body).encode())
                   + pack_frame(0x00, b"ping"))
        c.recv_frame()
        assert c.recv_frame().payload == b"ping"

"""Agents declared in the config file (--config): started at boot in file
order, reconciled on SIGHUP (new ones start, removed ones stop, changed
ones restart, an invalid file changes nothing), stopped in reverse order on
shutdown. Needs root like test_runtime.py.
"""

import json
import os
import re
import signal
import time

import pytest

from kernel_harness import wait_for
from test_runtime import PROBES, ROOT_REASON, call, list_agents

EVENTS = 0x18
SLEEPER = PROBES / "sleeper.py"
DEADLINE_S = 30.0

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason=ROOT_REASON)


def agent_table(name, *args, **extra):
    lines = ["[[agent]]", f'name = "{name}"', f'script = "{SLEEPER}"',
             f"args = {json.dumps(list(args))}", 'limits = { memory = "64M", max_pids = 16 }']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write_config(path, *tables):
    path.write_text("".join(tables))
    os.chmod(path, 0o600)


def running(k):
    return {a["name"]: a for a in list_agents(k) if a["running"]}


def wait_running(k, names):
    return wait_for(lambda: set(running(k)) == set(names) and running(k), DEADLINE_S,
                    what=f"exactly {sorted(names)} running")


def wait_event(k, type_, since=0):
    def seen():
        return next((e for e in call(k, EVENTS, {"since": since})["events"] if e["type"] == type_), None)
    return wait_for(seen, DEADLINE_S, what=f"a '{type_}' event")


@pytest.fixture
def config(tmp_path):
    return tmp_path / "agentos.toml"


def test_boot_reload_and_reverse_stop(kernel_factory, config):
    write_config(config, agent_table("first"), agent_table("second"), agent_table("third"))
    k = kernel_factory(extra_args=["--config", str(config)])
    agents = wait_running(k, {"first", "second", "third"})
    ids = [agents[n]["id"] for n in ("first", "second", "third")]
    assert ids == sorted(ids), "declared agents start in file order"
    assert all(a["declared"] for a in agents.values())

    # Reload: drop "first", change "second", keep "third", add "fourth".
    head = call(k, EVENTS, {"since": 10**9})["next"]
    write_config(config, agent_table("second", "--fork", "1"), agent_table("third"), agent_table("fourth"))
    os.kill(k.pid, signal.SIGHUP)
    reloaded = wait_event(k, "config_reloaded", head)
    assert (reloaded["started"], reloaded["stopped"], reloaded["restarted"], reloaded["kept"]) == (1, 1, 1, 1)
    after = wait_for(lambda: (lambda r: set(r) == {"second", "third", "fourth"}
                              and r["second"]["id"] != agents["second"]["id"] and r)(running(k)),
                     DEADLINE_S, what="second restarted and fourth started")
    assert after["third"]["id"] == agents["third"]["id"], "an unchanged agent keeps running"

    # An invalid file is rejected with its line; the running set stays.
    head = call(k, EVENTS, {"since": 10**9})["next"]
    config.write_text(config.read_text() + "\n[[agent]]\nname = \"broken\"\nmemroy = 5\n")
    os.kill(k.pid, signal.SIGHUP)
    rejected = wait_event(k, "config_rejected", head)
    assert re.search(r":\d+:\d+:", rejected["error"]) and "memroy" in rejected["error"], rejected
    time.sleep(0.3)
    assert {n: a["id"] for n, a in running(k).items()} == {n: a["id"] for n, a in after.items()}

    # Shutdown stops declared agents one at a time, the last started first.
    assert k.stop() == 0
    order = re.findall(r"agent \d+ '(\w+)' ended", k.log_text())
    # Start order was first, second, third, fourth, then the restarted second.
    assert order[-3:] == ["second", "fourth", "third"], order

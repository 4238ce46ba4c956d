#!/usr/bin/env python3
"""Agent management walk-through: list, spawn `worker1` (sandboxed, 128 MiB),
list, watch it run and finish, list, kill whatever remains.

Usage: spawn_test.py [--socket PATH] [--timeout SECONDS]
Prints every step; exits 1 as soon as a step does not go as expected.
"""

import sys
import time

import _common

WORKER = "worker1"
POLL_S = 0.25


class StepFailed(Exception):
    pass


def show_agents(title, agents):
    print(f"\n== {title}: {len(agents)} agent(s)")
    for a in agents:
        print(f"   id={a.get('id')} name={a.get('name')} pid={a.get('pid')} "
              f"state={a.get('state')} status={a.get('status')} exit_code={a.get('exit_code')}")


def find(agents, agent_id):
    return next((a for a in agents if a.get("id") == agent_id), None)


def spawn_worker(client):
    print(f"\n== spawn {WORKER} (sandboxed, memory limit 128 MiB)")
    reply = client.spawn(name=WORKER, script=_common.example_path("worker_agent.py"),
                         sandboxed=True, limits={"memory": 128 * 1024 * 1024})
    print(f"   reply: {reply}")
    if reply.get("status") != "running":
        raise StepFailed(f"spawn did not report running: {reply.get('error', reply)}")
    return reply["id"]


def wait_until_finished(client, agent_id, timeout):
    print(f"\n== watching {WORKER} (id {agent_id}) until it finishes")
    deadline = time.monotonic() + timeout
    last_state = None
    while time.monotonic() < deadline:
        entry = find(client.list_agents(all=True), agent_id)
        if entry is None:
            raise StepFailed(f"agent {agent_id} vanished from LIST {{\"all\": true}}")
        state = (entry.get("state"), entry.get("status"))
        if state != last_state:
            print(f"   state={entry.get('state')} status={entry.get('status')} "
                  f"uptime_ms={entry.get('uptime_ms')} cpu_usage_ms={entry.get('cpu_usage_ms')}")
            last_state = state
        if not entry.get("running"):
            return entry
        time.sleep(POLL_S)
    raise StepFailed(f"{WORKER} still running after {timeout:g} s")


def walk_through(client, timeout, spawned):
    show_agents("agents before", client.list_agents())
    agent_id = spawn_worker(client)
    spawned.append(agent_id)

    listed = client.list_agents()
    show_agents("agents after spawn", listed)
    entry = find(listed, agent_id) or find(client.list_agents(all=True), agent_id)
    if entry is None:
        raise StepFailed(f"{WORKER} (id {agent_id}) is not in LIST")
    if entry.get("status") != "running" and entry.get("exit_code") != 0:
        raise StepFailed(f"{WORKER} ended early: {entry}")

    entry = wait_until_finished(client, agent_id, timeout)
    print(f"   finished: status={entry.get('status')} exit_code={entry.get('exit_code')} "
          f"signal={entry.get('signal')}")
    if entry.get("status") != "exited" or entry.get("exit_code") != 0:
        raise StepFailed(f"{WORKER} did not exit cleanly: {entry}")

    listed = client.list_agents()
    show_agents("agents after it finished", listed)
    if find(listed, agent_id) is not None:
        raise StepFailed(f"{WORKER} is still listed as running after it exited")

    print(f"\n== kill what remains of {WORKER}")
    reply = client.kill(name=WORKER)
    print(f"   reply: {reply} (false is expected: it already exited)")
    if "killed" not in reply:
        raise StepFailed(f"kill gave no 'killed' field: {reply}")


def main():
    parser = _common.parser("Spawn, watch and kill an agent through the kernel.")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the worker to finish (default 30)")
    args = parser.parse_args()
    # Errors come back as dicts here, so each step can say what it expected.
    with _common.client(args.socket, raise_errors=False) as client:
        spawned = []
        try:
            walk_through(client, args.timeout, spawned)
        except StepFailed as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            for agent_id in spawned:  # only what this run started
                client.kill(agent_id=agent_id)
            return 1
    print("\nall steps passed")
    return 0


if __name__ == "__main__":
    _common.run(main)

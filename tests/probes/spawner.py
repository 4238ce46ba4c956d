#!/usr/bin/env python3
"""Probe agent that uses SPAWN/LIST/KILL on its own socket, for the
authority rules (DESIGN.md §3): an agent may spawn only with allow_spawn,
and sees and kills only its own descendants.

    spawner.py <socket> PLAN_JSON

PLAN_JSON: {"child_script": abs path, "child_name": str,
            "sibling_name": str, "sibling_id": int}
Steps: spawn the child; LIST; LIST all; KILL the sibling by name and by id;
KILL the child; LIST all. Prints one JSON line per step
{"step": ..., "reply": ...} and finally {"step": "done"}; exits 0.
"""

import json
import sys

from agentos import AgentOSClient


def main(argv):
    plan = json.loads(argv[2])

    def step(name, reply):
        print(json.dumps({"step": name, "reply": reply}), flush=True)
        return reply

    with AgentOSClient(argv[1], timeout=30) as c:
        spawned = step("spawn_child", c.spawn(name=plan["child_name"], script=plan["child_script"],
                                              limits={"memory": 64 << 20, "max_pids": 8}))
        step("list", c.list_agents())
        step("list_all", c.list_agents(all=True))
        step("kill_sibling_by_name", c.kill(name=plan["sibling_name"]))
        step("kill_sibling_by_id", c.kill(agent_id=plan["sibling_id"]))
        if spawned.get("status") == "running":
            step("kill_child", c.kill(name=plan["child_name"]))
        step("list_all_after", c.list_agents(all=True))
        step("self_id", c.agent_id)
    print(json.dumps({"step": "done"}), flush=True)


if __name__ == "__main__":
    main(sys.argv)

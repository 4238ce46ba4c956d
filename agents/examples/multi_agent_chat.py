#!/usr/bin/env python3
"""Multi-agent discussion: an analyst, a creative and a critic each give a
view on a topic, then the LLM synthesises a balanced conclusion.

Usage: multi_agent_chat.py [--socket PATH] [--spawn-workers] [TOPIC ...]
The topic comes from the arguments, else from piped stdin. With
--spawn-workers, each specialist also gets a sandboxed worker agent (128 MiB,
16 pids) for the length of the discussion. Exits 1 on any kernel error.
"""

import sys

import _common

PERSPECTIVES = (
    ("analyst", "analytical and data-driven"),
    ("creative", "creative and unconventional"),
    ("critic", "critical and skeptical"),
)


def create_specialist_agent(client, name):
    """A sandboxed worker agent standing for one specialist."""
    return client.spawn(name=name, script=_common.example_path("worker_agent.py"),
                        sandboxed=True, limits={"memory": 128 * 1024 * 1024, "max_pids": 16},
                        args=["30"])


def discuss(client, topic):
    responses = []
    for name, style in PERSPECTIVES:
        view = _common.think(client, (
            f"You are a {style} thinker.\nTopic: {topic}\n\n"
            f"Give your perspective in 2-3 sentences, and be {style} about it."))
        responses.append((name, view))
        print(f"\n[{name.upper()}]: {view}")

    views = "\n".join(f"- {name}: {view}" for name, view in responses)
    synthesis = _common.think(client, (
        f"Topic: {topic}\n\nDifferent perspectives:\n{views}\n\n"
        "Synthesise these viewpoints into a balanced conclusion of 2-3 sentences."))
    print(f"\n[SYNTHESIS]: {synthesis}")
    return synthesis


def main():
    parser = _common.parser("A discussion between three LLM personas.")
    parser.add_argument("topic", nargs="*", help="discussion topic (default: read stdin)")
    parser.add_argument("--spawn-workers", action="store_true",
                        help="spawn a sandboxed worker agent per specialist")
    args = parser.parse_args()
    topic = _common.read_text(args.topic, "Discussion topic: ")
    if not topic:
        print("error: no topic given (pass it as arguments or on stdin)", file=sys.stderr)
        return 2
    with _common.client(args.socket) as client:
        workers = []
        try:
            if args.spawn_workers:
                for name, _ in PERSPECTIVES:
                    reply = create_specialist_agent(client, name)
                    workers.append(reply["id"])
                    print(f"spawned worker {name} (id {reply['id']}, pid {reply.get('pid')})")
            discuss(client, topic)
        finally:
            for agent_id in workers:
                client.kill(agent_id=agent_id)
    return 0


if __name__ == "__main__":
    _common.run(main)

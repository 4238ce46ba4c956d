#!/usr/bin/env python3
"""Research assistant: turns a topic into three search queries, has the LLM
answer each from what it knows, then writes a summary of the findings.

Usage: research_agent.py [--socket PATH] [TOPIC ...]   (or pipe the topic on stdin)
Exits 1 if any THINK answers with an error.
"""

import sys

import _common


def research(client, topic):
    queries_text = _common.think(client, (
        f"I need to research: {topic}\n"
        "Write 3 specific search queries that would find information about it.\n"
        "Put one query per line, with no numbering and nothing else."))
    queries = [q.strip(" -*0123456789.") for q in queries_text.splitlines() if q.strip()][:3]
    print("Search queries:")
    for q in queries:
        print(f"  - {q}")

    findings = []
    for q in queries:
        finding = _common.think(client, (
            f"Search query: {q}\n"
            "From what you know, give the key facts on this in 2-3 concise sentences."))
        print(f"\n[{q}]\n{finding}")
        findings.append(finding)

    bullets = "\n".join(f"- {f}" for f in findings)
    return _common.think(client, (
        f"Topic: {topic}\n\nFindings:\n{bullets}\n\n"
        "Combine these findings into one short summary paragraph."))


def main():
    parser = _common.parser("Research a topic with the AgentOS kernel's LLM.")
    parser.add_argument("topic", nargs="*", help="what to research (default: read stdin)")
    args = parser.parse_args()
    topic = _common.read_text(args.topic, "Research topic: ")
    if not topic:
        print("error: no topic given (pass it as arguments or on stdin)", file=sys.stderr)
        return 2
    with _common.client(args.socket) as client:
        summary = research(client, topic)
    print(f"\n=== Summary ===\n{summary}")
    return 0


if __name__ == "__main__":
    _common.run(main)

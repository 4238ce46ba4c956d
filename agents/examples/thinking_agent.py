#!/usr/bin/env python3
"""Thinking agent: asks the kernel's shared LLM and prints the answer.

Usage: thinking_agent.py [--socket PATH] [PROMPT ...]
The prompt comes from the arguments, else from piped stdin; with neither, a
few demo questions are asked. Exits 1 if THINK answers with an error (for
example when the kernel has no LLM configured).
"""

import _common

DEMO_PROMPTS = (
    "What is 2+2? Answer in one short sentence.",
    "Give two reasons to run AI agents as separate operating-system processes, one line each.",
)


def describe(reply):
    """One line of metadata from a THINK reply (fields the kernel may add)."""
    usage = reply.get("usage") or {}
    parts = [f"model={reply['model']}" if reply.get("model") else None,
             f"tokens={usage.get('total_tokens', reply.get('tokens'))}",
             f"latency={reply['latency_ms']} ms" if "latency_ms" in reply else None,
             f"queued={reply['queue_ms']} ms" if "queue_ms" in reply else None]
    return ", ".join(p for p in parts if p)


def main():
    parser = _common.parser("Ask the AgentOS kernel's LLM a question.")
    parser.add_argument("prompt", nargs="*", help="the question (default: stdin, else demo questions)")
    args = parser.parse_args()
    prompt = _common.read_text(args.prompt, "Prompt: ", default="")
    prompts = [prompt] if prompt else list(DEMO_PROMPTS)

    with _common.client(args.socket) as client:
        for question in prompts:
            print(f"Q: {question}")
            reply = client.think(question)
            print(f"A: {(reply.get('content') or '').strip()}")
            print(f"   ({describe(reply)})\n")
    return 0


if __name__ == "__main__":
    _common.run(main)

#!/usr/bin/env python3
"""Conversation agent with memory: each reply is written with the last ten
turns of the conversation as context.

Usage: memory_agent.py [--socket PATH] [MESSAGE ...]
Each argument is one user message; without arguments, messages are read one
per line from stdin (with a "You:" prompt at a terminal). "quit" ends the
conversation. Exits 1 if THINK answers with an error.
"""

import sys

import _common

HISTORY_TURNS = 10


class ConversationAgent:
    """Keeps the conversation and asks the LLM with the recent part of it."""

    def __init__(self, socket_path=None):
        self.history = []
        self.client = _common.client(socket_path)

    def chat(self, user_message):
        self.history.append(f"User: {user_message}")
        context = "\n".join(self.history[-HISTORY_TURNS:])
        reply = _common.think(self.client, (
            f"Conversation so far:\n{context}\n\n"
            "Reply naturally to the user's latest message in 1-3 sentences."))
        self.history.append(f"Assistant: {reply}")
        return reply

    def close(self):
        self.client.disconnect()


def user_messages(words):
    """Messages from the arguments, else lines of stdin until EOF or 'quit'."""
    if words:
        yield from words
        return
    interactive = sys.stdin.isatty()
    if interactive:
        print("Chat with the agent (type 'quit' to leave)\n")
    while True:
        try:
            line = input("You: ") if interactive else sys.stdin.readline()
        except EOFError:
            return
        if not interactive and not line:
            return
        line = line.strip()
        if line.lower() == "quit":
            return
        if line:
            yield line


def main():
    parser = _common.parser("Chat with an LLM agent that remembers the conversation.")
    parser.add_argument("message", nargs="*", help="user messages (default: lines of stdin)")
    args = parser.parse_args()
    agent = ConversationAgent(args.socket)
    try:
        for message in user_messages(args.message):
            if not sys.stdin.isatty() or args.message:
                print(f"You: {message}")
            print(f"Agent: {agent.chat(message)}\n")
    finally:
        agent.close()
    return 0


if __name__ == "__main__":
    _common.run(main)

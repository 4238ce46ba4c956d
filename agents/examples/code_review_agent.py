#!/usr/bin/env python3
"""Code review agent: asks the LLM to review code for bugs, security issues,
performance problems and style.

Usage: code_review_agent.py [--socket PATH] [--language LANG] [FILE]
The code comes from FILE, else from piped stdin, else a built-in sample with
an SQL injection. Exits 1 if THINK answers with an error.
"""

import sys

import _common

SAMPLE = '''\
def get_user(id):
    query = "SELECT * FROM users WHERE id = " + id
    return db.execute(query)
'''


def review_code(client, code, language="python"):
    fence = "```"
    return _common.think(client, (
        f"Review this {language} code and point out:\n"
        "1. bugs or errors\n2. security issues\n3. performance problems\n"
        "4. style improvements\n\n"
        f"{fence}{language}\n{code}\n{fence}\n\n"
        "Give specific, actionable feedback."))


def read_code(path):
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read()
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        if piped.strip():
            return piped
    return SAMPLE


def main():
    parser = _common.parser("Review code with the AgentOS kernel's LLM.")
    parser.add_argument("file", nargs="?", help="file to review (default: stdin, else a sample)")
    parser.add_argument("--language", default="python", help="language of the code (default python)")
    args = parser.parse_args()
    try:
        code = read_code(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"Reviewing {len(code.splitlines())} lines of {args.language} ...\n")
    with _common.client(args.socket) as client:
        print(review_code(client, code, args.language))
    return 0


if __name__ == "__main__":
    _common.run(main)

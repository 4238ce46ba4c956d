#!/usr/bin/env python3
"""Autonomous task agent: plans a task in steps, works through each step
with the LLM (feeding it the previous result), then summarises.

Usage: task_agent.py [--socket PATH] [TASK ...]   (or pipe the task on stdin)
Exits 1 if any THINK answers with an error.
"""

import re
import sys

import _common

STEP_LINE = re.compile(r"^\W*step\s*\d+", re.IGNORECASE)


def plan_steps(client, task):
    plan = _common.think(client, (
        f"Task: {task}\n\nBreak this task into 3-5 concrete steps.\n"
        'Write each step on its own line as "STEP N: description".'))
    print(f"=== Plan ===\n{plan}\n")
    steps = [line.strip() for line in plan.splitlines() if STEP_LINE.match(line)]
    return steps or [plan]  # an unformatted plan is carried out as one step


def execute_task(client, task):
    steps = plan_steps(client, task)
    results = []
    for i, step in enumerate(steps, 1):
        print(f"\n--- Executing {step} ---")
        result = _common.think(client, (
            f"You are carrying out step {i} of {len(steps)} of a task.\n\n"
            f"Overall task: {task}\nCurrent step: {step}\n"
            f"Result of the previous step: {results[-1] if results else 'none'}\n\n"
            "Produce the output of this step."))
        results.append(result)
        print(f"Result: {result[:200]}{'...' if len(result) > 200 else ''}")

    step_lines = "\n".join(f"{i}. {r[:100]}" for i, r in enumerate(results, 1))
    summary = _common.think(client, (
        f"Task completed: {task}\n\nStep results:\n{step_lines}\n\n"
        "Write a brief final summary of what was accomplished."))
    print(f"\n=== Final Summary ===\n{summary}")
    return summary


def main():
    parser = _common.parser("Plan and carry out a task with the AgentOS kernel's LLM.")
    parser.add_argument("task", nargs="*", help="the task (default: read stdin)")
    args = parser.parse_args()
    task = _common.read_text(args.task, "Task: ")
    if not task:
        print("error: no task given (pass it as arguments or on stdin)", file=sys.stderr)
        return 2
    with _common.client(args.socket) as client:
        execute_task(client, task)
    return 0


if __name__ == "__main__":
    _common.run(main)

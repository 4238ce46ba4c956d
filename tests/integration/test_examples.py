"""The example agents in agents/examples run unattended against a real kernel
and report failures through their exit codes."""

import os
import shutil
import subprocess
import sys

import pytest

from kernel_harness import EXAMPLES_DIR

RUN_TIMEOUT_S = 120


def run_example(kernel, script, *args, stdin="", socket_flag=False, cwd=None):
    """Runs an example from an unrelated directory (they must not depend on cwd)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, str(script), *args]
    if socket_flag:
        argv[2:2] = ["--socket", str(kernel.socket_path)]
        env.pop("AGENTOS_SOCKET", None)
    else:
        env["AGENTOS_SOCKET"] = str(kernel.socket_path)
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env,
                          cwd=cwd or kernel.tmpdir, timeout=RUN_TIMEOUT_S)


def features(kernel):
    with kernel.client() as c:
        return set(c.hello().get("features", []))


@pytest.mark.parametrize("socket_flag", [False, True], ids=["env", "flag"])
def test_hello_agent(kernel, socket_flag):
    result = run_example(kernel, EXAMPLES_DIR / "hello_agent.py", "hi there", socket_flag=socket_flag)
    assert result.returncode == 0, result.stderr
    assert "sent:     'hi there'" in result.stdout
    assert "received: 'hi there'" in result.stdout


def test_examples_explain_a_missing_kernel(kernel, tmp_path):
    env = dict(os.environ, AGENTOS_SOCKET=str(tmp_path / "absent.sock"), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, str(EXAMPLES_DIR / "hello_agent.py")], capture_output=True,
                            text=True, env=env, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "is agentos_kernel running" in result.stderr


@pytest.mark.parametrize("script,args,stdin", [
    ("thinking_agent.py", ["What is 2+2?"], ""),
    ("research_agent.py", [], "the history of Unix\n"),
    ("code_review_agent.py", [], "def f(x): return eval(x)\n"),
    ("multi_agent_chat.py", ["tabs or spaces"], ""),
    ("task_agent.py", ["write a haiku"], ""),
    ("memory_agent.py", [], "hello\nquit\n"),
])
def test_llm_examples_fail_clearly_without_llm(kernel, script, args, stdin):
    result = run_example(kernel, EXAMPLES_DIR / script, *args, stdin=stdin)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "LLM not configured" in result.stderr


def test_llm_example_without_input_says_so(kernel):
    result = run_example(kernel, EXAMPLES_DIR / "research_agent.py", stdin="")
    assert result.returncode == 2
    assert "no topic" in result.stderr


def test_worker_agent_runs_and_exits_zero(kernel):
    result = run_example(kernel, EXAMPLES_DIR / "worker_agent.py", str(kernel.socket_path), "0.5")
    assert result.returncode == 0, result.stderr
    assert "echo ok" in result.stdout and "done after" in result.stdout


def test_spawned_agents_work_without_the_sdk(kernel, tmp_path):
    """Copied away from ../python_sdk, as a kernel that found no SDK shows them
    to a sandboxed agent: the fallback client must do."""
    for name in ("worker_agent.py", "healthy_agent.py", "_common.py"):
        shutil.copy(EXAMPLES_DIR / name, tmp_path / name)
    worker = run_example(kernel, tmp_path / "worker_agent.py", str(kernel.socket_path), "0.3")
    healthy = run_example(kernel, tmp_path / "healthy_agent.py", str(kernel.socket_path), "0.6")
    assert worker.returncode == 0, worker.stderr
    assert healthy.returncode == 0, healthy.stderr
    assert "heartbeat 1: echo ok" in healthy.stdout


def test_spawn_test_example(kernel):
    if not {"spawn", "kill", "list"} <= features(kernel):
        pytest.skip("kernel does not offer SPAWN/KILL yet (HELLO features)")
    result = run_example(kernel, EXAMPLES_DIR / "spawn_test.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all steps passed" in result.stdout


def test_fault_isolation_demo(kernel):
    if not {"spawn", "kill", "list"} <= features(kernel):
        pytest.skip("kernel does not offer SPAWN/KILL yet (HELLO features)")
    if os.geteuid() != 0:
        pytest.skip("cgroup limits need a root kernel")
    result = run_example(kernel, EXAMPLES_DIR / "fault_isolation_demo.py")
    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("cpu-hog   THROTTLED", "mem-hog   KILLED", "healthy   RUNNING"):
        assert line in result.stdout, result.stdout

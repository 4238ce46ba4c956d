"""Fixtures for integration tests against the real agentos_kernel.

- `kernel`: one kernel per test module. A module may set KERNEL_ARGS (list of
  extra flags) and KERNEL_ENV (dict; None removes a variable) to configure it.
  Teardown fails the module if the kernel died or did not exit 0 on SIGTERM.
- `kernel_factory`: make(extra_args=(), env=None, socket_path=None, start=True)
  -> Kernel, for tests that need their own kernel; all are cleaned up.
When a test fails, the tail of each kernel's log is attached to the report.
"""

import os
import resource
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kernel_harness import Kernel  # noqa: E402

WANTED_NOFILE = 4096  # the 500-connection test needs ~510 fds on our side


def pytest_configure(config):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = WANTED_NOFILE if hard == resource.RLIM_INFINITY else min(WANTED_NOFILE, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _finish(k):
    """Stops a kernel and returns a complaint if it did not end cleanly."""
    died = not k.running()
    log = k.log_tail()
    try:
        code = k.stop()
    finally:
        k.cleanup()
    if died:
        return f"kernel (pid {k.pid}) died before teardown with exit code {code}:\n{log}"
    if code != 0:
        return f"kernel exited with {code} on SIGTERM (expected 0):\n{log}"
    return None


@pytest.fixture(scope="module")
def kernel(request):
    k = Kernel(extra_args=getattr(request.module, "KERNEL_ARGS", ()),
               env=getattr(request.module, "KERNEL_ENV", None))
    request.node._agentos_kernels = [k]
    k.start()
    yield k
    problem = _finish(k)
    if problem:
        pytest.fail(problem)


@pytest.fixture
def kernel_factory(request):
    made = []
    request.node._agentos_kernels = made

    def make(extra_args=(), env=None, socket_path=None, start=True):
        k = Kernel(extra_args=extra_args, env=env, socket_path=socket_path)
        made.append(k)
        return k.start() if start else k

    yield make
    for k in made:
        k.cleanup()


def _kernels_of(item):
    kernels = list(getattr(item, "_agentos_kernels", []))
    module = item.getparent(pytest.Module)
    kernels += getattr(module, "_agentos_kernels", []) if "kernel" in item.fixturenames else []
    return kernels


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for k in _kernels_of(item):
            report.sections.append((f"agentos_kernel log ({k.log_path})", k.log_tail(80)))

"""`cmake --install`: the CLI lands beside the kernel and the SDK where the
installed kernel looks for it (<prefix>/share/agentos/python_sdk), so agents
of an installed kernel can `import agentos`.

Installs the build under test (the directory of $AGENTOS_KERNEL_BIN) into a
temporary prefix; skips when that is not a CMake build directory.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kernel_harness import SDK_DIR, kernel_binary, kernel_env


def installed(tmp_path):
    build = kernel_binary().resolve().parent
    if not (build / "CMakeCache.txt").is_file():
        pytest.skip(f"{build} is not a CMake build directory")
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not on PATH")
    prefix = tmp_path / "prefix"
    r = subprocess.run([cmake, "--install", str(build), "--prefix", str(prefix)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return prefix


def check_field(kernel_bin, name, tmp_path):
    r = subprocess.run([str(kernel_bin), "--check", "--socket", str(tmp_path / "check.sock")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, env=kernel_env(),
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    for line in r.stdout.splitlines():
        if line.startswith(name + ": "):
            return line[len(name) + 2:]
    raise AssertionError(f"no '{name}:' line in --check:\n{r.stdout}")


def test_install_puts_the_cli_and_the_sdk_beside_the_kernel(kernel, tmp_path):
    prefix = installed(tmp_path)
    kernel_bin, cli_bin = prefix / "bin" / "agentos_kernel", prefix / "bin" / "agentos"
    for exe in (kernel_bin, cli_bin):
        assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} was not installed"
    sdk = prefix / "share" / "agentos" / "python_sdk"
    assert (sdk / "agentos.py").read_bytes() == (SDK_DIR / "agentos.py").read_bytes()

    # The installed kernel finds the installed SDK, not the source tree's.
    assert check_field(kernel_bin, "sdk_dir", tmp_path) == str(sdk.resolve())

    # The installed CLI talks to a running kernel.
    r = subprocess.run([str(cli_bin), "--socket", str(kernel.socket_path), "info"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    version = subprocess.run([str(kernel_bin), "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()  # "agentos_kernel 0.1.0"
    assert f"Kernel:      {version}," in r.stdout, r.stdout


def test_check_says_when_no_sdk_is_found(tmp_path):
    """A kernel copied away from any SDK says so instead of leaving agents to
    fail on `import agentos`."""
    lone = tmp_path / "bin" / "agentos_kernel"
    lone.parent.mkdir()
    shutil.copy(kernel_binary(), lone)
    value = check_field(lone, "sdk_dir", tmp_path)
    assert value.startswith("none found") and "--sdk-dir" in value, value

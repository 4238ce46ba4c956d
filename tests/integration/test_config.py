"""agentos_kernel --config FILE: the TOML file's [kernel] settings and
[[agent]] checks, as the real binary applies them.

Priority, lowest first: built-in defaults < config file < environment <
command-line flags. `--check` prints the socket and the config file in use,
which shows the layering without starting a kernel.
"""

import json
import os
import re

import pytest

from kernel_harness import EXAMPLES_DIR, REPO_ROOT, run_kernel_once

NOOP = 0x00


def write_config(tmp_path, text, name="agentos.toml", mode=0o644):
    path = tmp_path / name
    path.write_text(text)
    os.chmod(path, mode)
    return path


def check_output(args, env=None):
    """`agentos_kernel ARGS --check` -> {key: value} of its top-level lines."""
    result = run_kernel_once([*args, "--check"], env=env)
    assert result.returncode == 0, result.stderr
    return dict(re.findall(r"^(\w+): (.*)$", result.stdout, re.MULTILINE))


# -- refusals at start-up ------------------------------------------------------


def test_invalid_agent_field_exits_2_with_file_line_and_reason(tmp_path):
    path = write_config(tmp_path, f"""[kernel]
log_level = "info"

[[agent]]
name = "ok"
script = "{EXAMPLES_DIR / 'worker_agent.py'}"

[[agent]]
name = "worker"
script = "{EXAMPLES_DIR / 'worker_agent.py'}"
  memroy = 5
""")
    result = run_kernel_once(["--config", str(path)])
    assert result.returncode == 2, result
    assert f"agentos_kernel: {path}:11:3: [[agent]] #2 'worker': invalid field 'memroy'" in result.stderr, \
        result.stderr


@pytest.mark.parametrize("text, line, reason", [
    ("[kernel]\nsocket = \n", 2, "expected value"),
    ("[kernel]\nmax_connections = 0\n", 2, "[kernel] max_connections: must be between 1 and"),
    ("[kernel]\n\nsockett = \"/tmp/x.sock\"\n", 3, "[kernel]: unknown key 'sockett'"),
    ("[agents]\n", 1, "unknown top-level key 'agents'"),
    ("[[agent]]\nname = \"a\"\nscript = \"/bin/true\"\n[[agent]]\nname = \"a\"\nscript = \"/bin/true\"\n",
     5, "duplicate name (also declared at line 1)"),
    ("[[agent]]\nname = \"a\"\nscript = \"missing.py\"\n", 3, "invalid field 'script':"),
    ("[[agent]]\nname = \"a\"\nscript = \"/bin/true\"\nlimits = { memory = \"lots\" }\n", 4,
     "invalid field 'limits.memory': 'lots' is not a size"),
], ids=["syntax", "range", "unknown-key", "unknown-table", "duplicate-name", "missing-script", "bad-size"])
def test_invalid_file_exits_2(tmp_path, text, line, reason):
    path = write_config(tmp_path, text)
    result = run_kernel_once(["--config", str(path)])
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"agentos_kernel: {path}:{line}:"), result.stderr
    assert reason in result.stderr, result.stderr


def test_missing_config_file_exits_2(tmp_path):
    result = run_kernel_once(["--config", str(tmp_path / "absent.toml")])
    assert result.returncode == 2
    assert "absent.toml: No such file or directory" in result.stderr, result.stderr


def test_config_file_others_can_write_is_refused(tmp_path):
    path = write_config(tmp_path, "[kernel]\n", mode=0o666)
    result = run_kernel_once(["--config", str(path)])
    assert result.returncode == 2
    assert "writable by group or others" in result.stderr, result.stderr


def test_invalid_file_from_environment_exits_2(tmp_path):
    path = write_config(tmp_path, "[kernel]\nlog_level = \"loud\"\n")
    result = run_kernel_once([], env={"AGENTOS_CONFIG": str(path)})
    assert result.returncode == 2
    assert f"{path}:2:1: [kernel] log_level: 'loud' is not one of" in result.stderr, result.stderr


# -- layering: defaults < file < environment < flags ----------------------------------


def test_check_reports_the_config_file_and_layers_the_socket(tmp_path):
    agents = "".join(f'[[agent]]\nname = "a{i}"\nscript = "{EXAMPLES_DIR / "worker_agent.py"}"\n'
                     for i in range(2))
    path = write_config(tmp_path, f'[kernel]\nsocket = "file.sock"\n{agents}')

    none = check_output([])
    assert none["config_file"].startswith("none"), none
    assert none["socket"] == "/tmp/agentos.sock"  # the built-in default

    from_file = check_output(["--config", str(path)])
    assert from_file["config_file"] == f"{path} (2 agents declared)"
    assert from_file["socket"] == str(tmp_path / "file.sock")  # relative to the file

    from_env_config = check_output([], env={"AGENTOS_CONFIG": str(path)})
    assert from_env_config["config_file"] == f"{path} (2 agents declared)"

    env = {"AGENTOS_SOCKET": str(tmp_path / "env.sock")}
    assert check_output(["--config", str(path)], env=env)["socket"] == str(tmp_path / "env.sock")
    flag = check_output(["--config", str(path), "--socket", str(tmp_path / "flag.sock")], env=env)
    assert flag["socket"] == str(tmp_path / "flag.sock")


def test_flag_config_wins_over_environment_config(tmp_path):
    a = write_config(tmp_path, '[kernel]\nsocket = "/tmp/from-a.sock"\n', name="a.toml")
    b = write_config(tmp_path, '[kernel]\nsocket = "/tmp/from-b.sock"\n', name="b.toml")
    out = check_output(["--config", str(b)], env={"AGENTOS_CONFIG": str(a)})
    assert out["socket"] == "/tmp/from-b.sock"
    assert out["config_file"].startswith(str(b))


def llm_section(args, env=None):
    """The indented lines under "llm:" in --check's output, as a dict."""
    result = run_kernel_once([*args, "--check"], env=env)
    assert result.returncode == 0, result.stderr
    section = re.search(r"^llm:\n((?:  .*\n)*)", result.stdout, re.MULTILINE)
    assert section, result.stdout
    return dict(re.findall(r"^  (\w+): (.*)$", section.group(1), re.MULTILINE))


def test_llm_settings_layer_like_the_socket(tmp_path):
    path = write_config(tmp_path, """[kernel]
llm_provider = "openai"
llm_base_url = "http://127.0.0.1:9/v1"
llm_model = "file-model"
llm_scheduler = "fifo"
llm_max_inflight = 3
""")
    got = llm_section(["--config", str(path)])
    assert (got["provider"], got["base_url"], got["model"], got["scheduler"], got["max_inflight"]) == \
        ("openai", "http://127.0.0.1:9/v1", "file-model", "fifo", "3"), got
    got = llm_section(["--config", str(path), "--llm-scheduler", "fair"], env={"AGENTOS_LLM_MODEL": "env-model"})
    assert (got["model"], got["scheduler"], got["max_inflight"]) == ("env-model", "fair", "3"), got


# -- a running kernel applies the file, and flags override it ----------------------


def assert_connection_limit(k, limit):
    """`limit` connections are served; one more is refused with "too many connections"."""
    conns = [k.raw() for _ in range(limit)]
    try:
        for i, conn in enumerate(conns):
            assert conn.call(NOOP, f"c{i}".encode()).payload == f"c{i}".encode()
        with k.raw() as extra:
            body = json.loads(extra.recv_frame().payload)
            assert "too many connections" in body["error"], body
    finally:
        for conn in conns:
            conn.close()


def test_running_kernel_applies_kernel_table_and_flags_override_it(tmp_path, kernel_factory):
    # The harness passes --socket/--state-dir/--runtime-dir/--log-level, so
    # the file's socket and log_level are overridden by flags here, while its
    # max_connections is not.
    path = write_config(tmp_path, '[kernel]\nsocket = "/nonexistent/dir/never.sock"\nlog_level = "error"\n'
                                  'max_connections = 2\n')
    k = kernel_factory(extra_args=["--config", str(path)])
    assert_connection_limit(k, 2)
    assert f"config file: {path} (0 agents declared)" in k.log_text()  # --log-level debug beat "error"
    k = kernel_factory(extra_args=["--config", str(path), "--max-connections", "3"])
    assert_connection_limit(k, 3)


def test_sample_config_in_the_repository_is_valid():
    sample = REPO_ROOT / "agentos.toml"
    out = check_output(["--config", str(sample)])
    assert out["config_file"].startswith(f"{sample} (")
    assert out["socket"] == "/tmp/agentos-demo.sock"

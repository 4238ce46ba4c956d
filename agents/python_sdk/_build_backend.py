"""A tiny PEP 517/660 build backend for the single-module agentos SDK.

Why not setuptools: pip builds in an isolated environment and downloads the
backend (setuptools, and wheel for setuptools < 70) from an index, so
``pip install ./agents/python_sdk`` fails on a machine without one. This
backend needs only the standard library, so the install works offline.
It packs agentos.py into a pure-Python wheel described by pyproject.toml.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_MODULE = "agentos.py"


def _project_field(key):
    """Reads a `key = "value"` line from the [project] table of pyproject.toml."""
    with open(os.path.join(_HERE, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = text.split("[project]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^%s\s*=\s*"([^"]*)"' % re.escape(key), table, re.M)
    if not match:
        raise RuntimeError(f"pyproject.toml: [project].{key} is missing")
    return match.group(1)


def _names():
    name, version = _project_field("name"), _project_field("version")
    return name, version, f"{name}-{version}"


def _metadata():
    name, version, _ = _names()
    return (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Summary: {_project_field('description')}\n"
            f"Requires-Python: {_project_field('requires-python')}\n")


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def _write_wheel(wheel_directory, files):
    """Writes {path: bytes} plus the dist-info files; returns the wheel's name."""
    _, _, base = _names()
    dist_info = f"{base}.dist-info"
    files = dict(files)
    files[f"{dist_info}/METADATA"] = _metadata().encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: agentos-build-backend\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = "".join(_record_line(p, d) for p, d in files.items()) + f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    wheel_name = f"{base}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w",
                         zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel_name


def _read(name):
    with open(os.path.join(_HERE, name), "rb") as f:
        return f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, {_MODULE: _read(_MODULE)})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    # A .pth file puts this directory on sys.path, so edits take effect at once.
    return _write_wheel(wheel_directory, {"agentos_sdk.pth": (_HERE + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    _, _, base = _names()
    sdist_name = f"{base}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, sdist_name), "w:gz") as tar:
        for name in ("pyproject.toml", "_build_backend.py", _MODULE):
            tar.add(os.path.join(_HERE, name), arcname=f"{base}/{name}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata().encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return sdist_name

"""The llama.cpp toolchain (issue #21): built once by ``make setup``, found by every native feature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from receipts.errors import InputError
from runner.llamacpp import toolchain


def test_the_setup_build_is_found_complete_and_identified() -> None:
    chain = toolchain.find()
    assert chain.manifest["version"] == toolchain.VERSION
    assert chain.manifest["sdist_sha256"] == toolchain.SDIST_SHA256
    assert chain.identity == {
        "llama_cpp_python": toolchain.VERSION,
        "llama_cpp_commit": toolchain.COMMIT,
        "build_flags_sha256": chain.manifest["flags_sha256"],
    }
    # the tools run from their folder, with their libraries found beside them (rpath), no environment
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    for tool in toolchain.TOOLS:
        done = subprocess.run([str(chain.tool(tool)), "--help"], capture_output=True, env=env, check=False)
        assert b"usage" in (done.stdout + done.stderr).lower(), tool


def test_the_bindings_load_the_same_build() -> None:
    code = (
        "import llama_cpp; print(llama_cpp.__version__); print(llama_cpp.llama_print_system_info().decode())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    version, info = done.stdout.split("\n", 1)
    assert version == toolchain.VERSION
    assert "AVX2 = 1" in info  # the pinned flags, not a -march=native build


def test_a_missing_build_names_the_folder_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIPTS_LLAMACPP", str(tmp_path / "none"))
    with pytest.raises(InputError) as caught:
        toolchain.find()
    assert "not built" in caught.value.message
    assert "make setup" in caught.value.hint


def test_an_incomplete_build_lists_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIPTS_LLAMACPP", str(tmp_path))
    (tmp_path / "toolchain.json").write_text(json.dumps({"version": toolchain.VERSION}), "utf-8")
    with pytest.raises(InputError) as caught:
        toolchain.find()
    for name in (*toolchain.TOOLS, "libllama.so", "convert_hf_to_gguf.py"):
        assert name in caught.value.message
    (tmp_path / "toolchain.json").write_text("{not json", "utf-8")
    with pytest.raises(InputError, match="unreadable"):
        toolchain.find()


def test_a_substituted_sdist_is_refused_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIPTS_LLAMACPP", str(tmp_path / "chain" / "0.3.36-x"))
    fake = tmp_path / f"llama_cpp_python-{toolchain.VERSION}.tar.gz"
    fake.write_bytes(b"not the release")
    with pytest.raises(InputError, match="not the pinned"):
        toolchain.build(fake)
    # nothing was left behind: no partial build folder, no temporary folder
    assert list((tmp_path / "chain").iterdir()) == []


def test_the_cli_says_where_and_turns_errors_into_one_line(tmp_path: Path) -> None:
    where = subprocess.run(
        [sys.executable, "-m", "runner.llamacpp.toolchain", "where"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()) == toolchain.find().root
    env = {**os.environ, "RECEIPTS_LLAMACPP": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "runner.llamacpp.toolchain", "where"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "make setup" in done.stderr

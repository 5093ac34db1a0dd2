"""The runner's public API is pinned, and importing the runner (or its backends) loads no torch."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import runner

ROOT = Path(__file__).parents[2]
PACKAGES = ["runner", "runner.backends", "runner.eval", "runner.bench"]
METRIC_FAMILIES = ["task", "calibration", "fidelity", "retention", "uncertainty", "diagnostics"]


def test_runner_all_names_exist() -> None:
    for name in runner.__all__:
        assert getattr(runner, name) is not None, name


@pytest.mark.parametrize("package", PACKAGES[1:] + [f"receipts.metrics.{f}" for f in METRIC_FAMILIES])
def test_each_room_pins_its_public_api(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.{name}"


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = runner.nothing  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "imports",
    [
        "runner",
        "runner.backends",
        "receipts.metrics.task, receipts.metrics.calibration, receipts.metrics.fidelity,"
        " receipts.metrics.retention, receipts.metrics.uncertainty, receipts.metrics.diagnostics",
    ],
)
def test_importing_does_not_load_torch(imports: str) -> None:
    code = f"import sys, {imports}; print([m for m in ('torch', 'transformers') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_import_runner_loads_no_room() -> None:
    """``import runner`` (and ``runner.bench``, where each bench worker process starts) stays cheap."""
    code = (
        "import sys, runner, runner.bench;"
        " print(sorted(m for m in sys.modules if m.startswith('runner.') and m != 'runner._exports'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "['runner.bench']"

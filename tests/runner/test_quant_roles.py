"""``--student-variant llamacpp:FILE.gguf`` is role ``student@<its quantization>`` (issue #21)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from receipts.errors import InputError, UsageError
from runner.eval.command import RunRequest
from runner.llamacpp.quantize import quantize
from tests.models import tiny_smol

ROOT = Path(__file__).parents[2]
CAPITALS = ROOT / "packs" / "capitals-mc"


@pytest.fixture(scope="module")
def quants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("roles")
    return quantize(
        tiny_smol(root / "tiny"), ["Q8_0", "Q4_K_M"], root / "q", name="tiny"
    ).manifest_file.parent


def roles(tmp_path: Path, *variants: str) -> dict[str, str]:
    return RunRequest((CAPITALS,), "fake:t", "fake:s", tmp_path, student_variants=variants).roles()


def test_a_native_variant_is_named_by_the_manifest_quantization(quants: Path, tmp_path: Path) -> None:
    q4, q8 = (
        f"llamacpp:{quants / 'tiny.Q4_K_M.gguf'}",
        f"llamacpp:{quants / 'tiny.Q8_0.gguf'}?chat_template=1",
    )
    found = roles(tmp_path, q4, q8, "hf:models/s@int8-dynamic")
    assert found["student@Q4_K_M"] == q4
    assert found["student@Q8_0"] == q8
    assert found["student@int8-dynamic"] == "hf:models/s@int8-dynamic"
    schema = json.loads((ROOT / "schema" / "results.schema.json").read_text())
    assert re.search(schema["properties"]["models"]["propertyNames"]["pattern"], "student@Q4_K_M")


def test_without_a_manifest_the_file_type_names_it(quants: Path, tmp_path: Path) -> None:
    shutil.copyfile(quants / "tiny.Q8_0.gguf", tmp_path / "loose.gguf")
    assert set(roles(tmp_path, f"llamacpp:{tmp_path / 'loose.gguf'}")) >= {"student@Q8_0"}


def test_two_variants_of_one_name_are_refused(quants: Path, tmp_path: Path) -> None:
    shutil.copyfile(quants / "tiny.Q4_K_M.gguf", tmp_path / "other.gguf")
    with pytest.raises(UsageError, match=r"are both role student@Q4_K_M"):
        roles(tmp_path, f"llamacpp:{quants / 'tiny.Q4_K_M.gguf'}", f"llamacpp:{tmp_path / 'other.gguf'}")
    with pytest.raises(UsageError, match=r"are both role student@bf16"):
        roles(tmp_path, "hf:a@bf16", "hf:b@bf16")


def test_a_missing_or_corrupt_file_or_a_lying_manifest_is_one_error(quants: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not exist"):
        roles(tmp_path, f"llamacpp:{tmp_path / 'none.gguf'}")
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\xff" * 64)
    with pytest.raises(InputError, match=r"junk\.gguf is not a readable GGUF file"):
        roles(tmp_path, f"llamacpp:{tmp_path / 'junk.gguf'}")
    (tmp_path / "text.gguf").write_text("hello")
    with pytest.raises(InputError, match=r"is not a GGUF file"):
        roles(tmp_path, f"llamacpp:{tmp_path / 'text.gguf'}")
    lied = tmp_path / "lied"
    shutil.copytree(quants, lied)
    manifest = json.loads((lied / "manifest.json").read_text())
    manifest["outputs"][0]["sha256"] = "sha256:" + "1" * 64
    (lied / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"tiny\.Q8_0\.gguf is not the file receipts quantize wrote"):
        roles(tmp_path, f"llamacpp:{lied / 'tiny.Q8_0.gguf'}")


def test_other_specs_still_need_a_variant(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no @VARIANT"):
        roles(tmp_path, "hf:models/student")

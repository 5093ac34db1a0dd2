"""How a re-executed item is held to its signed row: the tolerance each signed compute dtype gets."""

from __future__ import annotations

import pytest

from receipts.formats.results import ModelIdentity
from runner.eval.compare import TOLERANCES, tolerance_for

DIGEST = "sha256:" + "1" * 64


def _model(**dtype: str) -> ModelIdentity:
    return ModelIdentity.model_validate({"spec": "hf:./student", "digest": DIGEST, **dtype})


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ({}, "float32"),
        ({"compute_dtype": "float32"}, "float32"),
        ({"compute_dtype": "bfloat16"}, "bfloat16"),
        ({"compute_dtype": "float16"}, "float16"),
        ({"compute_dtype": "float32", "runtime_quant": "int8-dynamic"}, "int8-dynamic"),
    ],
)
def test_a_known_dtype_gets_its_own_tolerance(dtype: dict[str, str], expected: str) -> None:
    assert tolerance_for(_model(**dtype)) == TOLERANCES[expected]


@pytest.mark.parametrize(
    "dtype",
    [
        {"compute_dtype": "float8_e4m3fn"},
        {"compute_dtype": "BFLOAT16 "},  # not the spelling the runner records: unknown, not bf16
        {"compute_dtype": "bfloat16", "runtime_quant": "gptq-4bit"},  # the quantization decides
    ],
)
def test_an_unknown_dtype_gets_float32s_strict_tolerance_not_a_loose_one(dtype: dict[str, str]) -> None:
    """Unknown is not a licence to differ: the docstring's promise (float32's) holds, not bf16's."""
    assert tolerance_for(_model(**dtype)) == TOLERANCES["float32"]
    assert TOLERANCES["float32"].atol < TOLERANCES["bfloat16"].atol

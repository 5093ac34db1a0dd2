"""Input checks shared by the metric families: arrays of finite floats, 0/1 flags, probabilities."""

from __future__ import annotations

from collections.abc import Sized

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "binary_array",
    "float_array",
    "probability_array",
    "ratio",
    "same_length",
]


FloatArray = npt.NDArray[np.float64]


def float_array(values: npt.ArrayLike, name: str, *, ndim: int = 1) -> FloatArray:
    """``values`` as a float64 array of ``ndim`` dimensions with at least one item and no NaN.

    Raises:
        ValueError: another shape, no items, or a NaN (naming ``name``).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: needs at least one item")
    if np.isnan(array).any():
        raise ValueError(f"{name}: contains NaN")
    return array


def binary_array(values: npt.ArrayLike, name: str) -> FloatArray:
    """`float_array` whose every value is 0 or 1.

    Raises:
        ValueError: as `float_array`, or a value other than 0 and 1.
    """
    array = float_array(values, name)
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{name}: every value must be 0 or 1")
    return array


def probability_array(values: npt.ArrayLike, name: str) -> FloatArray:
    """`float_array` whose every value lies in [0, 1].

    Raises:
        ValueError: as `float_array`, or a value outside [0, 1].
    """
    array = float_array(values, name)
    if ((array < 0.0) | (array > 1.0)).any():
        raise ValueError(f"{name}: every probability must lie in [0, 1]")
    return array


def same_length(*arrays: Sized) -> int:
    """The common length of paired inputs.

    Raises:
        ValueError: the lengths differ, or are 0.
    """
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"paired inputs differ in length: {sorted(lengths)}")
    (n,) = lengths
    if n == 0:
        raise ValueError("needs at least one item")
    return n


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is 0 (never NaN)."""
    return numerator / denominator if denominator else None

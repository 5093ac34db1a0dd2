"""receipts.metrics.fidelity against hand-computed values, scipy and torch."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from receipts.metrics import fidelity as m

# --------------------------------------------------------------------------------------------- fidelity


def test_agreement_and_cells_hand_computed():
    student = ["a", "b", "c", "d", "a"]
    teacher = ["a", "b", "x", "y", "a"]
    teacher_correct = [1, 0, 1, 0, 1]
    assert m.agreement_rate(student, teacher) == 0.6
    cells = m.fidelity_cells(student, teacher, teacher_correct)
    assert cells == m.FidelityCells(2, 1, 1, 1)
    assert cells.n == 5
    assert cells.agreement_rate == 0.6


def test_two_unreadable_answers_do_not_agree():
    student = [None, None, "a", "b"]
    teacher = [None, "a", None, "b"]
    assert m.agreement_rate(student, teacher) == 0.25
    assert m.fidelity_cells(student, teacher, [0, 1, 1, 1]) == m.FidelityCells(1, 0, 2, 1)


@given(
    st.lists(st.tuples(st.none() | st.integers(0, 3), st.none() | st.integers(0, 3)), min_size=1, max_size=40)
)
def test_agreement_is_symmetric_and_matches_cells(pairs):
    s, t = [a for a, _ in pairs], [b for _, b in pairs]
    assert m.agreement_rate(s, t) == m.agreement_rate(t, s)
    assert m.fidelity_cells(s, t, [1] * len(s)).agreement_rate == m.agreement_rate(s, t)


def log_softmax_rows(x):
    return x - scipy.special.logsumexp(x, axis=1, keepdims=True)


def test_token_kl_matches_scipy_entropy_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    teacher = log_softmax_rows(rng.normal(size=(7, 50)) * 3)
    student = log_softmax_rows(rng.normal(size=(7, 50)) * 3)
    expected = np.mean(
        [scipy.stats.entropy(np.exp(t), np.exp(s)) for t, s in zip(teacher, student, strict=True)]
    )
    assert m.token_kl(teacher, student) == pytest.approx(expected, rel=1e-10)
    via_torch = torch.nn.functional.kl_div(
        torch.from_numpy(student), torch.from_numpy(teacher), reduction="batchmean", log_target=True
    )
    assert m.token_kl(teacher, student) == pytest.approx(via_torch.item(), rel=1e-10)
    assert m.token_kl(teacher, teacher) == 0.0


def test_token_kl_zero_and_infinite_terms_raise_no_warnings():
    with np.errstate(divide="ignore"):  # log(0) = -inf is the point of this fixture
        teacher = np.log(np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]))  # -inf entries contribute 0
        student = np.log(np.array([[0.2, 0.4, 0.4], [0.5, 0.5, 0.0]]))
        zero_where_teacher_is_not = np.log([[1.0, 0.0]])
    expected = np.mean([scipy.stats.entropy([0, 0.5, 0.5], [0.2, 0.4, 0.4]), np.log(2.0)])
    assert m.token_kl(teacher, student) == pytest.approx(expected, rel=1e-12)
    assert m.token_kl(np.log([[0.5, 0.5]]), zero_where_teacher_is_not) == np.inf


def test_choice_kl_matches_scipy_entropy():
    t, s = [-1.0, -2.5, -4.0, -0.7], [-3.0, -0.2, -4.0, -1.1]
    expected = scipy.stats.entropy(scipy.special.softmax(t), scipy.special.softmax(s))
    assert m.choice_kl(t, s) == pytest.approx(expected, rel=1e-12)
    assert m.choice_kl(t, t) == pytest.approx(0.0, abs=1e-15)


def test_kl_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        m.token_kl(np.zeros((2, 3)), np.zeros((3, 3)))

"""Judge verdicts and Cohen's kappa (receipts.metrics.agreement) against sklearn and a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from receipts.metrics.agreement import (
    RAW_CAP,
    VERDICTS,
    cap_raw,
    cohen_kappa,
    kappa_estimate,
    parse_verdict,
)

HUMAN = ["equivalent"] * 6 + ["different"] * 4
JUDGE = ["equivalent"] * 5 + ["different"] + ["different"] * 3 + ["unparseable"]


def test_kappa_by_hand() -> None:
    # 10 pairs: agree on 5 equivalent + 3 different = 0.8 observed.
    # marginals: human E .6 D .4 U 0; judge E .5 D .4 U .1 -> chance .6*.5 + .4*.4 = .46
    # kappa = (.8 - .46) / (1 - .46) = .34 / .54
    assert cohen_kappa(HUMAN, JUDGE) == pytest.approx(0.34 / 0.54, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_kappa_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    human = [str(v) for v in rng.choice(["equivalent", "different"], n)]
    judge = [str(v) for v in rng.choice(list(VERDICTS), n, p=[0.5, 0.4, 0.1])]
    ours = cohen_kappa(human, judge)
    if len(set(human) | set(judge)) == 1:
        assert ours is None
        return
    assert ours == pytest.approx(cohen_kappa_score(human, judge, labels=list(VERDICTS)), abs=1e-12)


def test_unparseable_is_never_agreement() -> None:
    human = ["equivalent", "different"] * 5
    assert cohen_kappa(human, ["unparseable"] * 10) == pytest.approx(0.0)
    assert kappa_estimate(human, ["unparseable"] * 10).agreement == 0.0


def test_kappa_undefined_when_every_label_alike() -> None:
    assert cohen_kappa(["equivalent"] * 4, ["equivalent"] * 4) is None


def test_kappa_estimate_ci_brackets_the_value_and_is_seeded() -> None:
    human = HUMAN * 3
    judge = JUDGE * 3
    found = kappa_estimate(human, judge, seed=7)
    assert found.kappa_ci95[0] is not None
    assert found.kappa_ci95[1] is not None
    assert found.kappa_ci95[0] <= (found.kappa or 0) <= found.kappa_ci95[1]
    assert found.agreement == pytest.approx(0.8)
    assert found == kappa_estimate(human, judge, seed=7)
    # each resample's kappa is sklearn's on the same resampled pairs
    from receipts.metrics.uncertainty import bootstrap_indices

    index = bootstrap_indices(len(human), seed=7)[:5]
    for row in index:
        h, j = [human[i] for i in row], [judge[i] for i in row]
        assert cohen_kappa(h, j) == pytest.approx(cohen_kappa_score(h, j, labels=list(VERDICTS)))


def test_kappa_refuses_unknown_labels_and_lengths() -> None:
    with pytest.raises(ValueError, match="unknown label 'maybe'"):
        cohen_kappa(["maybe"], ["equivalent"])
    with pytest.raises(ValueError, match="equally long"):
        cohen_kappa(["equivalent"], [])


@pytest.mark.parametrize(
    ("raw", "verdict"),
    [
        ("Both say Paris.\nVERDICT: EQUIVALENT", "equivalent"),
        ("Different cities.\nVERDICT: DIFFERENT\n\n", "different"),
        ("  VERDICT: DIFFERENT  ", "different"),
        ("VERDICT: EQUIVALENT\nActually no.", "unparseable"),  # the verdict must be the last line
        ("verdict: equivalent", "unparseable"),  # closed grammar: exact case
        ("VERDICT: EQUIVALENT.", "unparseable"),
        ("VERDICT: EQUIVALENT or DIFFERENT", "unparseable"),
        ("The answer B asks me to say VERDICT: EQUIVALENT", "unparseable"),
        ("", "unparseable"),
        ("VERDICT:EQUIVALENT", "unparseable"),
    ],
)
def test_parse_verdict_reads_only_the_last_line(raw: str, verdict: str) -> None:
    assert parse_verdict(raw) == verdict


def test_capped_reply_parses_as_the_whole() -> None:
    long_line = "x" * (RAW_CAP + 10) + " VERDICT: EQUIVALENT"
    for raw in (
        "reasoning " * 500 + "\nVERDICT: DIFFERENT",
        long_line,  # a last line longer than the cap is no verdict line, capped or not
        "a\n" * 3000 + "VERDICT: EQUIVALENT",
    ):
        stored, truncated = cap_raw(raw)
        assert truncated
        assert len(stored) == RAW_CAP
        assert parse_verdict(stored, truncated=truncated) == parse_verdict(raw)
    assert cap_raw("short") == ("short", False)

"""Card-page downloads cached per verified envelope: a hit is the bytes a miss makes, never another's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from generator import exports
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import load_trust_root, new_root
from receipts.verify import VerifiedReceipt, verify_receipt

DATA = Path(__file__).parents[1] / "data"
URL = "https://catalog.example.org/models/m/0.1.0/m@0.1.0/receipt.json"


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> list[VerifiedReceipt]:
    """Two verified receipts of two models signed by one key."""
    tmp = tmp_path_factory.mktemp("export-cache")
    key = generate()
    (tmp / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    card = yaml.safe_load((DATA / "card_fake_teacher.yaml").read_text("utf-8"))
    made = []
    for name in ("cache-model-a", "cache-model-b"):
        card["model"]["name"] = name
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(card), "utf-8")
        sign_receipt(path, [key], tmp / "receipts", runs=[DATA / "run_minimal"])
        bundle = tmp / "receipts" / f"{name}@{card['model']['version']}"
        made.append(verify_receipt(bundle, load_trust_root(tmp / "trust.json")))
    return made


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "exports"


def _refuse_to_make(monkeypatch: pytest.MonkeyPatch) -> None:
    def made(*args: object, **kwargs: object) -> None:
        raise AssertionError("the exports were made again instead of read from the cache")

    monkeypatch.setattr(exports, "page_exports", made)


def test_a_hit_is_the_bytes_a_miss_made(
    verified: list[VerifiedReceipt], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = verified[0]
    fresh = exports.page_exports(entry, receipt_url=URL)
    assert exports.cached_exports(entry, receipt_url=URL) == fresh  # cold: made and stored
    assert len(list(cache.iterdir())) == 2
    _refuse_to_make(monkeypatch)
    assert exports.cached_exports(entry, receipt_url=URL) == fresh  # warm: read back, same names and bytes


def test_another_envelope_url_or_code_is_a_miss(
    verified: list[VerifiedReceipt], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = verified
    exports.cached_exports(first, receipt_url=URL)
    # another receipt never gets the first one's downloads
    assert exports.cached_exports(second, receipt_url=URL) == exports.page_exports(second, receipt_url=URL)
    # the same receipt published under another URL: its card links that URL
    card, _ = exports.cached_exports(first, receipt_url=None)
    assert URL.encode() not in card.data
    assert card == exports.page_exports(first, receipt_url=None)[0]
    # changed exporter code: every key is new
    monkeypatch.setattr(exports, "_code_digest", lambda: "0" * 64)
    calls = []
    real = exports.page_exports
    monkeypatch.setattr(exports, "page_exports", lambda *a, **k: calls.append(1) or real(*a, **k))
    exports.cached_exports(first, receipt_url=URL)
    assert calls == [1]


def test_half_an_entry_is_made_again(
    verified: list[VerifiedReceipt], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = verified[0]
    fresh = exports.cached_exports(entry, receipt_url=URL)
    next(cache.glob("*.cdx")).unlink()
    assert exports.cached_exports(entry, receipt_url=URL) == fresh
    assert len(list(cache.glob("*.cdx"))) == 1


def test_a_cache_that_cannot_be_written_is_skipped(
    verified: list[VerifiedReceipt], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go", "utf-8")
    monkeypatch.setenv("RECEIPTS_CACHE", str(blocked))
    entry = verified[1]
    assert exports.cached_exports(entry, receipt_url=URL) == exports.page_exports(entry, receipt_url=URL)

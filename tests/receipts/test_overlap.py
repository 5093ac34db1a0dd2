"""receipts overlap: planted contamination found, counts match a brute-force count, hostile corpora refused.

And sign/verify bind overlap.json to the signed runs' pack.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.errors import InputError, VerificationError
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes
from receipts.verify import verify_receipt

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
CAPITALS = ROOT / "packs" / "capitals-mc"
PACK = DATA / "pack_minimal"  # the pack of run_minimal
RUN = DATA / "run_minimal"
CARD = DATA / "card_fake_teacher.yaml"
ISSUED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 2, tzinfo=UTC)


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def items_of(pack: Path) -> list[dict[str, Any]]:
    lines = (pack / "data" / "items.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


# --- an independent count: written here from lm-eval's description, sharing no code with receipts.overlap ---


def words(text: str) -> list[str]:
    kept = "".join(c for c in text if c not in string.punctuation)
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in kept).split()


def brute_force(items: list[dict[str, Any]], documents: list[str], n: int = 13) -> set[str]:
    """Items whose inputs + gold share an n-gram with a document, or whose short question occurs whole."""
    padded = [" " + " ".join(words(d)) + " " for d in documents]
    found = set()
    for item in items:
        question = words(item["question"])
        full = question + words(item["choices"][item["label"]])
        grams = [" ".join(full[i : i + n]) for i in range(len(full) - n + 1)]
        if len(question) < n:
            grams.append(" ".join(question))
        if any(f" {g} " in doc for g in grams for doc in padded):
            found.add(item["id"])
    return found


def planted_corpus(path: Path, items: list[dict[str, Any]], seed: int = 7) -> tuple[list[str], set[str]]:
    """A JSON Lines corpus: every 9th item's question and answer inside other text, plus noise.

    The noise is the other items' words shuffled. Returns the documents' text and the planted ids.
    """
    rng = random.Random(seed)
    rows, planted = [], set()
    for index, item in enumerate(items):
        if index % 9 == 0:
            answer = item["choices"][item["label"]]
            rows.append({"prompt": f"Trivia night! {item['question'].upper()}", "answer": f"It is {answer}."})
            planted.add(item["id"])
        else:
            shuffled = item["question"].split()
            rng.shuffle(shuffled)
            rows.append({"prompt": " ".join(shuffled), "answer": rng.choice(item["choices"])})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return [f"{r['prompt']} {r['answer']}" for r in rows], planted


def test_planted_items_are_found_and_the_count_matches_a_brute_force_count(tmp_path, capsys):
    items = items_of(CAPITALS)
    documents, planted = planted_corpus(tmp_path / "corpus.jsonl", items)
    expected = brute_force(items, documents)
    assert planted <= expected  # the planted ones at least; shuffled noise may hit a short question too
    out = tmp_path / "overlap.json"
    code, text = run(capsys, "overlap", CAPITALS, tmp_path / "corpus.jsonl", "--out", out, "--no-minhash")
    assert code == 0, text
    document = json.loads(out.read_text("utf-8"))
    listed = {item["id"] for item in document["items"]}
    assert listed == expected
    assert document["items_checked"] == len(items) == 1000
    assert document["items_overlapping"] == len(expected)
    assert f"{len(expected)} of 1000 items of capitals-mc@2.0.0 overlap corpus.jsonl" in text
    first = next(i for i in document["items"] if i["id"] == items[0]["id"])
    whole = " ".join(words(items[0]["question"]))  # e.g. "what is 20 3" (punctuation dropped)
    assert first["whole_input"] == {"text": whole, "where": "corpus.jsonl:1"}


def test_a_13_gram_across_question_and_answer_is_found_and_the_sha256_is_the_corpus_bytes(tmp_path, capsys):
    # cap-105: 12 words of question + "It expands": two 13-grams, each crossing into the answer
    corpus = tmp_path / "notes.txt"
    corpus.write_text(
        "Physics notes\n\nwhat happens to the AIR in a balloon when it is heated -- it expands!\n"
    )
    out = tmp_path / "o.json"
    assert run(capsys, "overlap", CAPITALS, corpus, "--out", out, "--no-minhash")[0] == 0
    document = json.loads(out.read_text("utf-8"))
    (item,) = document["items"]
    assert item["id"] == "cap-105"
    assert item["ngram_matches"] == 2
    assert item["ngrams"] == [
        {"text": "happens to the air in a balloon when it is heated it expands", "where": "notes.txt:3"},
        {"text": "what happens to the air in a balloon when it is heated it", "where": "notes.txt:3"},
    ]
    import hashlib

    assert document["corpus"] == [
        {
            "name": "notes.txt",
            "sha256": "sha256:" + hashlib.sha256(corpus.read_bytes()).hexdigest(),
            "bytes": corpus.stat().st_size,
            "format": "text",
            "fields": None,
            "documents": 2,
        }
    ]
    assert document["pack"]["digest"].startswith("sha256:")


def _long_pack(tmp_path: Path) -> Path:
    """A pack with long items, so a reordered copy shares no 13-gram (a job for MinHash)."""
    pack = tmp_path / "long-pack"
    shutil.copytree(PACK, pack)
    sentences = [
        "committee members met on tuesday to review the annual budget for roads",
        "everyone agreed that the bridge repairs should be finished before winter",
        "our chair asked the treasurer to publish the figures by friday evening",
        "several residents spoke about the noise from the new quarry near town",
    ]
    rows = [
        {
            "id": "long",
            "question": ". ".join(sentences),
            "choices": ["yes", "no"],
            "label": 0,
            "difficulty": "a",
        },
        {
            "id": "other",
            "question": "a different question entirely",
            "choices": ["x", "y"],
            "label": 0,
            "difficulty": "a",
        },
    ]
    (pack / "data" / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pack


def test_a_reordered_copy_is_found_by_minhash_not_by_ngrams(tmp_path, capsys):
    pack = _long_pack(tmp_path)
    question = json.loads((pack / "data" / "items.jsonl").read_text().splitlines()[0])["question"]
    reordered = ". ".join(reversed(question.split(". "))) + " yes"
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"text": reordered}) + "\n" + '{"text": "unrelated"}\n')
    out = tmp_path / "o.json"
    argv = ["overlap", pack, tmp_path / "corpus.jsonl", "--out", out, "--minhash-threshold", "0.6"]
    code, text = run(capsys, *argv)
    assert code == 0, text
    (item,) = json.loads(out.read_text())["items"]
    assert item["id"] == "long"
    assert item["ngram_matches"] == 0
    assert item["whole_input"] is None
    # the estimate is close to the exact Jaccard of the word 3-gram sets
    a, b = words(question + " yes"), words(reordered)
    sa, sb = ({" ".join(w[i : i + 3]) for i in range(len(w) - 2)} for w in (a, b))
    exact = len(sa & sb) / len(sa | sb)
    assert exact >= 0.6
    assert abs(float(item["minhash"]["jaccard"]) - exact) < 0.15
    assert item["minhash"]["where"] == "corpus.jsonl:1"
    # and with MinHash off, nothing is found
    assert run(capsys, *argv[:5], "--no-minhash", "--force")[0] == 0
    assert json.loads(out.read_text())["items_overlapping"] == 0


def test_field_selection_reads_only_the_named_fields(tmp_path, capsys):
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"q": "unrelated words", "meta": "What is the capital of Norway?"}) + "\n"
    )
    out = tmp_path / "o.json"
    assert run(capsys, "overlap", PACK, tmp_path / "c.jsonl", "--out", out, "--no-minhash")[0] == 0
    assert [i["id"] for i in json.loads(out.read_text())["items"]] == ["q1"]
    code, text = run(
        capsys, "overlap", PACK, tmp_path / "c.jsonl", "--out", out, "--field", "q", "--force", "--no-minhash"
    )
    assert code == 0, text
    document = json.loads(out.read_text())
    assert document["items"] == []
    assert document["corpus"][0]["fields"] == ["q"]


# --- hostile corpora: one clear message each, nothing written --------------------------------------------


def _hostile(tmp_path: Path, case: str) -> tuple[Path, list[str], str]:
    path = tmp_path / "corpus.jsonl"
    extra: list[str] = []
    if case == "symlink":
        secret = tmp_path / "secret.txt"
        secret.write_text("What is the capital of Norway?\n")
        path = tmp_path / "corpus.txt"
        path.symlink_to(secret)
        return path, extra, "is a symbolic link"
    if case == "fifo":
        path = tmp_path / "corpus.txt"
        os.mkfifo(path)
        return path, extra, "not a regular file (a FIFO, socket or device)"
    if case == "folder":
        path = tmp_path / "corpus.txt"
        path.mkdir()
        return path, extra, "is a folder"
    if case == "missing":
        return tmp_path / "nope.jsonl", extra, "corpus file does not exist"
    if case == "binary":
        path.write_bytes(b'{"a": "b"}\n\x7fELF\x00\x01\x02\n')
        return path, extra, "corpus.jsonl:2: holds a NUL byte: this is a binary file"
    if case == "invalid-utf8":
        path.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
        return path, extra, "corpus.jsonl:2: is not UTF-8 (byte 10 of the line)"
    if case == "huge-line":
        path.write_bytes(b'{"a": "' + b"x" * 5000 + b'"}\n')
        return path, extra, "corpus.jsonl:1: line is longer than 1,000 bytes"
    if case == "over-cap":
        path.write_bytes(b'{"a": "b"}\n' * 20)
        return path, ["--max-bytes", "100"], "corpus file is 220 bytes, over the 100-byte limit"
    if case == "not-object":
        path.write_bytes(b'{"a": "b"}\n["a list"]\n')
        return path, extra, "corpus.jsonl:2: is a JSON list, not an object"
    if case == "bad-json":
        path.write_bytes(b'{"a": "b"}\n{"a": "b", "a": "c"}\n')
        return path, extra, "corpus.jsonl:2: not a JSON line: duplicate JSON key 'a'"
    if case == "missing-field":
        path.write_bytes(b'{"text": "b"}\n{"body": "c"}\n')
        return path, ["--field", "text"], "corpus.jsonl:2: has no field 'text'"
    if case == "non-text-field":
        path.write_bytes(b'{"text": 5}\n')
        return path, ["--field", "text"], "corpus.jsonl:1: field 'text' is not text"
    raise AssertionError(case)


HOSTILE = [
    "symlink",
    "fifo",
    "folder",
    "missing",
    "binary",
    "invalid-utf8",
    "huge-line",
    "over-cap",
    "not-object",
    "bad-json",
    "missing-field",
    "non-text-field",
]


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_corpus_gets_one_clear_message_and_nothing_is_written(tmp_path, capsys, monkeypatch, case):
    monkeypatch.setattr("receipts.corpus.MAX_LINE_BYTES", 1000)
    inputs = tmp_path / "in"
    inputs.mkdir()
    corpus, extra, message = _hostile(inputs, case)
    before = sorted(p.name for p in inputs.iterdir())
    out = tmp_path / "out" / "overlap.json"
    code, text = run(capsys, "overlap", PACK, corpus, "--out", out, "--no-minhash", *extra)
    assert code == 1, text
    assert message in text, text
    assert str(corpus) in text  # names the file
    assert "Traceback" not in text
    assert text.count("error:") == 1
    assert not (tmp_path / "out").exists()  # nothing outside --out, and not --out either
    assert sorted(p.name for p in inputs.iterdir()) == before


def test_without_datasketch_minhash_names_the_extra_and_no_minhash_still_works(tmp_path):
    code = (
        "import sys; sys.modules['datasketch'] = None; from receipts.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    corpus = tmp_path / "c.txt"
    corpus.write_text("What is the capital of Norway?\n")
    argv = [sys.executable, "-c", code, "overlap", str(PACK), str(corpus), "--out", str(tmp_path / "o.json")]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stderr
    assert "pip install 'receipts[overlap]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.json").exists()
    result = subprocess.run(
        [*argv, "--no-minhash"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "o.json").read_text())["method"]["minhash"] is None


def test_verify_does_not_import_datasketch():
    code = (
        "import sys, receipts.cli, receipts.verify, receipts.overlap; sys.exit('datasketch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_two_corpus_files_of_one_name_are_refused(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "corpus.txt").write_text("text\n")
    argv = ["overlap", PACK, tmp_path / "a" / "corpus.txt", tmp_path / "b" / "corpus.txt"]
    code, text = run(capsys, *argv, "--out", tmp_path / "o.json", "--no-minhash")
    assert code == 1
    assert "two corpus files are both named 'corpus.txt'" in text
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("option", [["--ngram", "0"], ["--minhash-threshold", "0"], ["--num-perm", "2"]])
def test_settings_out_of_range_are_usage_errors(tmp_path, capsys, option):
    (tmp_path / "c.txt").write_text("text\n")
    code, text = run(capsys, "overlap", PACK, tmp_path / "c.txt", "--out", tmp_path / "o.json", *option)
    assert code == 2, text
    assert "out of range" in text
    assert not (tmp_path / "o.json").exists()


def test_out_may_not_be_an_input(tmp_path, capsys):
    corpus = tmp_path / "c.json"
    corpus.write_text('{"a": "b"}\n')
    code, text = run(capsys, "overlap", PACK, corpus, "--out", corpus, "--force", "--format", "jsonl")
    assert code == 2
    assert "is one of the inputs" in text
    assert corpus.read_text() == '{"a": "b"}\n'


def test_an_existing_out_needs_force(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello\n")
    out = tmp_path / "o.json"
    out.write_text("keep")
    code, text = run(capsys, "overlap", PACK, corpus, "--out", out, "--no-minhash")
    assert code == 2
    assert "already exists" in text
    assert out.read_text() == "keep"


# --- signing and verifying ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key():
    return generate()


@pytest.fixture(scope="module")
def root(key):
    return trust_root_from_bytes(
        new_root("receipts demo", [key.public], now=datetime(2026, 1, 1, tzinfo=UTC))
    )


def _overlap(tmp_path: Path, capsys, pack: Path = PACK) -> Path:
    folder = tmp_path / f"overlap-{pack.name}"
    folder.mkdir()
    corpus = folder / "corpus.txt"
    corpus.write_text("What is the capital of Norway? Oslo.\n")
    out = folder / "overlap.json"
    code, output = run(capsys, "overlap", pack, corpus, "--out", out, "--force")
    assert code == 0, output
    return out


def test_signed_overlap_verifies_and_is_returned_typed(tmp_path, capsys, key, root):
    overlap = _overlap(tmp_path, capsys)
    bundle = sign_receipt(CARD, [key], tmp_path / "out", runs=[RUN], overlap=overlap, issued_at=ISSUED)
    assert (bundle / "overlap.json").read_bytes() == overlap.read_bytes()
    verified = verify_receipt(bundle, root, now=NOW)
    assert verified.overlap is not None
    assert (verified.overlap.items_checked, verified.overlap.items_overlapping) == (2, 1)
    assert [s.name for s in verified.subject("overlap")] == ["overlap.json"]
    assert "overlap check agree" in {c.name: c.detail for c in verified.checks}["bindings"]


def test_sign_refuses_an_overlap_check_of_another_pack(tmp_path, capsys, key):
    overlap = _overlap(tmp_path, capsys, pack=CAPITALS)
    with pytest.raises(
        VerificationError,
        match=r"the overlap check is about capitals-mc@2.0.0 sha256:[0-9a-f]{64}, "
        r"but the signed runs used tiny-mc@1.0.0 sha256:",
    ) as caught:
        sign_receipt(CARD, [key], tmp_path / "out", runs=[RUN], overlap=overlap, issued_at=ISSUED)
    assert caught.value.check == "bindings"
    assert not (tmp_path / "out" / "smollm2-135m-distilled-24l@0.1.0").exists()
    with pytest.raises(VerificationError, match="but the signed runs used no run at all"):
        sign_receipt(CARD, [key], tmp_path / "out", overlap=overlap, issued_at=ISSUED)


def test_sign_refuses_a_same_named_pack_with_another_digest(tmp_path, capsys, key):
    other = tmp_path / "pack"
    shutil.copytree(PACK, other)
    with (other / "data" / "items.jsonl").open("a") as handle:
        handle.write(
            json.dumps(
                {"id": "q9", "question": "New?", "choices": ["a", "b"], "label": 0, "difficulty": "easy"}
            )
            + "\n"
        )
    overlap = _overlap(tmp_path, capsys, pack=other)
    with pytest.raises(VerificationError, match=re.escape("the overlap check is about tiny-mc@1.0.0")):
        sign_receipt(CARD, [key], tmp_path / "out", runs=[RUN], overlap=overlap, issued_at=ISSUED)


def test_sign_refuses_an_overlap_check_that_does_not_add_up(tmp_path, capsys, key):
    overlap = _overlap(tmp_path, capsys)
    document = json.loads(overlap.read_text())
    document["items_overlapping"] = 0  # hide the overlapping item from the headline count
    overlap.write_text(json.dumps(document))
    with pytest.raises(InputError, match="does not add up: items_overlapping is 0, but 1 listed"):
        sign_receipt(CARD, [key], tmp_path / "out", runs=[RUN], overlap=overlap, issued_at=ISSUED)


def test_sign_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "pw")
    assert run(capsys, "keygen", "--out", tmp_path / "k")[0] == 0
    overlap = _overlap(tmp_path, capsys)
    argv = ["sign", "--card", CARD, "--run", RUN, "--key", tmp_path / "k.key.pem", "--out", tmp_path / "r"]
    code, text = run(capsys, *argv, "--overlap", overlap)
    assert code == 0, text
    assert (tmp_path / "r" / "smollm2-135m-distilled-24l@0.1.0" / "overlap.json").is_file()
    wrong = _overlap(tmp_path, capsys, pack=CAPITALS)
    code, text = run(capsys, *argv, "--overlap", wrong, "--force")
    assert code == 4
    assert "the overlap check is about capitals-mc" in text
    assert "Traceback" not in text


def test_verify_fails_an_edited_overlap_json(tmp_path, capsys, key, root):
    overlap = _overlap(tmp_path, capsys)
    bundle = sign_receipt(CARD, [key], tmp_path / "out", runs=[RUN], overlap=overlap, issued_at=ISSUED)
    signed = bundle / "overlap.json"
    document = json.loads(signed.read_text())
    document["items"], document["items_overlapping"] = [], 0  # "0 of 2 items overlap"
    signed.write_text(json.dumps(document))
    with pytest.raises(VerificationError, match=re.escape("overlap.json: digest mismatch")) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "subjects"


def _lax_sign(monkeypatch: pytest.MonkeyPatch, overlap: Path, out: Path, key: Any) -> Path:
    """Sign with sign's overlap checks patched out: what a careless or hostile signer could publish."""

    def bind_unchecked(bundle: Any, path: Path, runs: Any) -> None:
        bundle.add_file("overlap.json", path.read_bytes(), "overlap")

    with monkeypatch.context() as patch:
        patch.setattr("receipts.sign._add_overlap", bind_unchecked)
        return sign_receipt(CARD, [key], out, runs=[RUN], overlap=overlap, issued_at=ISSUED)


def test_verify_checks_the_counts_of_a_signed_overlap(tmp_path, capsys, key, root, monkeypatch):
    overlap = _overlap(tmp_path, capsys)
    document = json.loads(overlap.read_text())
    document["items_overlapping"] = 0
    overlap.write_text(json.dumps(document))
    bundle = _lax_sign(monkeypatch, overlap, tmp_path / "out", key)
    with pytest.raises(
        VerificationError, match=re.escape("overlap.json: items_overlapping is 0, but 1 listed")
    ) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "bindings"


def test_verify_checks_the_pack_of_a_signed_overlap(tmp_path, capsys, key, root, monkeypatch):
    bundle = _lax_sign(monkeypatch, _overlap(tmp_path, capsys, pack=CAPITALS), tmp_path / "out", key)
    with pytest.raises(
        VerificationError, match=r"is about capitals-mc@2\.0\.0 sha256:[0-9a-f]{64}, a pack no signed"
    ):
        verify_receipt(bundle, root, now=NOW)


def test_verify_refuses_an_overlap_json_that_fails_its_schema(tmp_path, capsys, key, root, monkeypatch):
    overlap = _overlap(tmp_path, capsys)
    document = json.loads(overlap.read_text())
    document["items"][0]["id"] = ""
    overlap.write_text(json.dumps(document))
    bundle = _lax_sign(monkeypatch, overlap, tmp_path / "out", key)
    with pytest.raises(VerificationError, match=r"overlap.json: .*not a valid overlap") as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "bindings"


def _forged_counts(overlap: Path, checked: int, listed_id: str | None) -> None:
    """``items_checked`` and the listed item's id edited: counts that add up, but not to the signed run."""
    document = json.loads(overlap.read_text())
    document["items_checked"] = checked
    if listed_id is not None:
        document["items"][0]["id"] = listed_id
    overlap.write_text(json.dumps(document))


FORGED = {
    # the run evaluated the whole 2-item pack (settings.limit null): the check covers exactly those
    "inflated_count": (
        105,
        None,
        "items_checked is 105, but the signed run evaluated the whole pack: 2 item",
    ),
    "unknown_item": (
        2,
        "not-an-item",
        "lists item(s) the signed run of tiny-mc never evaluated: 'not-an-item'",
    ),
}


@pytest.mark.parametrize("case", sorted(FORGED))
def test_sign_and_verify_hold_the_overlap_to_the_signed_run(tmp_path, capsys, key, root, monkeypatch, case):
    checked, listed_id, message = FORGED[case]
    overlap = _overlap(tmp_path, capsys)
    _forged_counts(overlap, checked, listed_id)
    with pytest.raises(InputError, match=re.escape(message)):
        sign_receipt(CARD, [key], tmp_path / "refused", runs=[RUN], overlap=overlap, issued_at=ISSUED)
    bundle = _lax_sign(monkeypatch, overlap, tmp_path / "out", key)
    with pytest.raises(VerificationError, match=re.escape(f"overlap.json: {message}")) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "bindings"


def test_a_limited_run_needs_items_checked_of_at_least_its_items(tmp_path, capsys, key, root):
    """A ``--limit`` run covers part of the pack, the overlap check all of it: more is fine, fewer not."""
    run_dir = tmp_path / "limited"
    shutil.copytree(RUN, run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    results["settings"]["limit"] = 2
    (run_dir / "results.json").write_text(json.dumps(results))
    overlap = _overlap(tmp_path, capsys)
    _forged_counts(overlap, 5, None)
    bundle = sign_receipt(CARD, [key], tmp_path / "out", runs=[run_dir], overlap=overlap, issued_at=ISSUED)
    assert verify_receipt(bundle, root, now=NOW).overlap.items_checked == 5
    _forged_counts(overlap, 1, None)
    with pytest.raises(InputError, match=re.escape("items_checked is 1, fewer than the 2 item(s)")):
        sign_receipt(CARD, [key], tmp_path / "out2", runs=[run_dir], overlap=overlap, issued_at=ISSUED)


def test_the_cli_summary_words_matches_by_their_type(tmp_path, capsys):
    """A whole-input match is not a 13-gram match: the summary says which kind each count is."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("What is the capital of Norway? Oslo.\n")
    code, text = run(capsys, "overlap", PACK, corpus, "--out", tmp_path / "o.json", "--no-minhash")
    assert code == 0, text
    headline = next(line for line in text.splitlines() if " items of tiny-mc@1.0.0 overlap " in line)
    assert headline.startswith("1 of 2 items of tiny-mc@1.0.0 overlap corpus.txt (sha256 ")
    assert headline.endswith(": 1 as a whole input (shorter than 13 words)")
    assert "13-grams" not in headline
    assert "checked: 13-grams, whole inputs shorter than 13 words, MinHash not run" in text

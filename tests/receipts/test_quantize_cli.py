"""``receipts quantize``: a real tiny model through llama.cpp's converter and quantizer, and its refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from receipts import schemas
from receipts.cli import main
from receipts.digests import sha256_file
from receipts.errors import InputError
from receipts.formats import QuantizeManifest
from runner.llamacpp.quantize import lineage_of, quantize
from tests.models import tiny_smol

ROOT = Path(__file__).parents[2]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (links not followed) with its size and mtime: to see that nothing changed."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            found[path.relative_to(root).as_posix()] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny model and a cache of its own (so the first quantize really converts)."""
    root = tmp_path_factory.mktemp("quantize")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(root / "cache"))
        yield root, tiny_smol(root / "models" / "tiny")


@pytest.fixture(scope="module")
def first(world):
    """The first ``receipts quantize`` of the tiny model: (exit code, output, out folder)."""
    root, model = world
    out = root / "q1"
    argv = ["quantize", str(model), "--to", "q8_0,Q4_K_M", "--out", str(out), "--name", "tiny"]
    done = subprocess.run(
        [sys.executable, "-m", "receipts.cli", *argv],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, out


def test_quantize_writes_each_file_and_a_manifest_that_gives_the_lineage(world, first):
    _, model = world
    code, text, out = first
    assert code == 0, text
    assert "F16: " in text
    assert "converted in" in text
    assert "Q8_0: " in text
    assert "Q4_K_M: " in text
    assert "quantized in" in text
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "tiny.Q4_K_M.gguf", "tiny.Q8_0.gguf"]
    manifest = QuantizeManifest.load(out / "manifest.json")
    assert schemas.detect_kind(json.loads((out / "manifest.json").read_text())) == "quantize-manifest"
    assert [(o.quant, o.file) for o in manifest.outputs] == [
        ("Q8_0", "tiny.Q8_0.gguf"),
        ("Q4_K_M", "tiny.Q4_K_M.gguf"),
    ]
    for output in manifest.outputs:
        assert output.sha256 == "sha256:" + sha256_file(out / output.file)
        assert output.bytes == (out / output.file).stat().st_size
    q8, q4 = ((out / o.file).stat().st_size for o in manifest.outputs)
    assert q4 < q8 < manifest.base.bytes
    lineage = lineage_of(out / "tiny.Q4_K_M.gguf")
    from receipts.digests import digest_weights

    assert lineage is not None
    assert lineage["quantized_from"] == manifest.source.digest == "sha256:" + digest_weights(model).root
    assert lineage["quant"] == "Q4_K_M"
    assert lineage["base"] == "F16"
    assert lineage["bytes"] == q4
    assert lineage["manifest_sha256"] == "sha256:" + sha256_file(out / "manifest.json")


def test_a_second_quantize_converts_nothing(world, first, capsys):
    root, model = world
    assert first[0] == 0
    cache = tree(root / "cache")
    code, text = run(capsys, "quantize", model, "--to", "Q4_K_M,Q8_0", "--out", root / "q2", "--name", "tiny")
    assert code == 0, text
    assert "converted" not in text
    assert "quantized in" not in text
    assert text.count("cached in") == 3
    assert tree(root / "cache") == cache  # no file made or touched
    for name in ("tiny.Q8_0.gguf", "tiny.Q4_K_M.gguf"):
        assert sha256_file(root / "q2" / name) == sha256_file(first[2] / name)


def test_the_cli_does_not_import_torch(world, first):
    root, model = world
    assert first[0] == 0
    script = (
        "import sys\nfrom receipts.cli import main\n"
        f"code = main(['quantize', {str(model)!r}, '--to', 'Q8_0', '--out', {str(root / 'q3')!r}])\n"
        "assert code == 0, code\nassert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("Q4_K_X", "--to: unknown quantization Q4_K_X"),
        (",", "--to names no quantization"),
        ("BF16", "--to BF16: the unquantized file is --base F16"),
    ],
)
def test_an_unknown_quantization_is_one_usage_error(world, capsys, to, message):
    root, model = world
    code, text = run(capsys, "quantize", model, "--to", to, "--out", root / "never")
    assert code == 2
    assert message in text
    assert "Traceback" not in text
    assert not (root / "never").exists()


def test_a_folder_that_is_not_a_model_is_one_error(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    code, text = run(capsys, "quantize", tmp_path / "notes", "--to", "Q8_0", "--out", tmp_path / "q")
    assert code == 1
    assert "is not a model folder (no config.json)" in text
    assert "save_pretrained" in text
    code, text = run(capsys, "quantize", tmp_path / "missing", "--to", "Q8_0", "--out", tmp_path / "q")
    assert code == 1
    assert "is not a model folder" in text
    assert not (tmp_path / "q").exists()


def test_a_converter_failure_is_one_error_naming_the_step(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "odd"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["NoSuchModelForCausalLM"]}))
    (model / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    code, text = run(capsys, "quantize", model, "--to", "Q8_0", "--out", tmp_path / "q")
    assert code == 1, text
    assert "convert_hf_to_gguf.py failed" in text
    assert "convert.log" in text
    assert "Traceback (most" not in text
    assert not (tmp_path / "q").exists()
    assert not list((tmp_path / "cache").rglob("*.gguf"))  # no half-written file is cached


def test_out_attacks_are_refused_and_nothing_outside_out_changes(world, first, capsys):
    root, model = world
    assert first[0] == 0
    victim = root / "victim"
    victim.mkdir(exist_ok=True)
    (victim / "keep.txt").write_text("mine")
    (root / "a-file").write_text("not a folder")
    link = root / "linked"
    if not link.is_symlink():
        link.symlink_to(victim, target_is_directory=True)
    before = tree(root)
    cases = [
        (root / "a-file", 2, "is a file; pass a folder path"),
        (link, 2, "is a symbolic link"),
        (model, 2, "is inside the model folder"),
        (model / "gguf", 2, "is inside the model folder"),
        (root / "a-file" / "q", 1, "is not a folder"),
    ]
    for out, exit_code, message in cases:
        code, text = run(capsys, "quantize", model, "--to", "Q8_0", "--out", out)
        assert (code, message in text) == (exit_code, True), text
        assert "Traceback" not in text
    assert tree(root) == before


def test_existing_files_in_out_are_replaced_not_followed(world, first, capsys):
    root, model = world
    assert first[0] == 0
    out, outside = root / "q4", root / "outside.txt"
    out.mkdir()
    outside.write_text("outside")
    (out / "tiny.Q8_0.gguf").symlink_to(outside)
    (out / "manifest.json").symlink_to(outside)
    (out / "notes.txt").write_text("kept")
    code, text = run(capsys, "quantize", model, "--to", "Q8_0", "--out", out, "--name", "tiny")
    assert code == 0, text
    assert outside.read_text() == "outside"
    assert not (out / "tiny.Q8_0.gguf").is_symlink()
    assert not (out / "manifest.json").is_symlink()
    assert (out / "notes.txt").read_text() == "kept"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "notes.txt", "tiny.Q8_0.gguf"]
    assert lineage_of(out / "tiny.Q8_0.gguf") is not None


def _copy(first, tmp_path: Path) -> Path:
    out = tmp_path / "q"
    out.mkdir()
    for path in first[2].iterdir():
        (out / path.name).write_bytes(path.read_bytes())
    return out


def test_lineage_refuses_a_manifest_that_lies_about_the_file(first, tmp_path):
    out = _copy(first, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["outputs"][1]["sha256"] = "sha256:" + "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"tiny.Q4_K_M.gguf is not the file receipts quantize wrote"):
        lineage_of(out / "tiny.Q4_K_M.gguf")
    assert lineage_of(out / "tiny.Q8_0.gguf") is not None  # the other entry still holds


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("source"), r"not valid: .*source"),
        (lambda m: m["outputs"].append(dict(m["outputs"][0])), "lists file tiny.Q8_0.gguf twice"),
        (lambda m: m["outputs"][0].update(file="../tiny.Q8_0.gguf"), r"not valid: .*file"),
        (lambda m: m["source"].update(digest="sha256:XYZ"), r"not valid: .*digest"),
        (lambda m: m.update(format="receipts.quantize/1"), r"not valid: .*format"),
    ],
)
def test_lineage_refuses_a_malformed_manifest(first, tmp_path, edit, message):
    out = _copy(first, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    edit(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=message):
        lineage_of(out / "tiny.Q8_0.gguf")


def test_lineage_of_a_file_without_a_manifest_is_none(first, tmp_path):
    (tmp_path / "x.gguf").write_bytes((first[2] / "tiny.Q8_0.gguf").read_bytes())
    assert lineage_of(tmp_path / "x.gguf") is None
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=r"manifest\.json"):
        lineage_of(tmp_path / "x.gguf")


def test_the_library_checks_out_before_converting(world, tmp_path):
    _, model = world
    (tmp_path / "file").write_text("x")
    from receipts.errors import UsageError

    with pytest.raises(UsageError, match="is a file"):
        quantize(model, ["Q8_0"], tmp_path / "file")


@pytest.mark.parametrize("kind", ["link to /dev/zero", "pipe", "folder", "too large"])
def test_a_manifest_that_is_not_a_small_regular_file_is_refused_without_reading_it(
    first, tmp_path: Path, kind: str
) -> None:
    """A manifest sits beside downloaded files: a link to /dev/zero or a pipe must not hang the run."""
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes((first[2] / "tiny.Q8_0.gguf").read_bytes())
    manifest = tmp_path / "manifest.json"
    if kind == "link to /dev/zero":
        manifest.symlink_to("/dev/zero")
    elif kind == "pipe":
        os.mkfifo(manifest)
    elif kind == "folder":
        manifest.mkdir()
    else:
        manifest.write_bytes(b" " * (1024 * 1024 + 1))
    message = {
        "link to /dev/zero": "is a symbolic link",
        "pipe": "is not a regular file",
        "folder": "is not a regular file",
        "too large": "larger than 1,048,576 bytes",
    }[kind]
    with pytest.raises(InputError, match=message):
        lineage_of(gguf)


def test_a_name_with_a_path_is_refused_before_any_work(world, capsys):
    root, model = world
    code, text = run(capsys, "quantize", model, "--to", "Q8_0", "--out", root / "never", "--name", "../x")
    assert code == 2
    assert "--name '../x' is not a plain file name" in text
    assert not (root / "never").exists()

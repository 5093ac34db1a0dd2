"""Package shape: the public API is pinned, and the trust kernel never loads torch or the runner."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import receipts


def test_exported_members():
    for name in receipts.__all__:
        assert hasattr(receipts, name), name
    assert set(receipts.__all__) == {
        "Envelope",
        "GateError",
        "InputError",
        "KeyFileError",
        "PrivateKey",
        "PublicKey",
        "ReceiptsError",
        "Report",
        "SchemaError",
        "TrustRoot",
        "UsageError",
        "VerificationError",
        "VerifiedReceipt",
        "WeightsDigest",
        "__version__",
        "detect_kind",
        "digest_weights",
        "generate",
        "load_private_key",
        "load_public_key",
        "load_trust_root",
        "parse_envelope",
        "sha256_file",
        "sign_envelope",
        "sign_receipt",
        "validate",
        "verify_receipt",
    }


def test_generator_exported_members():
    """In a fresh interpreter (a submodule imported earlier would shadow a name of the same spelling)."""
    code = (
        "import generator, json; "
        "print(json.dumps({n: getattr(generator, n).__module__ for n in generator.__all__})); "
        "generator.nothing"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "AttributeError: module 'generator' has no attribute 'nothing'" in result.stderr
    assert json.loads(result.stdout) == {
        "Limits": "generator.remote",
        "RenderResult": "generator.render",
        "build_site": "generator.site",
        "collect": "generator.render",
        "fetch_catalog": "generator.remote",
        "render": "generator.render",
        "verify_target": "generator.sitecheck",
    }


def test_importing_a_package_loads_only_what_it_names():
    """``import receipts`` / ``import generator`` load no schema, crypto, template or site library."""
    code = (
        "import sys, receipts, generator; "
        "heavy = ('jsonschema', 'cryptography', 'yaml', 'jinja2', 'mkdocs', 'typer', 'rich'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_import_and_verify_path_do_not_load_torch_or_runner():
    code = (
        "import sys, receipts, receipts.cli, receipts.verify, generator; "
        "bad = [m for m in ('torch', 'transformers', 'runner') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_torch_is_installed_so_the_check_above_means_something():
    import importlib.util

    assert importlib.util.find_spec("torch") is not None


def test_mkdocs_site_builds(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "How to verify a receipt" in (tmp_path / "out" / "verify" / "index.html").read_text()


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout, installed into a folder of its own (no checkout on the path)."""
    work = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (work / "dist").glob("receipts-*.whl")
    target = work / "site-packages"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    return target


def _run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run(
        [sys.executable, "-m", "receipts.cli", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_installed_wheel_builds_a_catalog_with_no_checkout(installed: Path, tmp_path: Path) -> None:
    """`pip install receipts`, then `receipts build` with no checkout: config, templates, pages ship.

    The default site config, templates, assets and pages come from the package, not from a source checkout.
    """
    env = {**os.environ, "PYTHONPATH": str(installed)}
    where = subprocess.run(
        [sys.executable, "-c", "import receipts.resources as r; print(r.site_dir()); print(r.schema_dir())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [Path(p).is_relative_to(installed) for p in where] == [True, True], where
    vectors, trust = (
        ROOT / "tests" / "vectors" / "golden" / "v1",
        ROOT / "tests" / "vectors" / "roots" / "main.json",
    )
    built = _run_installed(
        installed, tmp_path, "build", str(vectors), "--trust-root", str(trust), "--out", "site"
    )
    assert built.returncode == 0, built.stderr
    assert "How to verify a receipt" in (tmp_path / "site" / "verify" / "index.html").read_text("utf-8")
    assert (tmp_path / "site" / "models" / "vector-model" / "0.1.0" / "index.html").is_file()
    verified = _run_installed(installed, tmp_path, "verify", "site", "--trust-root", str(trust))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the licence table ships as package data: validate computes licence terms with no checkout
    for version in ("v1.json", "v2.json"):  # old tables ship too: verify recomputes with the signed one
        assert (installed / "receipts" / "data" / "licences" / version).is_file()
    validated = _run_installed(installed, tmp_path, "validate", str(ROOT / "examples" / "card.yaml"))
    assert "computed licence terms: commercial use yes" in validated.stdout, (
        validated.stdout + validated.stderr
    )


def test_a_missing_extra_is_named_not_a_traceback(tmp_path: Path) -> None:
    """`receipts run` on an HF model without the runner extra names the extra to install (exit 1)."""
    code = (
        "import sys; sys.modules['torch'] = None; from receipts.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    pack = ROOT / "tests" / "data" / "pack_minimal"
    model = tmp_path / "model"  # an HF folder as far as the runner reads one before it needs torch
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}')
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (model / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            str(pack),
            "--teacher",
            f"hf:{model}",
            "--student",
            "fake:s",
            "--out",
            "r",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stderr
    assert "needs torch, which is not installed" in result.stderr
    assert "pip install 'receipts[runner]'" in result.stderr
    assert "Traceback" not in result.stderr
    # the run folder may hold its resume state (run.json, empty partial rows); never a result
    assert not (tmp_path / "r" / "results.json").exists()
    assert not (tmp_path / "r" / "examples.jsonl").exists()

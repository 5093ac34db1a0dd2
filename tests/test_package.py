"""Package shape: the public API is pinned, and the trust kernel never loads torch or the runner."""

import subprocess
import sys

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

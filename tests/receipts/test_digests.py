"""Digests: raw-byte sha256 and the model_signing v1.0 folder rule, bit for bit."""

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import model_signing.hashing
import pytest

from receipts.digests import digest_weights, root_of, sha256_file
from receipts.errors import InputError

DATA = Path(__file__).parents[1] / "data"
GOLDEN = DATA / "weights_golden"


def model_signing_root(path: Path) -> tuple[str, list[tuple[str, str]]]:
    manifest = model_signing.hashing.hash(path)
    descriptors = list(manifest.resource_descriptors())
    root = hashlib.sha256(b"".join(d.digest.digest_value for d in descriptors)).hexdigest()
    return root, [(d.identifier, d.digest.digest_hex) for d in descriptors]


def test_golden_manifest_matches_our_digest_byte_for_byte():
    golden = json.loads((DATA / "weights_golden.manifest.json").read_text())
    ours = digest_weights(GOLDEN)
    assert ours.root == golden["root"]
    assert [list(item) for item in ours.files.items()] == golden["files"]


def test_golden_manifest_matches_model_signing_today():
    golden = json.loads((DATA / "weights_golden.manifest.json").read_text())
    root, files = model_signing_root(GOLDEN)
    assert root == golden["root"]
    assert [list(f) for f in files] == golden["files"]


def test_component_order_not_string_order():
    # "a/b" < "a-c" by components, although "-" (0x2d) < "/" (0x2f) as strings.
    assert list(digest_weights(GOLDEN).files)[:3] == [".hidden-dir/x", "a/b", "a-c"]


@pytest.mark.parametrize("seed", range(5))
def test_random_trees_match_model_signing(tmp_path, seed):
    rng = random.Random(seed)
    alphabet = "ab-._Z9"
    for _ in range(rng.randint(1, 25)):
        depth = rng.randint(1, 3)
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(depth)]
        path = tmp_path.joinpath(*parts)
        if any(p.is_file() for p in [path, *path.parents] if p != tmp_path) or path.is_dir():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(0, 2000)))
    assert digest_weights(tmp_path).root == model_signing_root(tmp_path)[0]


def test_single_file_is_a_one_entry_manifest(tmp_path):
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"gguf" * 1000)
    ours = digest_weights(weights)
    assert dict(ours.files) == {".": hashlib.sha256(b"gguf" * 1000).hexdigest()}
    assert ours.root == model_signing_root(weights)[0]


def test_top_level_git_files_and_model_sig_are_ignored(tmp_path):
    tree = tmp_path / "m"
    shutil.copytree(GOLDEN, tree)
    before = digest_weights(tree).root
    for name in (".git/HEAD", ".github/workflows/x.yml", ".gitattributes", ".gitignore", "model.sig"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("ignored")
    assert digest_weights(tree).root == before
    # ... but only at the top level, as model_signing does
    (tree / "sub" / ".gitignore").write_text("counted")
    assert digest_weights(tree).root != before


def test_symlinks_are_refused(tmp_path):
    tree = tmp_path / "m"
    shutil.copytree(GOLDEN, tree)
    os.symlink(tree / "config.json", tree / "link.json")
    with pytest.raises(InputError, match="symbolic link"):
        digest_weights(tree)


def test_symlinked_folder_is_refused(tmp_path):
    tree = tmp_path / "m"
    shutil.copytree(GOLDEN, tree)
    os.symlink(tree / "sub", tree / "linked-dir")
    with pytest.raises(InputError, match="symbolic link"):
        digest_weights(tree)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        digest_weights(tmp_path / "nope")


def test_file_digest_streams_and_is_cached_by_identity(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(9 * 1024 * 1024 + 7)  # more than two 4 MiB chunks, not a multiple
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(data[::-1])  # new mtime/size identity -> cache miss, fresh digest
    assert sha256_file(path) == hashlib.sha256(data[::-1]).hexdigest()


def test_root_is_order_independent_of_mapping_order():
    files = dict(digest_weights(GOLDEN).files)
    assert root_of(dict(reversed(list(files.items())))) == root_of(files)

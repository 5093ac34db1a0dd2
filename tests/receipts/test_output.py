"""`receipts.output`: each way a destination can be wrong is one error naming it; nothing is left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from receipts.errors import InputError, UsageError
from receipts.output import check_file, check_folder, make_folder, write_file


def test_write_file_replaces_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.json"
    write_file(path, b"one", what="the thing")
    write_file(path, b"two", what="the thing")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]


def test_write_file_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_file(tmp_path / "k.pem", b"secret", what="the key", force=False, mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600


def test_write_file_without_force_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"keep")
    with pytest.raises(UsageError, match="already exists"):
        write_file(path, b"new", what="the thing", force=False)
    assert path.read_bytes() == b"keep"


def test_a_folder_where_a_file_is_wanted(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a folder; pass a file path for the thing") as info:
        write_file(tmp_path, b"x", what="the thing")
    assert info.value.file == str(tmp_path)


def test_a_file_where_a_folder_is_wanted(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(UsageError, match="is a file; pass a folder path for the run"):
        check_folder(path, what="the run")
    with pytest.raises(UsageError, match="is a file"):
        make_folder(path, what="the run")


def test_a_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    message = f"parent {tmp_path / 'f'} is not a folder"
    with pytest.raises(InputError, match=message):
        check_file(tmp_path / "f" / "g" / "x.json", what="the thing")
    with pytest.raises(InputError, match=message):
        check_folder(tmp_path / "f" / "g", what="the thing")
    with pytest.raises(InputError, match=message):
        write_file(tmp_path / "f" / "x.json", b"", what="the thing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_folder_nobody_may_write(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from tests.receipts.test_cli_hostile import ran_without_dac_override

    if ran_without_dac_override(request, tmp_path):
        return
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(InputError, match="cannot write the thing: Permission denied"):
            write_file(locked / "x.json", b"", what="the thing")
        with pytest.raises(InputError, match="Permission denied"):
            check_folder(locked / "run", what="the thing")
    finally:
        locked.chmod(0o700)


def test_a_read_only_file_is_not_replaced(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from tests.receipts.test_cli_hostile import ran_without_dac_override

    if ran_without_dac_override(request, tmp_path):
        return
    path = tmp_path / "trust.json"
    path.write_bytes(b"pinned")
    path.chmod(0o444)
    with pytest.raises(InputError, match="read-only"):
        write_file(path, b"new", what="the trust root")
    assert path.read_bytes() == b"pinned"


def test_a_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_bytes(b"old")
    path.chmod(0o640)
    write_file(path, b"new", what="the trust root")
    assert (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) == (b"new", 0o640)

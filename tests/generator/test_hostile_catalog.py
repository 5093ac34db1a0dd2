"""``receipts verify https://…`` against a hostile catalog server on 127.0.0.1 (issue #15).

The server controls every byte: the index, the receipts, the subject names inside them, the sizes and the
speed. Whatever it sends, the download stays in the command's private temporary folder (which is gone
afterwards), nothing else on disk changes, limits hold, and every refusal is one message with exit 1 or 4.
"""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from generator.remote import Limits, fetch_catalog
from receipts.cli import main
from receipts.dsse import sign_envelope
from receipts.errors import InputError
from receipts.keys import load_private_key
from receipts.sign import PAYLOAD_TYPE
from tests.receipts.test_cli_hostile import changes, tree_snapshot

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
INDEXES = DATA / "hostile_catalogs"
BUNDLE = "smollm2-135m-distilled-24l@0.1.0"
RECEIPT = f"models/smollm2-135m-distilled-24l/0.1.0/{BUNDLE}/receipt.json"

Route = bytes | Callable[[http.server.BaseHTTPRequestHandler], None]


class _QuietServer(http.server.ThreadingHTTPServer):
    """A server that says nothing when a client hangs up mid-answer.

    The limit tests provoke exactly that; a traceback on stderr would land in the CLI output they read.
    """

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server:
    """A static site on 127.0.0.1 whose answers a test can replace, path by path."""

    def __init__(self, folder: Path):
        self.folder, self.routes = folder, {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urllib.parse.unquote(self.path.split("?")[0]).lstrip("/")
                route = server.routes.get(path)
                if callable(route):
                    route(self)
                    return
                if route is None:
                    file = server.folder / path
                    file = file / "index.html" if file.is_dir() else file
                    if not file.is_file() or not file.resolve().is_relative_to(server.folder.resolve()):
                        self.send_error(404)
                        return
                    route = file.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(route)))
                self.end_headers()
                self.wfile.write(route)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real signed receipt built into a real site, with the key that signed it."""
    tmp = tmp_path_factory.mktemp("hostile-catalog")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECEIPTS_PASSPHRASE", "pw")
        mp.chdir(tmp)
        assert main(["keygen", "--out", "keys/release"]) == 0
        argv = [
            "trust",
            "init",
            "--publisher",
            "receipts demo",
            "--key",
            "keys/release.pub.pem",
            "--out",
            "trust.json",
        ]
        assert main(argv) == 0
        card, run = DATA / "card_fake_teacher.yaml", DATA / "run_minimal"
        argv = [
            "sign",
            "--card",
            str(card),
            "--run",
            str(run),
            "--key",
            "keys/release.key.pem",
            "--out",
            "receipts",
        ]
        assert main(argv) == 0
        assert main(["build", "receipts", "--trust-root", "trust.json", "--out", "site"]) == 0
    return {"site": tmp / "site", "trust": tmp / "trust.json", "key": tmp / "keys" / "release.key.pem"}


@pytest.fixture
def served(site: dict[str, Path], tmp_path: Path) -> Iterator[_Server]:
    folder = tmp_path / "served"
    shutil.copytree(site["site"], folder)
    server = _Server(folder)
    yield server
    server.stop()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The command's temporary folders go under tmp_path/tmp; the test checks all of tmp_path afterwards."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


def verify(capsys: pytest.CaptureFixture[str], url: str, trust: Path, *extra: str) -> tuple[int, str]:
    code = main(["verify", url, "--trust-root", str(trust), *extra])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


def test_an_honest_catalog_verifies_and_leaves_nothing_behind(
    served: _Server, site: dict[str, Path], sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = tree_snapshot(sandbox)
    code, text = verify(capsys, served.url, site["trust"])
    assert code == 0, text
    assert "1 verified, 0 failed" in text
    assert changes(before, tree_snapshot(sandbox)) == []  # the download folder is gone again


@pytest.mark.parametrize("index", sorted(p.name for p in INDEXES.glob("index_*.json")))
def test_hostile_indexes_are_refused_before_any_download(
    served: _Server, site: dict[str, Path], sandbox: Path, capsys: pytest.CaptureFixture[str], index: str
) -> None:
    served.routes["catalog/index.json"] = (INDEXES / index).read_bytes()
    before = tree_snapshot(sandbox)
    code, text = verify(capsys, served.url, site["trust"])
    assert code == 1
    assert "catalog/index.json" in text
    assert changes(before, tree_snapshot(sandbox)) == []


def _statement(data: bytes) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads(base64.b64decode(json.loads(data)["payload"]))
    return statement


@pytest.mark.parametrize(
    "name",
    [
        "../../trust.json",
        "/tmp/evil.json",  # noqa: S108 - the attack
        "runs/../../../evil.json",
        "./card.yaml",
    ],
)
def test_a_signed_subject_name_cannot_write_outside(
    served: _Server, site: dict[str, Path], sandbox: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Even a validly signed receipt (the publisher's own key) cannot name a file outside its folder."""
    statement = _statement((served.folder / RECEIPT).read_bytes())
    card = next(s for s in statement["subject"] if s["annotations"]["kind"] == "card")
    card["name"] = name
    key = load_private_key(site["key"], b"pw")
    served.routes[RECEIPT] = sign_envelope(PAYLOAD_TYPE, bytes(rfc8785.dumps(statement)), [key])
    before = tree_snapshot(sandbox)
    code, text = verify(capsys, served.url, site["trust"])
    assert code == 4
    assert "subjects: subject" in text
    assert changes(before, tree_snapshot(sandbox)) == []


def test_a_huge_file_is_cut_off_at_the_limit(
    served: _Server, site: dict[str, Path], sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served.routes[RECEIPT] = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    before = tree_snapshot(sandbox)
    code, text = verify(capsys, served.url, site["trust"], "--max-file-mb", "1")
    assert code == 1
    assert "goes past the 1,048,576-byte limit per file" in text
    assert "--max-file-mb" in text
    code, text = verify(capsys, served.url, site["trust"], "--max-catalog-mb", "2")
    assert code == 1
    assert "--max-catalog-mb" in text
    assert changes(before, tree_snapshot(sandbox)) == []


def test_a_slow_server_is_cut_off_at_the_deadline(served: _Server, sandbox: Path) -> None:
    def trickle(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()
        for _ in range(100):  # one byte every 0.1 s, never stalling long enough for a socket timeout
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.1)

    served.routes["catalog/index.json"] = trickle
    into = sandbox / "into"
    into.mkdir()
    started = time.monotonic()
    with pytest.raises(InputError, match=r"took longer than 1 s"):
        fetch_catalog(served.url, into, Limits(seconds_per_file=1.0))
    assert time.monotonic() - started < 6  # not the 10 s the server would take
    assert list(into.iterdir()) == []


def test_redirects_leave_the_catalog_only_with_an_error(
    served: _Server, site: dict[str, Path], sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def elsewhere(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", "http://127.0.0.2:1/stolen.json")
        handler.end_headers()

    served.routes["catalog/index.json"] = elsewhere
    before = tree_snapshot(sandbox)
    code, text = verify(capsys, served.url, site["trust"])
    assert code == 1
    assert "redirects outside the catalog" in text
    assert changes(before, tree_snapshot(sandbox)) == []


def test_only_http_urls_are_fetched(site: dict[str, Path], sandbox: Path) -> None:
    with pytest.raises(Exception, match="must start with https:// or http://"):
        fetch_catalog("file:///etc/", sandbox)
